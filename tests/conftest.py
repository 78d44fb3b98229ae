"""Shared fixtures: paths and small helpers for writing specs in tests; which tests are `slow`.

`pytest -m "not slow"` is the quick loop while editing (README.md says how long each takes); CI runs everything.
A test is marked slow where it is written (`@pytest.mark.slow`) or, for the heaviest parametrized and
documentation tests, by SLOW below, which `--durations` decides: what took 5 s or more on a 2-core machine.
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):  # one worker per core: each runs torch on its share of them
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // int(
        os.environ["PYTEST_XDIST_WORKER_COUNT"]))))

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
SPEC_FILES = sorted(SPECS.glob("*.yaml"))
"""Every network spec (the libraries they import, under specs/families/, are not networks)."""
INCEPTION_FAMILY = ("bn_inception", "googlenet", "googlenet_cifar", "googlenet_paper", "inception_mini",
                    "inception_resnet_v2", "inception_v3", "inception_v4")
SMALL_OF_EACH_FAMILY = ("convnext_tiny", "swin_t", "densenet121", "efficientnet_b0", "efficientnet_v2_s", "mnasnet0_5",
                        "mobilenet_v2", "mobilenet_v3_small", "regnet_x_400mf", "regnet_y_400mf", "resnet18",
                        "resnext50_32x4d", "shufflenet_v2_x0_5", "squeezenet1_1")
REPRESENTATIVE_SPECS = [p for p in SPEC_FILES if p.stem in INCEPTION_FAMILY + SMALL_OF_EACH_FAMILY]
"""The specs that tests running whole networks in torch go through: the Inception family, whose specs each
stand alone, and a small member of every other family (each family's own tests in tests/zoo check every
variant's keys, shapes and counts against the reference, so a variant differs from its family's small member
only in the numbers those tests check)."""
SMALL_TRANSFORMERS: dict[str, dict] = {
    "vit_b_32": {"input": [3, 64, 64], "num_layers": 2},
    "maxvit_t": {"input": [3, 93, 93], "partition_size": 3, "depths": [1, 1, 1, 1]},
}
"""The small member of each transformer family and the overrides that make running it whole cheap, every kind
of block kept: B/32 at 64×64 (4 patches; a ViT is built for the size it runs at, its position embedding as long
as its tokens) with 2 of its 12 identical encoder layers, MaxViT-T with 3×3 partitions at 93×93 (the smallest
size that allows) and one layer per stage. Tests that run whole networks (optimize, profile) take them with
these overrides; the transformers' own tests (tests/zoo/test_tv_vit.py, test_tv_maxvit.py) cover ONNX, the
Python source and the outputs of the networks as written."""


def compile_small(spec: Path, least: int = 0):
    """The spec compiled at the smallest square input its whole graph takes (its training-only heads too), and
    at least `least`; at its own where none is found. Tests that run whole networks in torch keep every op and
    edge, at a fraction of the cost."""
    import archspec
    from archspec.infer import min_input

    typed = archspec.compile(spec)
    smallest = min_input(typed.graph, typed.input_shape)
    if smallest is None:
        return typed
    side = max(least, *smallest)
    return archspec.compile(spec, input=[typed.input_shape[0], side, side])


@pytest.fixture
def write_spec(tmp_path: Path):
    """Write dedented YAML text to a file and return its path."""

    def write(text: str, name: str = "spec.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text).lstrip("\n"))
        return path

    return write


@pytest.fixture
def full_disk(tmp_path: Path):
    """A 64 kB tmpfs, for writes that fail as on a full disk; skipped where mounting needs a privilege we lack."""
    import subprocess

    folder = tmp_path / "small-disk"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], capture_output=True)


SLOW = (
    # parity and export of the large zoo networks (a minute or more each on 2 cores)
    "tests/backends/test_onnx.py::test_onnxruntime_gives_the_modules_outputs_at_any_batch",
    "tests/backends/test_onnx.py::test_heads_kept_at_inference_are_named_outputs",
    "tests/backends/test_onnx.py::test_opset_and_a_valid_model",
    "tests/backends/test_onnx.py::test_training_only_heads_are_left_out",
    "tests/backends/test_python_source.py::test_emitted_file_runs_without_archspec_and_matches",
    "tests/backends/test_torch_fx.py::test_googlenet_without_aux_heads_equals_torchvision_aux_logits_false",
    "tests/backends/test_torch_fx.py::test_googlenet_training_outputs_equal_torchvision_with_aux_heads",
    "tests/backends/test_torch_fx.py::test_googlenet_export_accepts_eval_module",
    "tests/backends/test_torch_fx.py::test_torch_compile_small_spec",
    "tests/zoo/test_timm.py::",
    "tests/zoo/test_inception_v3.py::test_state_dicts_match",
    "tests/zoo/test_googlenet_cifar.py::test_a_few_sgd_steps_lower_the_loss",
    "tests/zoo/test_googlenet_cifar.py::test_seed_model_loads_and_gives_the_same_outputs",
    "tests/test_zoo.py::test_smallest_input_works_in_torch_and_one_less_fails[inception_resnet_v2-",
    "tests/test_zoo.py::test_shapes_of_every_node_equal_torch_on_meta[inception_resnet_v2]",
    *(f"tests/passes/test_optimize.py::test_outputs_unchanged[{spec}.yaml-" for spec in (
        "googlenet", "googlenet_paper", "googlenet_cifar", "bn_inception", "inception_v3", "inception_v4",
        "inception_resnet_v2")),
    "tests/passes/test_optimize.py::test_compile_and_export_accept_the_optimized_module",
    "tests/passes/test_separable_maxpool.py::test_googlenet_pools_are_replaced_and_export_sees_a_max_pool",
    "tests/cli/test_build_output.py::test_onnx_output_runs_in_onnxruntime",
    "tests/cli/test_build_output.py::test_torchvision_state_dict_loads_with_weights",
    "tests/test_weights.py::test_round_trip_pt_to_safetensors_to_build",
    "tests/test_weights.py::test_torchvision_state_dict_loads_and_gives_its_outputs",
    "tests/examples/test_train.py::test_one_epoch_writes_metrics_and_a_checkpoint_and_resume_continues",
    "tests/examples/test_examples.py::test_example_runs_and_prints_its_results[load_torchvision.py]",
    # training steps
    "tests/test_training.py::test_a_few_steps_lower_the_loss_every_aux_head_gets_gradients_and_eval_gives_main_only",
    "tests/test_training.py::test_weights_are_found_inside_torch_compile_and_ddp_wrappers",
    # documentation whose examples build, train or export networks
    "tests/test_doc_snippets.py::test_python_blocks_run[README.md]",
    "tests/test_doc_snippets.py::test_python_blocks_run[docs/tutorial-training.md]",
    "tests/test_doc_snippets.py::test_python_blocks_run[docs/tutorial-mnist.md]",
    "tests/test_doc_snippets.py::test_python_blocks_run[docs/export.md]",
    "tests/test_doc_snippets.py::test_python_blocks_run[docs/optimize.md]",
    "tests/test_doc_snippets.py::test_python_blocks_run[docs/python-source.md]",
)
"""Node-id prefixes of slow tests (in files whose other tests are quick)."""
SLOW_COMMANDS = ("archspec build ", "archspec profile ", " --deep")
"""Documented commands that import torch: tests/test_docs.py runs each in a process of its own (seconds each)."""


WHOLE_NETWORK_FILES = ("tests/backends/", "tests/passes/test_optimize.py", "tests/passes/test_lowp.py",
                       "tests/test_profile.py", "tests/test_zoo.py",
                       "tests/test_deep.py", "tests/test_memory.py")
"""Files whose tests run whole networks in torch, once per spec of REPRESENTATIVE_SPECS."""


def _slow(nodeid: str) -> bool:
    if nodeid.startswith(SLOW) or nodeid.startswith("tests/zoo/test_tv_"):  # every torchvision family's parity
        return True
    if nodeid.startswith("tests/test_docs.py::test_documented_commands"):
        return any(c in nodeid for c in SLOW_COMMANDS)
    params = nodeid.partition("[")[2]
    return nodeid.startswith(WHOLE_NETWORK_FILES) and any(name in params for name in SMALL_OF_EACH_FAMILY)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _slow(item.nodeid):
            item.add_marker(pytest.mark.slow)
