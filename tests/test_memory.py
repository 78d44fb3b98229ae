"""The memory estimate equals what torch allocates; builds that would not fit are refused, located."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import REPRESENTATIVE_SPECS, SMALL_TRANSFORMERS

import archspec
from archspec.memory import available, check_memory, estimate, fmt_bytes, host_available, parse_size

ROOT = Path(__file__).resolve().parent.parent
SPECS = REPRESENTATIVE_SPECS + [ROOT / "specs" / f"{name}.yaml" for name in SMALL_TRANSFORMERS]  # on meta: cheap
TINY = ROOT / "tests" / "fixtures" / "tiny.yaml"

HUGE = """\
archspec: 1
name: huge
input: [3, 32, 32]
body:
  conv1: conv(100000, 3)
  conv2: conv(100000, 3)
  pool: global_avgpool
  flatten: flatten
  fc: linear(10)
"""


@pytest.fixture
def huge(tmp_path: Path) -> Path:
    path = tmp_path / "huge.yaml"
    path.write_text(HUGE)
    return path


@pytest.mark.parametrize("spec", SPECS + [TINY], ids=lambda p: p.stem)
def test_estimate_equals_the_bytes_of_the_built_module(spec: Path):
    """Built on meta (nothing allocated): tensors there still know their numel and dtype."""
    typed = archspec.compile(spec)
    module = archspec.build(typed, device="meta")
    est = estimate(typed)
    assert est.total == sum(t.numel() * t.element_size() for t in module.state_dict().values())
    per_node: dict[str, int] = {}
    for key, t in module.state_dict().items():
        # the longest node path the key starts with: a block's own learned tensor (ConvNeXt's layer_scale) is
        # its node's key, and an op's module may hold submodules (partition_attention's `to_qkv.weight`)
        parts = key.split(".")
        node = next("/".join(parts[:n]) for n in range(len(parts), 0, -1) if "/".join(parts[:n]) in est.nodes)
        per_node[node] = per_node.get(node, 0) + t.numel() * t.element_size()
    assert {k: v for k, v in est.nodes.items() if v} == per_node


def test_huge_spec_is_counted_and_refused_at_its_largest_node(huge: Path):
    typed = archspec.compile(huge)
    assert typed.total("params") == 90_003_900_010
    with pytest.raises(archspec.SpecError) as info:
        check_memory(typed, "cpu", "100GB")
    (diag,) = info.value.diagnostics
    assert diag.code == "too-much-memory" and diag.path == "conv2"
    assert (diag.loc.line, diag.loc.col) == (6, 10)
    assert "needs 360.0 GB for its weights, more than the memory limit of 100.0 GB" in diag.message
    assert "360,015,600,040 bytes" in diag.found and "100,000,000,000 bytes" in diag.expected
    assert [text for _, text in diag.notes] == ["conv1 (conv): 11.2 MB", "fc (linear): 4.0 MB"]
    assert "6 |   conv2: conv(100000, 3)" in info.value.render()


def test_build_refuses_what_the_machine_lacks_and_meta_builds_anything(huge: Path):
    limit = host_available()
    if limit is None or limit >= 360_015_600_040:
        pytest.skip("this machine has no memory figure, or 360 GB free")
    with pytest.raises(archspec.SpecError) as info:
        archspec.build(huge)
    assert "available on cpu" in info.value.diagnostics[0].message
    module = archspec.build(huge, device="meta")
    assert sum(p.numel() for p in module.parameters()) == 90_003_900_010


def test_build_limit_and_skip():
    with pytest.raises(archspec.SpecError, match="too-much-memory"):
        archspec.build(TINY, max_memory="10kB")
    assert archspec.build(TINY, max_memory=None) is not None
    assert archspec.build(TINY, max_memory=12_000) is not None  # 2,740 params and 5 BatchNorms: 11,448 bytes


@pytest.mark.parametrize("text, expected", [
    ("512MB", 512 * 10**6), ("2GiB", 2 * 2**30), ("1.5gb", 1_500_000_000), ("1000", 1000), ("64 KiB", 65536),
    ("3t", 3 * 10**12), (".5M", 500_000), (12, 12),
])
def test_parse_size(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "MB", "12XB", "-1GB", "1e9", "two GB"])
def test_parse_size_refuses(text):
    with pytest.raises(ValueError, match="cannot read the size"):
        parse_size(text)


def test_available():
    assert available("meta") is None
    host = host_available()
    assert host is None or host > 0
    assert (available("cpu") is None) == (host is None)


def test_available_cuda_is_the_devices_free_memory():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA")
    free = available("cuda:0")
    assert free is not None and 0 < free <= torch.cuda.mem_get_info(0)[1]


def test_fmt_bytes():
    assert [fmt_bytes(n) for n in (840, 11_240, 52_080_312, 360_015_600_040)] == [
        "840 B", "11.2 kB", "52.1 MB", "360.0 GB"]


CHAIN = """\
archspec: 1
name: chain
input: [3, 8, 8]
body:
  conv: conv(4, 3, p=1)
  relu: relu
  pool: global_avgpool
  flatten: flatten
  fc: linear(5)
"""


def test_activation_peak_frees_what_no_later_node_reads(tmp_path: Path):
    from archspec.memory import activations, run_estimate

    path = tmp_path / "chain.yaml"
    path.write_text(CHAIN)
    typed = archspec.compile(path)
    peak, sizes = activations(typed, batch=10)
    assert sizes == {"input": 3 * 8 * 8 * 40, "conv": 4 * 8 * 8 * 40, "relu": 4 * 8 * 8 * 40, "pool": 4 * 40,
                     "flatten": 4 * 40, "fc": 5 * 40}
    assert peak == sizes["conv"] + sizes["relu"]  # the input is freed once conv has read it
    est = run_estimate(typed, 10)
    assert est.total == estimate(typed).total + peak and est.batch == 10
    assert est.nodes["conv"] == sizes["conv"] + (4 * 3 * 9 + 4) * 4


def test_a_run_at_a_batch_is_refused_with_its_activations():
    typed = archspec.compile(TINY)
    check_memory(typed, "cpu", "100MB", batch=8)
    with pytest.raises(archspec.SpecError) as info:
        check_memory(typed, "cpu", "100MB", batch=100_000)
    (diag,) = info.value.diagnostics
    assert diag.code == "too-much-memory" and diag.message.startswith("running tiny at batch 100,000 needs")
    assert diag.loc is not None and diag.path == "mix" and "of activations at their peak" in str(diag.found)
    assert check_memory(typed, "meta", "100MB", batch=100_000).batch == 100_000  # meta allocates nothing
