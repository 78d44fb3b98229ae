"""`archspec diff`: block-by-block changes between two specs, or one spec under two settings."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import archspec
from archspec.diff import diff_rows, diff_table, merged_order
from archspec.ops.common import fmt_shape
from archspec.summary import node_text

ROOT = Path(__file__).resolve().parent.parent
GOOGLENET = ROOT / "specs" / "googlenet.yaml"
PAPER = ROOT / "specs" / "googlenet_paper.yaml"
CLI = [str(Path(sys.executable).parent / "archspec")]
INCEPTIONS = ["inception3a", "inception3b", "inception4a", "inception4b", "inception4c", "inception4d",
              "inception4e", "inception5a", "inception5b"]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, cwd=ROOT, timeout=300)


@pytest.fixture(scope="module")
def k5():
    return archspec.compile(GOOGLENET), archspec.compile(GOOGLENET, k5=5)


def test_real_5x5_adds_380928_params(k5):
    table = diff_table(*k5)
    inference, everything = table.total_rows
    assert inference["d_params"] == everything["d_params"] == 380_928
    assert (inference["params_a"], inference["params_b"]) == (6_624_904, 7_005_832)
    assert inference["d_macs"] == 1_582_671_872 - 1_498_376_192


def conv_change(a, b, block: str = "inception3a") -> str:
    name = f"{block}/branch3/1/conv"
    return f"branch3/1/conv: {node_text(a, name)} → {node_text(b, name)}"


def test_only_the_inception_blocks_change(k5):
    rows = diff_rows(*k5)
    changed = [r for r in rows if r["status"] != "same"]
    assert [r["path"] for r in changed] == INCEPTIONS
    assert sum(r["d_params"] for r in changed) == 380_928
    r3a = changed[0]
    assert r3a["changes"] == conv_change(*k5)
    assert "3" in r3a["changes"] and "5" in r3a["changes"]
    assert (r3a["d_params"], r3a["shape_a"], r3a["shape_b"]) == (32 * 16 * (25 - 9), (256, 28, 28), (256, 28, 28))


def test_unchanged_rows_hidden_unless_all(k5):
    assert [r["path"] for r in diff_table(*k5).rows] == INCEPTIONS
    assert len(diff_table(*k5, show_all=True).rows) == len(diff_rows(*k5))


def test_width_change_is_named_and_propagates(tmp_path):
    wider = tmp_path / "wider.yaml"
    wider.write_text(GOOGLENET.read_text().replace("inception(64, 96, 128, 16, 32, 32)",
                                                   "inception(64, 96, 128, 16, 48, 32)"))
    rows = {r["path"]: r for r in diff_rows(archspec.compile(GOOGLENET), archspec.compile(wider))}
    assert rows["inception3a"]["changes"] == "c5 32 → 48"
    assert (rows["inception3a"]["shape_a"], rows["inception3a"]["shape_b"]) == ((256, 28, 28), (272, 28, 28))
    assert rows["inception3b"]["changes"] == "input 256×28×28 → 272×28×28"
    assert rows["inception4a"]["status"] == "same"


def test_different_specs_rows_added_and_removed():
    rows = {r["path"]: r for r in diff_rows(archspec.compile(GOOGLENET), archspec.compile(PAPER))}
    assert rows["conv1"]["a"] == "cbr(64, 7, 2, 3)" and rows["conv1"]["b"] == "conv_relu(64, 7, 2, 3)"
    assert rows["conv1"]["changes"] == "−bn"
    assert rows["conv1"]["d_params"] == -64  # BN's 2×64 out, conv bias 64 in
    assert rows["maxpool4"]["status"] == "changed"  # 2×2/2 in torchvision, 3×3/2 in the paper


def test_added_rows(tmp_path):
    extra = tmp_path / "extra.yaml"
    extra.write_text(GOOGLENET.read_text().replace("  maxpool1: maxpool(3, s=2, ceil=true)\n",
                                                   "  maxpool1: maxpool(3, s=2, ceil=true)\n  norm1: bn\n"))
    a, b = archspec.compile(GOOGLENET), archspec.compile(extra)
    rows = diff_rows(a, b)
    assert [r["path"] for r in rows][:3] == ["conv1", "maxpool1", "norm1"]
    assert (rows[2]["status"], rows[2]["d_params"]) == ("added", 128)
    assert [r["status"] for r in diff_rows(b, a)][2] == "removed"


def test_merged_order():
    assert merged_order(["a", "x", "b", "y"], ["a", "b", "c"]) == ["a", "x", "b", "y", "c"]
    assert merged_order(["x", "a"], ["a"]) == ["x", "a"]


def test_cli_one_spec_two_settings():
    r = run("diff", GOOGLENET, "--set-b", "k5=5", "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["b"]["spec"] == f"{GOOGLENET} --set k5=5"
    assert data["b"]["total"]["params"] - data["a"]["total"]["params"] == 380_928
    assert data["changed"] == 9


def test_cli_terminal_and_markdown(k5):
    r = run("diff", GOOGLENET, GOOGLENET, "--set-b", "k5=5")
    assert r.returncode == 0, r.stderr
    assert "+380,928" in r.stdout and conv_change(*k5) in r.stdout
    md = run("diff", GOOGLENET, "--set-a", "k5=5", "--markdown")
    assert md.returncode == 0 and "| **total (inference)** |" in md.stdout and "**-380,928**" in md.stdout


@pytest.mark.parametrize("args, code", [
    ([], 2),                                      # nothing to compare
    (["--set-b", "k5=5", "--json", "--csv"], 2),  # two formats
    (["--set-b", "nope=5"], 1),                   # an undeclared variable: a spec error
    (["missing.yaml"], 1),
])
def test_cli_exit_codes(args, code):
    r = run("diff", GOOGLENET, *args)
    assert r.returncode == code, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr


# -- transformers: token shapes ------------------------------------------------------------------------------------

VIT_B_16, VIT_B_32 = ROOT / "specs" / "vit_b_16.yaml", ROOT / "specs" / "vit_b_32.yaml"


def test_vit_patch_size_changes_the_token_count_of_every_row_after_it():
    a, b = archspec.compile(VIT_B_16), archspec.compile(VIT_B_32)
    rows = {r["path"]: r for r in diff_rows(a, b)}
    assert list(rows)[:4] == ["conv_proj", "tokens", "class_token", "encoder/pos_embedding"]
    assert rows["conv_proj"]["a"] == "conv 16×16/16, 768" and rows["conv_proj"]["b"] == "conv 32×32/32, 768"
    assert [fmt_shape(rows["tokens"][k]) for k in ("shape_a", "shape_b")] == ["196×768 (tokens)", "49×768 (tokens)"]
    assert rows["class_token"]["changes"] == "input 196×768 (tokens) → 49×768 (tokens)"
    layer = rows["encoder/layers/encoder_layer_0"]
    assert (layer["status"], layer["d_params"]) == ("changed", 0)
    assert layer["changes"] == "input 197×768 (tokens) → 50×768 (tokens)"
    assert layer["d_macs"] < 0
    assert rows["encoder/pos_embedding"]["d_params"] == (50 - 197) * 768
    assert (fmt_shape(rows["class_out"]["shape_a"]), rows["class_out"]["status"]) == ("768", "changed")
    assert rows["heads/head"]["status"] == "same"
    inference = diff_table(a, b).total_rows[0]
    assert (inference["params_a"], inference["params_b"]) == (86_567_656, 88_224_232)


def test_vit_against_maxvit_reads_as_rows_added_and_removed():
    rows = diff_rows(archspec.compile(VIT_B_16), archspec.compile(ROOT / "specs" / "maxvit_t.yaml"))
    status = {r["path"]: r["status"] for r in rows}
    assert status["class_token"] == "removed" and status["conv_proj"] == "removed"
    assert "added" in {status[p] for p in status if p.startswith("blocks")}


def test_cli_markdown_shows_token_shapes():
    r = run("diff", VIT_B_16, VIT_B_32, "--markdown")
    assert r.returncode == 0, r.stderr
    assert "| tokens | to tokens | input 768×14×14 → 768×7×7 | 196×768 (tokens) → 49×768 (tokens) |" in r.stdout


# -- the same graph, written differently ---------------------------------------------------------------------------

def rewritten_googlenet(tmp_path: Path) -> Path:
    """GoogLeNet with another template name, and the global pool under another name and spelling."""
    text = GOOGLENET.read_text().replace("cbr", "basic_conv2d")
    text = text.replace("  avgpool: global_avgpool\n", "  gap: adaptive_avgpool(1)\n")
    out = tmp_path / "rewritten.yaml"
    out.write_text(text)
    return out


def test_rows_written_differently_are_the_same_graph_and_hidden(tmp_path):
    a, b = archspec.compile(GOOGLENET), archspec.compile(rewritten_googlenet(tmp_path))
    assert {r["path"]: r["status"] for r in diff_rows(a, b) if r["status"] != "same"} == {
        "conv1": "changed", "conv2": "changed", "conv3": "changed", "avgpool": "removed", "gap": "added"}
    rows = {r["path"]: r for r in diff_table(a, b, show_all=True).rows}
    assert rows["conv1"]["status"] == "same graph"
    assert rows["conv1"]["what"] == "cbr(64, 7, 2, 3) → basic_conv2d(64, 7, 2, 3)"
    assert rows["avgpool"]["status"] == rows["gap"]["status"] == "same graph"
    table = diff_table(a, b)
    assert table.rows == [] and table.meta["changed"] == 0 and table.meta["same_graph"] == 5
    assert "graph: equal" in table.notes
    assert "5 of 22 rows the same graph written differently (other templates or parameters), not shown" in table.notes
    assert table.meta["graph"] == {"equal": True, "nodes": 0, "differences": []}


def test_the_notes_give_the_verdict_for_the_whole_network(k5):
    table = diff_table(*k5)
    assert table.meta["graph"]["equal"] is False and table.meta["graph"]["nodes"] == 9
    verdict = next(n for n in table.notes if n.startswith("graph: "))
    assert verdict.startswith("graph: differs at 9 nodes: inception3a/branch3/1/conv: conv 3×3/1, 32 → conv 5×5/1")


def test_cli_exit_code_says_whether_the_graphs_differ(tmp_path):
    assert run("diff", GOOGLENET, rewritten_googlenet(tmp_path), "--exit-code").returncode == 0
    assert run("diff", GOOGLENET, "--set-b", "k5=5").returncode == 0
    differs = run("diff", GOOGLENET, "--set-b", "k5=5", "--exit-code", "--json")
    assert differs.returncode == 1 and json.loads(differs.stdout)["graph"]["nodes"] == 9
