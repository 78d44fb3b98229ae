"""The standalone PyTorch source emitter: readable, torch-only, weights and outputs equal to the archspec module's."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import REPRESENTATIVE_SPECS, compile_small

import archspec
from archspec.backends.python_source import emit_python

ROOT = Path(__file__).resolve().parents[2]
SPECS = REPRESENTATIVE_SPECS
SLOW = {"inception_v4", "inception_resnet_v2"}

# Runs in a fresh interpreter: `-I -S` leaves out the repository, PYTHONPATH and every .pth file (so the
# editable install of archspec too); only the directory that holds torch is put back on sys.path. One child runs
# every selected spec's file (torch is imported once), each in its own folder; a failure is recorded, not raised.
CHILD = """
import importlib.util, json, os, sys, traceback
sys.path.append(sys.argv[1])
try:
    import archspec  # noqa: F401
except ImportError:
    pass
else:
    raise SystemExit("archspec is importable in the child process")
import torch
for folder, class_name in json.loads(sys.argv[2]):
    os.chdir(folder)
    try:
        spec = importlib.util.spec_from_file_location("model", "model.py")
        model_module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(model_module)
        with torch.device("meta"):  # no random init: every tensor comes from the archspec module's state_dict
            model = getattr(model_module, class_name)()
        model.load_state_dict(torch.load("state.pt", weights_only=True), strict=True, assign=True)
        x = torch.load("x.pt", weights_only=True)
        out = {}
        with torch.no_grad():
            out["eval"] = model.eval()(x)
            torch.manual_seed(1234)
            out["train"] = model.train()(x)
        torch.save({"outputs": out, "loss_weights": model.loss_weights}, "got.pt")
    except Exception:
        open("error.txt", "w").write(traceback.format_exc())
"""


def _close(got, expected) -> None:
    if isinstance(expected, dict):
        assert isinstance(got, dict) and list(got) == list(expected)
        for key in expected:
            torch.testing.assert_close(got[key], expected[key], atol=1e-5, rtol=0)
    else:
        assert isinstance(got, torch.Tensor)
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


def _class_name(source: str) -> str:
    return [line for line in source.splitlines() if line.startswith("class ")][-1][6:].split("(")[0]


def _prepare(spec: Path, folder: Path) -> tuple[dict, Any]:
    """Emit the spec's file (at its smallest input) into `folder` with the archspec module's weights and an input;
    the archspec module's own outputs, in eval and training mode, and its loss weights."""
    typed = compile_small(spec)
    source = emit_python(typed)
    folder.mkdir()
    (folder / "model.py").write_text(source)
    torch.manual_seed(0)
    model = archspec.build(typed)
    for name, p in model.named_parameters():  # make BN scales and shifts non-trivial too
        if name.endswith("bn.weight") or name.endswith("bn.bias"):
            torch.nn.init.uniform_(p, 0.5, 1.5)
    torch.save(model.state_dict(), folder / "state.pt")
    x = torch.randn(2, *typed.input_shape, generator=torch.Generator().manual_seed(1))
    torch.save(x, folder / "x.pt")
    with torch.no_grad():
        expected_eval = model.eval()(x)
        torch.manual_seed(1234)  # the same seed before both calls: dropout draws the same masks if run in order
        expected_train = model.train()(x)
    return {"eval": expected_eval, "train": expected_train}, (_class_name(source), model.loss_weights)


@pytest.fixture(scope="module")
def emitted_runs(request, tmp_path_factory) -> dict[str, tuple[Path, dict, Any]]:
    """Every spec this run selected for `test_emitted_file_runs_without_archspec_and_matches`, run in one child."""
    chosen = [item.callspec.params["spec"] for item in request.session.items
              if getattr(item, "originalname", None) == "test_emitted_file_runs_without_archspec_and_matches"]
    root = tmp_path_factory.mktemp("emitted")
    prepared = {spec.stem: (root / spec.stem, *_prepare(spec, root / spec.stem)) for spec in chosen}
    jobs = [(str(folder), class_name) for folder, _, (class_name, _) in prepared.values()]
    site = str(Path(torch.__file__).resolve().parents[1])
    result = subprocess.run([sys.executable, "-I", "-S", "-c", CHILD, site, json.dumps(jobs)], cwd=root,
                            capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stderr[-3000:]
    return prepared


@pytest.mark.xdist_group("emitted_runs")  # one worker prepares and runs them all
@pytest.mark.parametrize("spec", [pytest.param(p, id=p.stem, marks=[pytest.mark.slow] if p.stem in SLOW else [])
                                  for p in SPECS])
def test_emitted_file_runs_without_archspec_and_matches(spec: Path, emitted_runs) -> None:
    folder, expected, (_, loss_weights) = emitted_runs[spec.stem]
    assert not (folder / "error.txt").exists(), (folder / "error.txt").read_text()[-3000:]
    got = torch.load(folder / "got.pt", weights_only=True)
    _close(got["outputs"]["eval"], expected["eval"])
    _close(got["outputs"]["train"], expected["train"])
    assert got["loss_weights"] == loss_weights


@pytest.mark.parametrize("spec", SPECS, ids=[p.stem for p in SPECS])
def test_emitted_file_compiles_and_passes_ruff(spec: Path, tmp_path: Path) -> None:
    source = emit_python(archspec.compile(spec))
    compile(source, f"{spec.stem}.py", "exec")
    assert max(len(line) for line in source.splitlines()) <= 120
    path = tmp_path / f"{spec.stem}.py"
    path.write_text(source)
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--isolated", "--no-cache", str(path)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_googlenet_reads_like_the_paper() -> None:
    source = emit_python(archspec.compile(ROOT / "specs" / "googlenet.yaml"))
    assert "class Inception(nn.Module):" in source
    assert "self.inception3a = Inception(192, 64, 96, 128, 16, 32, 32)" in source
    assert "def __init__(self, in_ch: int, c1: int, c3r: int, c3: int, c5r: int, c5: int, pool_proj: int)" in source
    assert "self.branch2 = nn.Sequential(Cbr(in_ch, c3r, 1), Cbr(c3r, c3, 3, p=1))" in source
    assert "return torch.cat([branch1, branch2, branch3, branch4], 1)" in source
    assert 'self.loss_weights = {"main": 1.0, "aux1": 0.3, "aux2": 0.3}' in source
    assert "googlenet.yaml" in source.split('"""')[1] and "13,004,888" in source.split('"""')[1]


def test_emitting_is_deterministic() -> None:
    spec = ROOT / "specs" / "inception_v3.yaml"
    assert emit_python(archspec.compile(spec)) == emit_python(archspec.compile(spec))


def test_residual_blocks_keep_scale_and_activation_as_parameters() -> None:
    source = emit_python(archspec.compile(ROOT / "specs" / "inception_resnet_v2.yaml"))
    assert "self.repeat = nn.Sequential(*[Block35(0.17) for _ in range(10)])" in source
    assert "self.block8 = Block8(1.0, act=\"identity\")" in source
    assert "self.act = activation(act)" in source


def _run_both(path: Path, **vars) -> tuple[str, dict]:
    """Emit a spec, exec the source here and compare it with the archspec module in both modes."""
    typed = archspec.compile(path, **vars)
    source = emit_python(typed)
    namespace: dict = {}
    exec(compile(source, str(path), "exec"), namespace)
    torch.manual_seed(0)
    model = archspec.build(typed)
    ours = namespace[_class_name(source)]()
    ours.load_state_dict(model.state_dict(), strict=True)
    assert list(ours.state_dict()) == list(model.state_dict())
    x = torch.randn(2, *typed.input_shape)
    with torch.no_grad():
        for mode in (False, True):
            torch.manual_seed(7)
            expected = model.train(mode)(x)
            torch.manual_seed(7)
            _close(ours.train(mode)(x), expected)
    return source, namespace


def test_structure_changing_arguments(write_spec) -> None:
    path = write_spec("""
        archspec: 1
        name: shapes
        input: [3, 16, 16]
        blocks:
          unit:
            params: [w, n, half=$w // 2, act=relu]
            body:
              stack:
                repeat: $n
                body: conv($w, 3, p=1)
              reduce: conv($half, 1)
              squeeze: {from: input, body: "conv($half, 1)"}
              both: concat(reduce, squeeze)
              act: act($act)
          twice:
            params: [w]
            body:
              - unit($w, 2)
              - unit($w * 2, 2, act=gelu)
        body:
          a: twice(8)
          b: unit(12, 3)
          pool: global_avgpool
          flatten: flatten
          fc: linear(5)
        heads:
          side: {from: a, body: [global_avgpool, flatten, dropout(0.5), linear(3)]}
          extra: {from: a, train_only: true, loss_weight: 0.5, body: [global_avgpool, flatten, linear(2)]}
    """)
    source, _ = _run_both(path)
    # `unit` is used with n=2 and n=3: its repeat count differs, so its uses are written inline,
    # and `twice`, which holds it, is one class with the loop bound written as the parameter.
    assert "class Twice(nn.Module):" in source
    assert "class Unit(nn.Module):" not in source
    assert "# `unit(12, 3, 6, relu)` written out inline: its uses differ in structure ('a/0' and 'b')" in source
    assert max(len(line) for line in source.splitlines()) <= 120


def test_same_repeat_count_from_a_parameter_is_a_loop(write_spec) -> None:
    path = write_spec("""
        archspec: 1
        name: loops
        input: [4, 8, 8]
        blocks:
          layer:
            params: [w, mid=$w * 2]
            body:
              conv: conv($mid, 3, p=1)
              relu: relu
              back: conv($w, 1)
          stage:
            params: [w, n]
            body:
              repeat: $n
              body: layer($w)
        body:
          s1: stage(4, 3)
          s2: stage(4, 3)
    """)
    source, _ = _run_both(path)
    assert "class Stage(nn.Sequential):" in source
    assert "super().__init__(*[Layer(w) for _ in range(n)])" in source
    assert "self.s1 = Stage(4, 3)" in source
    assert "if mid is None:\n            mid = w * 2" in source  # a default computed from another parameter


def test_inner_node_read_from_outside_is_written_inline(write_spec) -> None:
    path = write_spec("""
        archspec: 1
        name: taps
        input: [3, 8, 8]
        blocks:
          pair:
            params: [w]
            body:
              first: conv($w, 1)
              second: conv($w, 3, p=1)
        body:
          a: pair(4)
          b: pair(4)
          tap: {from: a/first, body: "conv(4, 1)"}
          both: concat(b, tap)
    """)
    source, _ = _run_both(path)
    assert "self.b = Pair(4, 4)" in source  # `b` is an instance of the class
    assert "# `pair(4)` written out inline: nodes inside it are read from outside it" in source
    assert "first = self.a.first(x)" in source and "tap = self.tap(first)" in source


def test_top_level_non_train_heads_return_a_dict(write_spec) -> None:
    path = write_spec("""
        archspec: 1
        name: twoheads
        input: [3, 8, 8]
        body:
          conv: conv(4, 3)
          pool: global_avgpool
          flatten: flatten
          fc: linear(2)
        heads:
          other: {from: flatten, body: "linear(3)"}
    """)
    source, namespace = _run_both(path)
    out = namespace["Twoheads"]().eval()(torch.randn(1, 3, 8, 8))
    assert set(out) == {"main", "other"}


def test_python_source_does_not_change_check_being_torch_free() -> None:
    code = textwrap.dedent("""
        import sys
        import archspec.backends.python_source  # noqa: F401
        assert "torch" not in sys.modules
    """)
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_docs_show_the_emitted_googlenet_verbatim() -> None:
    doc = (ROOT / "docs" / "python-source.md").read_text()
    source = emit_python(archspec.compile(ROOT / "specs" / "googlenet.yaml"))
    shown = [b.strip("\n") for b in re.findall(r"```python\n(.*?)```", doc, re.S)]
    excerpts = [b for b in shown if b.startswith(('"""', "class "))]
    assert len(excerpts) >= 3
    for excerpt in excerpts:
        assert excerpt in source


def test_an_op_without_a_source_form_is_a_located_error(write_spec) -> None:
    """A plugin may register an op without `source`: `-o .py` names each node that uses it, at its line."""
    from archspec.errors import SpecError
    from archspec.ops import REGISTRY, Op, register
    from archspec.ops.common import same_shape
    from archspec.ops.registry import IDENTITY, NoAttrs

    register(Op(name="opaque_test_op", attrs=NoAttrs, infer=same_shape, emit=lambda a, ins: IDENTITY,
                doc="An op with no Python-source form."))
    try:
        path = write_spec("""
            archspec: 1
            name: opaque
            input: [3, 8, 8]
            body:
              conv: conv(4, 3)
              odd: opaque_test_op
        """)
        typed = archspec.compile(path)
        with pytest.raises(SpecError) as info:
            emit_python(typed)
    finally:
        del REGISTRY["opaque_test_op"]
    (diag,) = info.value.diagnostics
    assert (diag.code, diag.path, diag.loc.line) == ("no-python-source", "odd", 6)
    assert "'opaque_test_op'" in diag.message and ".onnx" in (diag.hint or "")


def test_a_block_as_wide_out_as_in_writes_its_width_as_the_parameter_that_carries_it(write_spec) -> None:
    """A transformer block given its width D (`encoder_block(heads, hidden_dim, ...)`) reads
    `nn.LayerNorm(hidden_dim)`, not the number; a block whose output is narrower keeps the number even where an
    argument happens to equal its input's width."""
    path = write_spec("""
        archspec: 1
        name: widths
        input: [16]
        blocks:
          mlp:
            params: [hidden, width]
            body:
              ln: layernorm
              up: linear($hidden)
              down: linear($width)
          narrow:
            params: [hidden, out]
            body:
              up: linear($hidden)
              down: linear($out)
        body:
          a: mlp(64, 16)
          b: mlp(32, 16)
          c: narrow(16, 8)
    """)
    source, _ = _run_both(path)
    mlp = source.split("class Mlp(nn.Module):")[1].split("\nclass ")[0]
    assert "nn.LayerNorm(width)" in mlp and "nn.Linear(width, hidden)" in mlp and "16" not in mlp
    narrow = source.split("class Narrow(nn.Module):")[1].split("\nclass ")[0]
    assert "nn.Linear(16, hidden)" in narrow


def test_the_vit_encoder_block_reads_as_written_by_hand() -> None:
    source = emit_python(archspec.compile(ROOT / "specs" / "vit_b_32.yaml", input=[3, 64, 64]))
    block = source.split("class EncoderBlock(nn.Module):")[1].split("\nclass ")[0]
    assert "nn.LayerNorm(hidden_dim, eps=1e-06)" in block and "SelfAttention(hidden_dim, num_heads" in block
    assert "768" not in block
    assert 'EncoderBlock(12, 768, 3072, 0.0, 0.0)' in source


def test_helpers_are_written_once_and_only_when_used(write_spec) -> None:
    path = write_spec("""
        archspec: 1
        name: helpers
        input: [8, 6, 6]
        body:
          a: layernorm
          b: layernorm
          c: channel_shuffle(2)
          pool: mean
    """)
    source, _ = _run_both(path)
    assert source.count("class LayerNorm2d(nn.LayerNorm):") == 1
    assert source.count("def channel_shuffle(") == 1
    assert "DropPath" not in source and "Permute" not in source


def test_long_lines_are_broken_inside_their_widest_brackets_and_strings_are_left_alone() -> None:
    from archspec.backends.python_source.text import MAX_LINE, fit_lines

    items = ", ".join(f'nn.Conv2d({i}, {i}, 3, padding="same")' for i in range(12))
    doc = '    """' + "word " * 40 + '\n    """'
    source = f"class A:\n{doc}\n    def f(self):\n        self.layer = nn.Sequential({items})\n"
    fitted = fit_lines(source)
    assert max(len(line) for line in fitted.splitlines() if '"""' not in line and "word" not in line) <= MAX_LINE
    assert doc in fitted and "        self.layer = nn.Sequential(\n            nn.Conv2d(0, 0, 3" in fitted
    assert compile(fitted, "a.py", "exec") and fitted.count("nn.Conv2d(") == 12
