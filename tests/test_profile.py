"""`archspec.profile`: measured time attributed to spec blocks, collapsed by depth, charted."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from conftest import REPRESENTATIVE_SPECS, SMALL_TRANSFORMERS
from conftest import SPECS as SPEC_DIR

import archspec
from archspec.backends.torch_fx import DeviceError
from archspec.profile import OTHER, Attribution, ProfileError, draw_chart, profile, profile_table, spec_paths

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
TINY = ROOT / "tests" / "fixtures" / "tiny.yaml"


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread() -> Iterator[None]:
    """Tiny tensors: a second thread waiting for a busy core only adds noise."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny_table():
    return profile(TINY, batch=2, depth=None, repeat=2, warmup=1)


def leaves(rows):
    """Rows shown unexpanded: together they cover every timed node once."""
    return [r for i, r in enumerate(rows) if i + 1 == len(rows) or rows[i + 1]["depth"] <= r["depth"]]


def test_block_times_sum_to_the_node_total_and_shares_to_one(tiny_table):
    total = tiny_table.total_rows[0]["time_ms"]
    assert total > 0
    top = [r for r in tiny_table.rows if r["depth"] == 1]
    assert [r["path"] for r in top] == ["stem", "mix", "pool", "flatten", "fc"]
    assert math.isclose(sum(r["time_ms"] for r in top), total, rel_tol=1e-9)
    assert math.isclose(sum(r["time_ms"] for r in leaves(tiny_table.rows)), total, rel_tol=1e-9)
    assert math.isclose(sum(r["share"] for r in top), 1.0, rel_tol=1e-9)
    assert tiny_table.meta["forward_ms"] > 0 and tiny_table.meta["images_per_s"] > 0
    assert math.isclose(sum(tiny_table.meta["by_op"].values()), 1.0, rel_tol=1e-9)
    assert set(tiny_table.meta["by_op"]) == {"conv", "bn", "relu", "maxpool", "concat", "global_avgpool", "flatten",
                                             "linear"}


def test_a_scope_row_is_the_sum_of_its_children(tiny_table):
    rows = {r["path"] + ("/" if r["kind"] != "op" else ""): r for r in tiny_table.rows}
    mix = rows["mix/"]
    children = [r for r in tiny_table.rows if r["depth"] == 2 and r["path"].startswith("mix")]
    assert {r["path"] for r in children} == {"mix/left", "mix/mid", "mix/right", "mix"}  # "mix" is its concat
    assert math.isclose(mix["time_ms"], sum(r["time_ms"] for r in children), rel_tol=1e-9)
    assert not any(r["path"].startswith("aux") for r in tiny_table.rows)  # training-only head: not run in eval


def test_depth_collapses_rows_as_summary_does():
    from archspec.summary import layer_rows

    shallow = profile(TINY, depth=1, repeat=1, warmup=0)
    deep = profile(TINY, depth=2, repeat=1, warmup=0)
    assert {r["depth"] for r in shallow.rows} == {1} and {r["depth"] for r in deep.rows} == {1, 2}
    typed = archspec.compile(TINY)
    for table, depth in ((shallow, 1), (deep, 2)):
        expected = [r["path"] for r in layer_rows(typed, depth) if not r["train_only"]]
        assert [r["path"] for r in table.rows] == expected
        assert [r["macs"] for r in table.rows] == [r["macs"] for r in layer_rows(typed, depth) if not r["train_only"]]


def test_ranks_gflops_and_notes_from_known_times():
    """Given fixed node times, every derived number follows exactly."""
    module = archspec.build(TINY).eval()
    nodes = [n for n in module.graph.nodes if n.op in ("call_module", "call_function")]
    seconds = {n: (i + 1) * 1e-3 for i, n in enumerate(nodes)}  # 1 ms, 2 ms, ...
    settings = {"batch": 4, "device": "cpu", "dtype": "fp32", "cuda_graphs": False, "optimized": False,
                "passes": None, "repeat": 3, "warmup": 1, "depth": 1}
    table = profile_table(module.typed, {"nodes": seconds, "forward": [0.2, 0.1, 0.3]}, settings)
    n = len(nodes)
    assert math.isclose(table.total_rows[0]["time_ms"], n * (n + 1) / 2, rel_tol=1e-9)
    assert table.meta["forward_ms"] == pytest.approx(200.0) and table.meta["images_per_s"] == pytest.approx(20.0)
    fc = next(r for r in table.rows if r["path"] == "fc")
    assert fc["time_ms"] == pytest.approx(n) and fc["gflops"] == pytest.approx(2 * fc["macs"] * 4 / (n * 1e-3) / 1e9)
    assert next(r for r in table.rows if r["path"] == "flatten")["gflops"] is None  # no multiply-adds
    ranked = sorted((r for r in table.rows if "rank" in r), key=lambda r: r["rank"])
    assert [r["path"] for r in ranked] == sorted((r["path"] for r in table.rows), key=lambda p: -next(
        r["time_ms"] for r in table.rows if r["path"] == p))
    assert any("forward: 200.00 ms per batch of 4" in note for note in table.notes)


def test_merged_and_unowned_nodes_after_passes():
    """A node standing for several spec nodes splits its time by their MACs; a node with no path has its own row."""
    module = archspec.build(TINY).eval()
    nodes = {n.name: n for n in module.graph.nodes}
    nodes["mix_left_conv"].meta["archspec"]["paths"] = ["mix/left/conv", "mix/mid/0/conv"]
    del nodes["mix_mid_0_conv"].meta["archspec"]
    seconds = {n: 0.004 if n.name == "mix_left_conv" else 0.001 for n in module.graph.nodes
               if n.op in ("call_module", "call_function")}
    even = Attribution(seconds)
    assert even.own["mix/left/conv"] == pytest.approx(0.002) and even.own["mix/mid/0/conv"] == pytest.approx(0.002)
    assert even.other == pytest.approx(0.001) and even.merged == 1
    assert even.subtree["mix/left"] == pytest.approx(0.002 + 2 * 0.001)
    macs = {"mix/left/conv": 300, "mix/mid/0/conv": 100}
    by_macs = Attribution(seconds, macs=lambda path: macs.get(path, 0))
    assert by_macs.own["mix/left/conv"] == pytest.approx(0.003)
    assert by_macs.own["mix/mid/0/conv"] == pytest.approx(0.001)
    settings = {"batch": 1, "device": "cpu", "dtype": "fp32", "cuda_graphs": False, "optimized": True,
                "passes": None, "repeat": 1, "warmup": 0, "depth": 1}
    table = profile_table(module.typed, {"nodes": seconds, "forward": [0.01]}, settings)
    assert table.rows[-1]["path"] == OTHER and table.rows[-1]["time_ms"] == pytest.approx(1.0)
    assert math.isclose(sum(r["time_ms"] for r in table.rows), table.total_rows[0]["time_ms"], rel_tol=1e-9)
    assert any("split among them by MACs" in note for note in table.notes)


def test_fused_conv_takes_the_time_of_its_folded_bn_and_relu():
    """After the default passes one node computes conv, bn and relu: the conv's row carries its whole time."""
    built = archspec.build(TINY).eval()
    module = archspec.optimize(built, batch=1)
    fused = next(n for n in module.graph.nodes if len(spec_paths(n)) == 3)
    conv, bn, relu = spec_paths(fused)
    spread = Attribution({fused: 0.006}, macs=lambda path: built.typed.info[path].macs)
    assert (spread.own[conv], spread.own[bn], spread.own[relu]) == pytest.approx((0.006, 0.0, 0.0))


@pytest.mark.parametrize("suffix, magic", [("png", b"\x89PNG"), ("svg", b"<svg")])
def test_chart_is_written(tiny_table, tmp_path, suffix, magic):
    pytest.importorskip("matplotlib")
    out = tmp_path / f"chart.{suffix}"
    draw_chart(tiny_table, out)
    head = out.read_bytes()[:4096]
    assert magic in head
    if suffix == "svg":
        assert b"mix/mid/1" in out.read_bytes()  # a leaf row's label


def test_chart_refuses_an_unknown_format_and_leaves_nothing(tiny_table, tmp_path):
    with pytest.raises(ProfileError, match="use .png, .svg or .pdf"):
        draw_chart(tiny_table, tmp_path / "chart.bmp")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda_is_a_device_error():
    with pytest.raises(DeviceError, match="CUDA is not available"):
        profile(TINY, device="cuda", repeat=1)
    with pytest.raises(ProfileError, match="CUDA graphs need a CUDA device"):
        profile(TINY, cuda_graphs=True, repeat=1)


def test_autocast_bf16_runs_on_cpu():
    table = profile(TINY, dtype="bf16", repeat=1, warmup=0)
    assert table.meta["dtype"] == "bf16" and "cpu bf16" in table.title


@pytest.mark.slow
def test_optimized_googlenet_is_attributed_to_its_blocks():
    if not hasattr(archspec, "optimize"):
        pytest.skip("archspec.optimize is not in this tree")
    from archspec import passes
    table = profile(SPECS / "googlenet.yaml", optimize=True, repeat=1, warmup=1)
    assert table.meta["optimized"] and "(optimised)" in table.title
    paths = [r["path"] for r in table.rows]
    assert "inception3a" in paths and "inception5b" in paths
    assert math.isclose(sum(r["time_ms"] for r in table.rows), table.total_rows[0]["time_ms"], rel_tol=1e-9)
    by_block = {r["path"]: r["time_ms"] for r in table.rows}
    assert by_block["inception4e"] > 0 and by_block["conv2"] > 0
    with pytest.raises(ProfileError, match="unknown pass no_such_pass; the passes are"):
        profile(SPECS / "googlenet.yaml", passes=["no_such_pass"], repeat=1)
    first = getattr(passes.PASSES[0], "name", passes.PASSES[0])
    one = profile(SPECS / "googlenet.yaml", passes=[first], repeat=1, warmup=0)
    assert one.meta["passes"] == [first]


@pytest.mark.slow
@pytest.mark.parametrize("spec", REPRESENTATIVE_SPECS, ids=lambda p: p.stem)
def test_every_spec_profiles_block_by_block(spec):
    """Optimised where this tree has `archspec.optimize`: every node's time lands on a block or on the OTHER row."""
    from archspec.summary import layer_rows

    least = archspec.compile(spec).smallest_input() or (128, 128)
    side = max(128, *least)
    small = {"input": [3, side, side]} if archspec.load(spec).input[-1] > side else {}  # every block, less work
    table = profile(spec, vars=small, optimize=hasattr(archspec, "optimize"), repeat=1, warmup=0)
    blocks = [r["path"] for r in layer_rows(archspec.compile(spec, **small), 1) if not r["train_only"]]
    assert [r["path"] for r in table.rows if r["path"] != OTHER] == blocks
    assert math.isclose(sum(r["time_ms"] for r in table.rows), table.total_rows[0]["time_ms"], rel_tol=1e-9)
    assert math.isclose(sum(r["share"] for r in table.rows), 1.0, rel_tol=1e-9)
    assert sum(r["time_ms"] > 0 for r in table.rows) > len(blocks) // 2


@pytest.mark.parametrize("name", SMALL_TRANSFORMERS)
def test_small_transformers_profile_block_by_block(name):
    """Optimised, at depth 3: each encoder layer (ViT) and each stage's blocks (MaxViT) get a row, and a block's
    time is its rows' sum."""
    from archspec.summary import layer_rows

    small = SMALL_TRANSFORMERS[name]
    spec = SPEC_DIR / f"{name}.yaml"
    table = profile(spec, vars=small, optimize=True, depth=3, repeat=1, warmup=0)
    blocks = [r["path"] for r in layer_rows(archspec.compile(spec, **small), 3) if not r["train_only"]]
    assert [r["path"] for r in table.rows if r["path"] != OTHER] == blocks
    time = {r["path"]: r["time_ms"] for r in table.rows}
    top = [p for p in time if "/" not in p]
    assert math.isclose(sum(time[p] for p in top), table.total_rows[0]["time_ms"], rel_tol=1e-9)
    for path in time:
        inside = [p for p in time if p.rpartition("/")[0] == path]
        assert not inside or math.isclose(sum(time[p] for p in inside), time[path], rel_tol=1e-9), path
    assert sum(t > 0 for t in time.values()) > len(blocks) // 2
