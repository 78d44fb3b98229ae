"""`archspec draw`: the diagram's content, its determinism, file writing and the CLI.

Regenerate the golden .dot files after an intended change of the drawing with

    ARCHSPEC_UPDATE_GOLDEN=1 /work/venv/bin/pytest tests/test_draw.py -k golden
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import SMALL_TRANSFORMERS

import archspec
from archspec.draw import DrawError, build_view, render, to_dot
from archspec.ir import INPUT

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
GOLDEN = Path(__file__).parent / "golden"
GOOGLENET = SPECS / "googlenet.yaml"
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz's dot is not installed")


@pytest.fixture(scope="module")
def googlenet() -> archspec.TypedGraph:
    return archspec.compile(GOOGLENET)


@pytest.fixture
def no_dot(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A PATH on which graphviz's `dot` cannot be found."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))


def clusters(source: str) -> list[str]:
    return re.findall(r'subgraph "?cluster_([^" ]+)', source)


def op_boxes(source: str) -> list[str]:
    return re.findall(r'class="op \w+"', source)


def units(typed: archspec.TypedGraph, heads: bool = True) -> list[str]:
    return [p for p, s in typed.net.scopes.items()
            if s.kind in ("block", "head", "repeat") and (heads or s.head is None)]


def ops(typed: archspec.TypedGraph, heads: bool = True) -> list[str]:
    return [n for n in typed.order if n != INPUT and (heads or typed.net.nodes[n].head is None)]


# -- content ---------------------------------------------------------------
@pytest.mark.parametrize("heads", [True, False])
def test_full_depth_has_a_cluster_per_block_and_a_box_per_op(googlenet, heads):
    source = to_dot(googlenet, heads=heads).source
    assert sorted(clusters(source)) == sorted(units(googlenet, heads))
    assert len(op_boxes(source)) == len(ops(googlenet, heads))
    assert ("aux1" in source) is heads


@pytest.mark.parametrize("name", SMALL_TRANSFORMERS)
def test_transformers_draw_every_block_and_op_with_their_shapes(name):
    """Torch-free, so at the spec's own input: the token (ViT) and channels-last (MaxViT) shapes on the edges."""
    typed = archspec.compile(SPECS / f"{name}.yaml")
    source = to_dot(typed).source
    assert sorted(clusters(source)) == sorted(units(typed))
    assert len(op_boxes(source)) == len(ops(typed))
    shown = {"vit_b_32": ["50×768 (tokens)", "768×7×7"], "maxvit_t": ["56×56×64", "7×7×512"]}[name]
    assert all(s in source for s in shown), [s for s in shown if s not in source]
    overview = to_dot(typed, depth=1).source
    assert len(op_boxes(overview)) < len(op_boxes(source))


def test_clusters_are_titled_with_name_and_widths(googlenet):
    view = build_view(googlenet, depth=2)
    titles = [item.title for item in view.top if not isinstance(item, str)]
    assert "inception3a: inception(64, 96, 128, 16, 32, 32)" in titles
    assert "aux1: aux(1000, 0.7)" in titles


def test_depth_1_is_one_box_per_top_level_block(googlenet):
    view = build_view(googlenet, depth=1)
    assert all(isinstance(item, str) for item in view.top), "no clusters at depth 1"
    box = view.boxes["block.inception3a"]
    assert box.lines == ("inception(64, 96, 128, 16, 32, 32)", "256×28×28 · 155,872 params")
    assert googlenet.scope_total("inception3a", "params") == 155_872
    labels = {(e.tail, e.head): e.label for e in view.edges}
    assert labels["maxpool2", "block.inception3a"] == "192×28×28"
    assert labels["block.inception3a", "block.inception3b"] == "256×28×28"


def test_labels_show_each_call_as_the_spec_writes_it(googlenet):
    """Only the arguments the call gives, positional then by name: `cbr(64, 7, s=2, p=3)`, not `cbr(64, 7, 2, 3)`."""
    overview = build_view(googlenet, depth=1)
    assert overview.boxes["block.conv1"].lines[0] == "cbr(64, 7, s=2, p=3)"
    full = build_view(googlenet)
    titles = set()
    stack = list(full.top)
    while stack:
        item = stack.pop()
        if not isinstance(item, str):
            titles.add(item.title)
            stack.extend(item.items)
    assert {"branch1: cbr(64, 1)", "branch2/1: cbr(128, 3, p=1)", "conv1: cbr(64, 7, s=2, p=3)"} <= titles
    assert not any(t.startswith("branch1: cbr(64, 1, ") for t in titles)


def test_a_collapsed_box_puts_name_and_call_on_rows_of_their_own(googlenet):
    """One row each, so that no SVG renderer runs the bold name into the call (`conv1cbr(...)`)."""
    source = to_dot(googlenet, depth=1).source
    line = next(s for s in source.splitlines() if s.lstrip().startswith('"block.conv1" ['))
    rows = re.findall(r"<tr><td>(.*?)</td></tr>", line)
    assert [re.sub(r"<[^>]+>", "", r) for r in rows] == ["conv1", "cbr(64, 7, s=2, p=3)", "64×112×112 · 9,536 params"]


def test_depth_0_is_the_overview_too(googlenet):
    assert to_dot(googlenet, depth=0).source == to_dot(googlenet, depth=1).source


def test_depth_2_opens_top_level_blocks_only(googlenet):
    source = to_dot(googlenet, depth=2).source
    top = [p for p in units(googlenet) if "/" not in p]
    assert sorted(clusters(source)) == sorted(top)
    assert '"block.inception3a/branch2/0"' in source


def test_inputs_outputs_and_training_only_heads_are_marked(googlenet):
    view = build_view(googlenet, depth=1)
    assert view.boxes[INPUT].kind == "input"
    assert [b for b in view.boxes if b.startswith("output.")] == ["output.main", "output.aux1", "output.aux2"]
    assert view.boxes["output.aux1"].dashed and view.boxes["block.aux1"].dashed
    assert not view.boxes["output.main"].dashed
    assert any(e.dashed and e.head == "block.aux1" for e in view.edges)


def test_a_fan_out_writes_its_shape_once(googlenet):
    view = build_view(googlenet, depth=1)
    out = [e for e in view.edges if e.tail == "split.block.inception4a"]
    assert {e.head for e in out} == {"block.inception4b", "block.aux1"}
    assert all(e.label == "" for e in out)
    assert [e.label for e in view.edges if e.head == "split.block.inception4a"] == ["512×14×14"]


def test_legend_lists_the_kinds_drawn(googlenet):
    source = to_dot(googlenet, depth=1).source
    for name in ("pool", "linear", "block (collapsed)", "training only"):
        assert f">{name}</font>" in source
    assert ">conv</font>" not in source  # every conv is inside a collapsed block
    assert ">conv</font>" in to_dot(googlenet).source


def test_focus_draws_one_block(googlenet):
    source = to_dot(googlenet, focus="inception3a").source
    inside = [u for u in units(googlenet) if u == "inception3a" or u.startswith("inception3a/")]
    assert sorted(clusters(source)) == sorted(inside)
    assert len(op_boxes(source)) == sum(n == "inception3a" or n.startswith("inception3a/") for n in googlenet.order)
    assert '"input.maxpool2"' in source and '"output."' in source


def test_focus_with_depth_counts_from_the_focused_block(googlenet):
    view = build_view(googlenet, focus="inception3a", depth=1)
    (cluster,) = [item for item in view.top if not isinstance(item, str)]
    assert cluster.title == "inception3a: inception(64, 96, 128, 16, 32, 32)"
    assert "block.inception3a/branch2/0" in cluster.items


def test_unknown_focus_suggests_a_name(googlenet):
    with pytest.raises(DrawError, match="did you mean .*'inception3a'"):
        to_dot(googlenet, focus="inception3x")


def test_repeats_fold_into_one_box(write_spec):
    path = write_spec("""
        archspec: 1
        name: tower
        input: [8, 16, 16]
        blocks:
          unit:
            params: [c]
            body:
              - conv($c, 3, p=1)
              - relu
        body:
          stem: conv(16, 1)
          stage: {repeat: 3, body: unit(16)}
          pool: global_avgpool
          flatten: flatten
          fc: linear(10)
        heads:
          extra:
            from: stage
            body:
              - global_avgpool
              - flatten
              - linear(2)
    """)
    typed = archspec.compile(path)
    folded = build_view(typed, depth=1)
    assert folded.boxes["block.stage"].lines[0] == "unit(16) ×3"
    assert not folded.boxes["output.extra"].dashed  # a head used at inference: marked, not dashed
    full = to_dot(typed).source
    assert sorted(clusters(full)) == sorted(units(typed))
    assert len(op_boxes(full)) == len(ops(typed))
    assert "stage: unit(16) ×3" in full


def test_lr_and_bad_rankdir(googlenet):
    assert "rankdir=LR" in to_dot(googlenet, depth=1, rankdir="LR").source
    with pytest.raises(DrawError, match="rankdir"):
        to_dot(googlenet, rankdir="BT")  # type: ignore[arg-type]


# -- determinism and the golden file --------------------------------------
def test_dot_is_deterministic(tmp_path):
    a, b = tmp_path / "a.dot", tmp_path / "b.dot"
    render(archspec.compile(GOOGLENET), a)
    render(archspec.compile(GOOGLENET), b)
    assert a.read_bytes() == b.read_bytes()


def test_golden_googlenet_depth1(googlenet, tmp_path):
    out = render(googlenet, tmp_path / "googlenet_depth1.dot", depth=1)
    golden = GOLDEN / "googlenet_depth1.dot"
    if os.environ.get("ARCHSPEC_UPDATE_GOLDEN"):
        golden.parent.mkdir(exist_ok=True)
        shutil.copyfile(out, golden)
    assert out.read_text() == golden.read_text(), "drawing changed; see this file's docstring to regenerate"


# -- writing files -----------------------------------------------------------
@needs_dot
def test_svg_parses_as_xml(googlenet, tmp_path):
    out = render(googlenet, tmp_path / "g.svg", depth=1)
    root = ET.parse(out).getroot()
    assert root.tag.endswith("svg")
    classes = [g.get("class", "").split() for g in root.iter("{http://www.w3.org/2000/svg}g")]
    assert sum(c == ["node", "block"] for c in classes) == len([u for u in units(googlenet) if "/" not in u])
    loose = [n for n in ops(googlenet) if "/" not in n and n not in googlenet.net.scopes]  # maxpool1, ..., fc
    assert sum(c[:2] == ["node", "op"] for c in classes) == len(loose) == 8


@needs_dot
def test_svg_puts_a_boxs_name_and_call_on_lines_of_their_own(googlenet, tmp_path):
    """Each on its own baseline: a renderer that measures text otherwise than graphviz cannot run them together."""
    svg = "{http://www.w3.org/2000/svg}"
    root = ET.parse(render(googlenet, tmp_path / "g.svg", depth=1)).getroot()
    node = next(g for g in root.iter(f"{svg}g") if g.findtext(f"{svg}title") == "block.conv1")
    texts = {t.text: float(t.get("y", "nan")) for t in node.iter(f"{svg}text")}
    assert set(texts) == {"conv1", "cbr(64, 7, s=2, p=3)", "64×112×112 · 9,536 params"}
    assert len(set(texts.values())) == 3


@needs_dot
@pytest.mark.parametrize("suffix, magic", [(".png", b"\x89PNG"), (".pdf", b"%PDF")])
def test_png_and_pdf(googlenet, tmp_path, suffix, magic):
    out = render(googlenet, tmp_path / f"g{suffix}", focus="inception3a", depth=1)
    assert out.read_bytes().startswith(magic)


def test_dot_needs_no_binary(googlenet, tmp_path, no_dot):
    out = render(googlenet, tmp_path / "g.dot", depth=1)
    assert out.read_text().startswith("// archspec draw: googlenet")


def test_missing_binary_is_a_clear_error_and_leaves_no_file(googlenet, tmp_path, no_dot):
    out = tmp_path / "g.svg"
    out.write_text("old")
    with pytest.raises(DrawError, match=r"`dot` program is not installed; install it \(apt-get install graphviz\)"):
        render(googlenet, out)
    assert out.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty-bin", "g.svg"]


def test_unknown_suffix(googlenet, tmp_path):
    with pytest.raises(DrawError, match=r"unknown format '\.txt'; write \.svg, \.png, \.pdf or \.dot"):
        render(googlenet, tmp_path / "g.txt")
    assert not (tmp_path / "g.txt").exists()


def test_never_overwrites_the_spec(write_spec):
    path = write_spec(GOOGLENET.read_text(), name="net.dot")
    with pytest.raises(DrawError, match="spec file itself"):
        render(archspec.compile(path), path)
    assert path.read_text() == GOOGLENET.read_text()


# -- command line ------------------------------------------------------------
def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("archspec")
    return subprocess.run([str(exe), "draw", *args], cwd=ROOT, capture_output=True, text=True, timeout=120)


@needs_dot
def test_cli_draws_svg(tmp_path):
    out = tmp_path / "x.svg"
    result = run_cli("specs/googlenet.yaml", "-o", str(out), "--depth", "1", "--no-heads", "--lr")
    assert result.returncode == 0, result.stderr
    assert f"wrote {out}" in result.stdout
    ET.parse(out)


def test_cli_bad_suffix_is_a_usage_error(tmp_path):
    result = run_cli("specs/googlenet.yaml", "-o", str(tmp_path / "x.jpg"))
    assert result.returncode == 2
    assert "unknown format '.jpg'; write .svg, .png, .pdf or .dot" in result.stderr
    assert not (tmp_path / "x.jpg").exists()


def test_cli_focus(tmp_path):
    from click.testing import CliRunner

    from archspec.cli import main

    ok = CliRunner().invoke(main, ["draw", str(GOOGLENET), "-o", str(tmp_path / "x.dot"), "--focus", "inception3a"])
    assert ok.exit_code == 0, ok.output
    assert '"input.maxpool2"' in (tmp_path / "x.dot").read_text()
    bad = CliRunner().invoke(main, ["draw", str(GOOGLENET), "-o", str(tmp_path / "y.dot"), "--focus", "nope"])
    assert bad.exit_code == 1
    assert "error[draw]: no block or head named 'nope'" in bad.output
    assert not (tmp_path / "y.dot").exists()


def test_drawing_is_torch_free():
    code = ("import sys, archspec; from archspec.draw import to_dot; "
            f"to_dot(archspec.compile({str(GOOGLENET)!r})); assert 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
