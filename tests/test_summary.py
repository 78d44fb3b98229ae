"""`archspec summary`: the per-layer and paper tables, their formats, and cross-checks against torch.

The paper view of specs/googlenet_paper.yaml is checked against GoogLeNet's Table 1
(arXiv 1409.4842), row by row, with the arithmetic of
shared/reference/inception_facts.md §1.3. The counts of every spec in specs/ are
cross-checked against the built module (parameters) and torch's FLOP counter (MACs).
"""

from __future__ import annotations

import csv
import io
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

import archspec
from archspec.summary import layer_rows, layer_table, paper_table, totals, units

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").glob("*.yaml"))
GOOGLENET = ROOT / "specs" / "googlenet.yaml"
PAPER = ROOT / "specs" / "googlenet_paper.yaml"
CLI = [str(Path(sys.executable).parent / "archspec")]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, cwd=ROOT, timeout=300)


def compiled(path: Path):
    try:
        return archspec.compile(path)
    except archspec.SpecError as exc:  # a broken spec is the spec tests' business, not this file's
        pytest.skip(f"{path.name} does not compile: {exc.diagnostics[0].headline()}")


# -- per-layer view ------------------------------------------------------------

@pytest.fixture(scope="module")
def googlenet():
    return archspec.compile(GOOGLENET)


def test_full_depth_lists_every_node_once(googlenet):
    rows = layer_rows(googlenet)
    ops = [r["path"] for r in rows if r["kind"] == "op"]
    assert sorted(ops) == sorted(n for n in googlenet.order if n != "input")
    assert len(ops) == len(set(ops))


def test_top_level_rows_roll_up_to_the_totals(googlenet):
    rows = layer_rows(googlenet, depth=1)
    assert {r["depth"] for r in rows} == {1}
    assert sum(r["params"] for r in rows) == googlenet.total("params") == 13_004_888
    assert sum(r["macs"] for r in rows if not r["train_only"]) == 1_498_376_192
    assert [r["path"] for r in rows if r["train_only"]] == ["aux1", "aux2"]


def test_block_row_rolls_up_its_children(googlenet):
    rows = {r["path"]: r for r in layer_rows(googlenet, depth=2) if r["kind"] != "op"}
    inc = rows["inception3a"]
    assert (inc["op"], inc["shape"], inc["params"]) == ("inception(64, 96, 128, 16, 32, 32)", (256, 28, 28), 155_872)
    children = [r for r in layer_rows(googlenet, depth=2) if r["path"].startswith("inception3a/")]
    assert sum(r["params"] for r in children) == inc["params"]
    assert max(r["depth"] for r in layer_rows(googlenet, depth=2)) == 2


def test_concat_node_is_a_child_of_its_block(googlenet):
    rows = layer_rows(googlenet)
    i = next(i for i, r in enumerate(rows) if r["path"] == "inception3a" and r["kind"] == "block")
    concat = next(r for r in rows if r["path"] == "inception3a" and r["kind"] == "op")
    assert (concat["op"], concat["depth"]) == ("concat", rows[i]["depth"] + 1)


def test_totals(googlenet):
    t = totals(googlenet)
    assert t["params"] == t["trainable_params"] == 13_004_888
    assert t["params_inference"] == 6_624_904
    assert t["macs"] == 1_498_376_192
    eval_nodes = googlenet.graph.eval_nodes()
    assert t["activation_bytes"] == 4 * sum(math.prod(googlenet.shape(n)) for n in eval_nodes)
    assert t["activation_bytes"] == 49_944_544


def test_trainable_params_equal_params_and_exclude_bn_buffers(googlenet):
    torch = pytest.importorskip("torch")
    module = archspec.build(googlenet, device="meta")
    assert sum(p.numel() for p in module.parameters() if p.requires_grad) == totals(googlenet)["trainable_params"]
    assert sum(b.numel() for b in module.buffers()) > 0 and torch is not None


# -- paper view: GoogLeNet Table 1 -----------------------------------------------

# name: (output size, depth, widths, paper params K, paper ops M, weights computed, MACs computed)
TABLE_1 = {
    "conv1": ("112×112×64", 1, (), 2.7, 34, 9_408, 118_013_952),
    "maxpool1": ("56×56×64", 0, (), None, None, 0, 0),
    "conv2+conv3": ("56×56×192", 2, (), 112, 360, 114_688, 359_661_568),
    "maxpool2": ("28×28×192", 0, (), None, None, 0, 0),
    "inception3a": ("28×28×256", 2, (64, 96, 128, 16, 32, 32), 159, 128, 163_328, 128_049_152),
    "inception3b": ("28×28×480", 2, (128, 128, 192, 32, 96, 64), 380, 304, 388_096, 304_267_264),
    "maxpool3": ("14×14×480", 0, (), None, None, 0, 0),
    "inception4a": ("14×14×512", 2, (192, 96, 208, 16, 48, 64), 364, 73, 375_552, 73_608_192),
    "inception4b": ("14×14×512", 2, (160, 112, 224, 24, 64, 64), 437, 88, 448_512, 87_908_352),
    "inception4c": ("14×14×512", 2, (128, 128, 256, 24, 64, 64), 463, 100, 509_440, 99_850_240),
    "inception4d": ("14×14×528", 2, (112, 144, 288, 32, 64, 64), 580, 119, 604_672, 118_515_712),
    "inception4e": ("14×14×832", 2, (256, 160, 320, 32, 128, 128), 840, 170, 867_328, 169_996_288),
    "maxpool4": ("7×7×832", 0, (), None, None, 0, 0),
    "inception5a": ("7×7×832", 2, (256, 160, 320, 32, 128, 128), 1072, 54, 1_042_432, 51_079_168),
    "inception5b": ("7×7×1024", 2, (384, 192, 384, 48, 128, 128), 1388, 71, 1_442_816, 70_697_984),
    "avgpool": ("1×1×1024", 0, (), None, None, 0, 0),
    "dropout": ("1×1×1024", 0, (), None, None, 0, 0),
    "fc": ("1×1×1000", 1, (), 1000, 1, 1_024_000, 1_024_000),
}
PARAMS_WRONG = {"conv1", "inception4c", "inception5a"}  # the paper's params column vs its own widths
OPS_WRONG = {"conv1", "inception5a"}
LABELS = ("#1×1", "#3×3 reduce", "#3×3", "#5×5 reduce", "#5×5", "pool proj")


def paper_rows(path: Path, **sets) -> dict[str, dict]:
    """Paper-view rows by name, with the paper's one conv2+conv3 row made from the spec's two."""
    rows = {r["path"]: r for r in paper_table(archspec.compile(path, **sets)).rows}
    c2, c3 = rows.pop("conv2"), rows.pop("conv3")
    rows["conv2+conv3"] = {**c3, "depth": c2["depth"] + c3["depth"], "weights": c2["weights"] + c3["weights"],
                           "macs": c2["macs"] + c3["macs"]}
    return rows


@pytest.fixture(scope="module")
def table1():
    if not PAPER.exists():
        pytest.skip("specs/googlenet_paper.yaml is not written yet")
    return paper_rows(PAPER)


def test_paper_view_has_the_rows_of_table_1(table1):
    main = [name for name, r in table1.items() if not r["train_only"]]
    assert sorted(main) == sorted(TABLE_1)
    assert [name for name, r in table1.items() if r["train_only"]] == ["aux1", "aux2"]


@pytest.mark.parametrize("name", list(TABLE_1))
def test_paper_view_reproduces_table_1(table1, name):
    size, depth, widths, paper_k, paper_m, w, macs = TABLE_1[name]
    row = table1[name]
    assert (row["output"], row["depth"]) == (size, depth)
    assert tuple(row.get(label) for label in LABELS if label in row) == widths
    assert (row["weights"], row["macs"]) == (w, macs)  # exact, from the widths
    if paper_k is not None and name not in PARAMS_WRONG:
        assert abs(w / 1024 - paper_k) / paper_k < 0.025, f"{w / 1024:.1f}K vs the paper's {paper_k}K"
    if paper_m is not None and name not in OPS_WRONG:
        assert abs(macs / 1e6 - paper_m) < 1, f"{macs / 1e6:.1f}M vs the paper's {paper_m}M"


@pytest.mark.parametrize("name", sorted(PARAMS_WRONG | OPS_WRONG))
def test_rows_where_table_1_disagrees_with_its_arithmetic(table1, name):
    _, _, _, paper_k, paper_m, w, macs = TABLE_1[name]
    assert abs(w / 1024 - paper_k) / paper_k > 0.05 or abs(macs / 1e6 - paper_m) > 2


def test_conv1_row_is_a_separable_conv_in_the_paper():
    weights = 7 * 7 * 3 * 8 + 24 * 64  # depthwise 7×7 with depth multiplier 8, then 1×1 to 64
    assert (round(weights / 1000, 1), round(weights * 112 * 112 / 1e6)) == (2.7, 34)


def test_paper_view_patch_sizes(table1):
    patches = {n: table1[n]["patch"] for n in ("conv1", "maxpool1", "conv2+conv3", "inception3a", "avgpool", "fc")}
    assert patches == {"conv1": "7×7/2", "maxpool1": "3×3/2", "conv2+conv3": "3×3/1", "inception3a": "",
                       "avgpool": "7×7/1", "fc": ""}


def test_paper_view_totals(table1):
    t = paper_table(archspec.compile(PAPER))
    total = t.total_rows[0]
    assert (total["weights"], total["params"], total["macs"]) == (6_990_272, 6_998_552, 1_582_671_872)
    assert sum(r["weights"] for r in t.rows if not r["train_only"]) == 6_990_272
    assert sum(r["params"] for r in t.rows) == 13_378_280


def test_torchvision_googlenet_with_5x5_has_the_papers_weights():
    rows = paper_rows(GOOGLENET, k5=5)
    for name, (_, depth, _, _, _, w, macs) in TABLE_1.items():
        assert (rows[name]["weights"], rows[name]["macs"], rows[name]["depth"]) == (w, macs, depth), name


def test_paper_view_global_pool_patch(googlenet):
    rows = {r["path"]: r for r in paper_table(googlenet).rows}
    assert rows["avgpool"]["patch"] == "7×7/1"
    assert rows["maxpool4"]["patch"] == "2×2/2"


# -- formats -------------------------------------------------------------------

def test_markdown_and_csv_and_json_agree(googlenet):
    table = layer_table(googlenet, depth=1)
    data = table.to_json()
    assert data["total"]["params"] == 13_004_888
    assert [r["path"] for r in data["rows"]] == [r["path"] for r in table.rows]
    parsed = list(csv.DictReader(io.StringIO(table.to_csv())))
    assert [r["path"] for r in parsed][-2:] == ["total (inference)", "total (with training-only heads)"]
    assert int(parsed[0]["params"]) == 9_536 and parsed[0]["shape"] == "64x112x112"
    md = table.to_markdown().splitlines()
    assert md[2].startswith("| layer | op / block |") and md[3].startswith("| --- |")
    assert "| inception3a | inception(64, 96, 128, 16, 32, 32) |  | 256×28×28 | 155,872 |" in table.to_markdown()


# -- command line --------------------------------------------------------------

def test_cli_terminal_table():
    r = run("summary", GOOGLENET, "--depth", "1")
    assert r.returncode == 0, r.stderr
    assert "inception(64, 96, 128, 16, 32, 32)" in r.stdout
    assert "13,004,888" in r.stdout and "1,498,376,192" in r.stdout and "training only" in r.stdout
    assert all(line == line.rstrip() for line in r.stdout.splitlines())


def test_cli_json_is_deterministic_and_takes_sets():
    a = run("summary", GOOGLENET, "--paper", "--json", "--set", "k5=5")
    b = run("summary", GOOGLENET, "--paper", "--json", "--set", "k5=5")
    assert a.returncode == 0, a.stderr
    assert a.stdout == b.stdout
    data = json.loads(a.stdout)
    assert data["overrides"] == {"k5": 5} and data["total"]["params_inference"] == 7_005_832


@pytest.mark.parametrize("args, code", [
    (["--json", "--csv"], 2),
    (["--depth", "0"], 2),
    (["--paper", "--depth", "2"], 2),
    (["--set", "nope=1"], 1),
])
def test_cli_exit_codes(args, code):
    r = run("summary", GOOGLENET, *args)
    assert r.returncode == code, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr


def test_cli_spec_error_is_a_diagnostic(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOGLENET.read_text().replace("conv3: cbr(192, 3, p=1)", "conv3: cbr(192, 3, q=1)"))
    r = run("summary", bad, "--markdown")
    assert r.returncode == 1 and "error[unknown-argument]" in r.stderr


def test_summary_and_diff_do_not_import_torch():
    code = ("import sys; from click.testing import CliRunner; from archspec.cli import main; "
            f"r = CliRunner().invoke(main, ['summary', {str(GOOGLENET)!r}, '--paper']); "
            f"s = CliRunner().invoke(main, ['diff', {str(GOOGLENET)!r}, '--set-b', 'k5=5', '--csv']); "
            "assert r.exit_code == 0 and s.exit_code == 0, (r.output, s.output); "
            "assert 'torch' not in sys.modules, 'torch was imported'")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 0, r.stderr


# -- cross-checks against torch, every spec ------------------------------------

def _numel_under(module, path: str) -> int:
    target = path.replace("/", ".")
    try:
        sub = module.get_submodule(target)
    except AttributeError:
        try:
            return module.get_parameter(target).numel()  # a block's own learned tensor (ConvNeXt's layer_scale)
        except AttributeError:
            return 0  # a scope of function calls only: no module, no parameters
    return sum(p.numel() for p in sub.parameters())


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.stem)
def test_params_per_block_match_the_built_module(path):
    pytest.importorskip("torch")
    typed = compiled(path)
    module = archspec.build(typed, device="meta")
    assert sum(p.numel() for p in module.parameters()) == totals(typed)["params"]
    for row in layer_rows(typed):
        if row["kind"] == "op" and row["path"] in typed.net.scopes:
            continue  # a merge node named after its block: the module path is the block's
        assert _numel_under(module, row["path"]) == row["params"], row["path"]


def _unit_flops(per_module: dict, root: str, path: str) -> int:
    """FLOPs of the modules under `path`: a module's count includes the modules it calls (Swin's attention
    calls its `proj`), so only the outermost ones count."""
    prefix = f"{root}.{path.replace('/', '.')}"
    under = [k for k in per_module if k == prefix or k.startswith(prefix + ".")]
    outer = [k for k in under if not any(k.startswith(o + ".") for o in under)]
    return sum(sum(per_module[k].values()) for k in outer)


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.stem)
def test_macs_match_torch_flop_counter(path):
    """Eval mode at batch 1; training mode at batch 1 too, extrapolated from batches of 2 and 4 (a batch norm
    in training wants more than one value per channel): 3·F(2) − F(4) = 2·F(1), with work done once per
    forward whatever the batch (Swin V2's position-bias MLP) counted once, as archspec counts it per image."""
    torch = pytest.importorskip("torch")
    from torch.utils.flop_counter import FlopCounterMode

    typed = compiled(path)
    module = archspec.build(typed, device="meta")
    t = totals(typed)
    counters = {}
    for training, batch in ((False, 1), (True, 2), (True, 4)):
        module.train(training)
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            module(torch.empty((batch, *typed.input_shape), device="meta"))
        counters[batch] = counter
    assert counters[1].get_total_flops() == 2 * t["macs"]
    assert 3 * counters[2].get_total_flops() - counters[4].get_total_flops() == 2 * 2 * t["macs_training"]
    two, four = counters[2].get_flop_counts(), counters[4].get_flop_counts()
    root = next(k for k in four if k != "Global" and "." not in k)
    for unit in units(typed):
        flops = 3 * _unit_flops(two, root, unit.path) - _unit_flops(four, root, unit.path)
        assert flops == 2 * 2 * typed.scope_total(unit.path, "macs"), unit.path


def test_cli_terminal_shows_brackets_verbatim(write_spec):
    path = write_spec("""
        archspec: 1
        name: asym
        input: [3, 16, 16]
        blocks:
          cbr:
            params: [out, k, p=0]
            body:
              conv: conv($out, $k, p=$p, bias=false)
              bn: bn
              relu: relu
        body:
          a: cbr(8, [1, 3], p=[0, 1])
          pool: global_avgpool
          flat: flatten
          fc: linear(10)
        """)
    r = run("summary", path)
    assert r.returncode == 0, r.stderr
    assert "cbr(8, [1, 3], [0, 1])" in r.stdout  # not eaten as rich markup
