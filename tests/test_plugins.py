"""Plugins: the example CBAM plugin through every verb, entry-point discovery, and each way loading fails.

The CLI tests install nothing: the plugin's package is copied to a scratch folder put on PYTHONPATH
(never the example's own folder, where a build leaves `*.egg-info` metadata that would declare the
entry point by itself) and named with `--plugin`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import archspec
from archspec import plugins
from archspec.ops.registry import REGISTRY, Op

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "examples" / "plugins" / "archspec-cbam"
SPEC = PACKAGE / "cbam_net.yaml"
PLUGIN = "archspec_cbam.ops"

ONE_CBAM = """\
archspec: 1
name: one_cbam
input: [24, 9, 11]
body:
  attention: cbam(4, k=3, bias=true)
"""


@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory) -> Path:
    """A folder holding only the `archspec_cbam` package (no metadata, so no entry point)."""
    folder = tmp_path_factory.mktemp("plugin_path")
    shutil.copytree(PACKAGE / "archspec_cbam", folder / "archspec_cbam",
                    ignore=shutil.ignore_patterns("__pycache__"))
    return folder


def run(*args: str, path: list[Path] = (), env: dict[str, str] | None = None, cwd: Path = ROOT
        ) -> subprocess.CompletedProcess:
    pythonpath = os.pathsep.join([str(ROOT), *map(str, path)])
    full = {k: v for k, v in os.environ.items() if k != "ARCHSPEC_PLUGINS"}
    full.update(PYTHONPATH=pythonpath, **(env or {}))
    return subprocess.run([sys.executable, "-m", "archspec", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env=full)


@pytest.fixture
def clean_registry(monkeypatch):
    """Whatever a test loads in this process is unloaded after it: the registry is shared by every test."""
    registry, loaded = dict(REGISTRY), dict(plugins._LOADED)
    modules = set(sys.modules)
    yield
    REGISTRY.clear()
    REGISTRY.update(registry)
    plugins._LOADED.clear()
    plugins._LOADED.update(loaded)
    for name in set(sys.modules) - modules:
        if name.startswith(("archspec_cbam", "plg_")):
            del sys.modules[name]


def write_module(folder: Path, name: str, body: str) -> None:
    (folder / f"{name}.py").write_text(textwrap.dedent(body))


# -- the CLI, with --plugin ---------------------------------------------------------------------------------------

def test_check_with_the_plugin_passes_and_stays_torch_free(plugin_path):
    code = ("import sys, runpy; sys.argv = ['archspec', '--plugin', 'archspec_cbam.ops', 'check', sys.argv[1]]\n"
            "try:\n    runpy.run_module('archspec', run_name='__main__')\n"
            "except SystemExit as e:\n    code = e.code\n"
            "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH', code)")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(plugin_path)])}
    out = subprocess.run([sys.executable, "-c", code, str(SPEC)], cwd=ROOT, capture_output=True, text=True,
                         timeout=300, env=env)
    assert out.stdout.strip().endswith("NO-TORCH 0"), out.stdout + out.stderr
    assert "cbam_net: 1,934,966 params, 266,166,400 MACs" in out.stdout


def test_without_the_plugin_the_op_is_a_located_unknown_op_with_a_hint(plugin_path):
    """The plugin is importable here, but a spec never imports code: only --plugin or an entry point does."""
    out = run("check", str(SPEC), path=[plugin_path])
    assert out.returncode == 1
    assert (f"{SPEC}:28:22: error[unknown-op] layer1/add/branch/attention: unknown op or block 'cbam'"
            in out.stderr)
    assert "--plugin MODULE" in out.stderr and "docs/plugins.md" in out.stderr
    assert "Traceback" not in out.stderr


def test_the_environment_variable_names_plugins_too(plugin_path):
    out = run("summary", str(SPEC), path=[plugin_path], env={"ARCHSPEC_PLUGINS": f"json {PLUGIN}"})
    assert out.returncode == 2, "json registers no op: the variable's every module is loaded"
    assert "error[plugin-no-ops]: plugin 'json' (ARCHSPEC_PLUGINS): importing it registered no op" in out.stderr
    out = run("summary", str(SPEC), path=[plugin_path], env={"ARCHSPEC_PLUGINS": PLUGIN})
    assert out.returncode == 0, out.stderr
    row = next(line for line in out.stdout.splitlines() if "layer1/add/branch/attention" in line)
    assert row.split()[1:] == ["cbam", "cbam", "r16", "7×7", "64×32×32", "612", "101,376"]


def test_summary_counts_the_plugins_params_and_macs(plugin_path):
    out = run("--plugin", PLUGIN, "summary", str(SPEC), "--json", path=[plugin_path])
    assert out.returncode == 0, out.stderr
    assert '"cbam"' in out.stdout and "1934966" in out.stdout


def test_draw_labels_the_plugins_op(plugin_path, tmp_path):
    target = tmp_path / "x.dot"
    out = run("--plugin", PLUGIN, "draw", str(SPEC), "-o", str(target), "--depth", "9", path=[plugin_path])
    assert out.returncode == 0, out.stderr
    assert "cbam r16 7×7" in target.read_text()


NO_SOURCE = """\
from archspec.ops.registry import FunctionCall, NoAttrs, Op, register


def _emit(a, ins):
    import torch

    return FunctionCall(torch.sigmoid)


register(Op(name="plain_gate", attrs=NoAttrs, infer=lambda a, ins: ins[0], emit=_emit))
"""


def test_python_source_is_refused_naming_the_op_and_the_plugin(tmp_path):
    write_module(tmp_path, "plg_nosource", NO_SOURCE)
    spec = tmp_path / "gated.yaml"
    spec.write_text("archspec: 1\nname: gated\ninput: [3, 8, 8]\nbody:\n  conv: conv(4, 3)\n  gate: plain_gate\n")
    target = tmp_path / "x.py"
    out = run("--plugin", "plg_nosource", "build", str(spec), "-o", str(target), path=[tmp_path])
    assert out.returncode == 1
    assert (f"{spec}:6:9: error[no-python-source] gate: op 'plain_gate' has no Python-source form, so the network "
            "cannot be written as a .py file") in out.stderr
    assert "Traceback" not in out.stderr
    assert not target.exists()


# -- outputs: a hand-written reference, timm's CbamModule, onnxruntime ---------------------------------------------

def cbam_reference(x, w: dict, k: int):
    """CBAM written out from the paper's equations, with the weights `w` (eval mode: BN's running statistics)."""
    def mlp(v):
        hidden = F.relu(F.conv2d(v, w["channel.fc1.weight"], w.get("channel.fc1.bias")))
        return F.conv2d(hidden, w["channel.fc2.weight"], w.get("channel.fc2.bias"))

    x = x * torch.sigmoid(mlp(x.mean((2, 3), keepdim=True)) + mlp(x.amax((2, 3), keepdim=True)))
    pooled = torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], 1)
    s = F.conv2d(pooled, w["spatial.conv.weight"], padding=k // 2)
    s = F.batch_norm(s, w["spatial.bn.running_mean"], w["spatial.bn.running_var"], w["spatial.bn.weight"],
                     w["spatial.bn.bias"], training=False, eps=1e-5)
    return x * torch.sigmoid(s)


@pytest.fixture
def one_cbam(tmp_path, clean_registry, plugin_path, monkeypatch) -> tuple[Path, Path, dict]:
    """A spec of one `cbam` node, and a .safetensors file of random weights for it (running statistics too)."""
    from safetensors.torch import save_file

    monkeypatch.syspath_prepend(str(plugin_path))
    archspec.load_plugins(PLUGIN)
    spec = tmp_path / "one_cbam.yaml"
    spec.write_text(ONE_CBAM)
    module = archspec.build(spec)
    generator = torch.Generator().manual_seed(0)
    state = {key: (torch.rand(t.shape, generator=generator) + 0.5 if "running_var" in key
                   else torch.randn(t.shape, generator=generator) if t.is_floating_point() else t)
             for key, t in module.state_dict().items()}
    weights = tmp_path / "weights.safetensors"
    save_file(state, str(weights))
    return spec, weights, {k.removeprefix("attention."): v for k, v in state.items()}


def test_build_gives_the_hand_written_references_outputs(one_cbam, plugin_path, tmp_path):
    spec, weights, w = one_cbam
    target = tmp_path / "one.pt2"  # a torch.export program: it loads without archspec or the plugin
    out = run("--plugin", PLUGIN, "build", str(spec), "--weights", str(weights), "-o", str(target),
              path=[plugin_path])
    assert out.returncode == 0, out.stderr
    assert "params   338" in out.stdout  # 2·24·6 MLP weights + 6 + 24 biases, 2·3·3 conv, 2 bn
    program = torch.export.load(str(target)).module()
    x = torch.randn(2, 24, 9, 11, generator=torch.Generator().manual_seed(1))  # .pt2 is exported at batch 2
    torch.testing.assert_close(program(x), cbam_reference(x, w, k=3), rtol=1e-5, atol=1e-6)


def test_onnx_export_runs_in_onnxruntime_with_the_references_outputs(one_cbam, plugin_path, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    spec, weights, w = one_cbam
    target = tmp_path / "one.onnx"
    out = run("--plugin", PLUGIN, "build", str(spec), "--weights", str(weights), "-o", str(target),
              path=[plugin_path])
    assert out.returncode == 0, out.stderr
    session = ort.InferenceSession(str(target), providers=["CPUExecutionProvider"])
    for batch in (2, 3):
        x = torch.randn(batch, 24, 9, 11, generator=torch.Generator().manual_seed(batch))
        (got,) = session.run(None, {"x": x.numpy()})
        torch.testing.assert_close(torch.from_numpy(got), cbam_reference(x, w, k=3), rtol=1e-4, atol=1e-5)


def test_the_op_equals_timms_cbam_module_and_its_counts_equal_torchs(clean_registry, plugin_path, monkeypatch,
                                                                    tmp_path):
    timm_cbam = pytest.importorskip("timm.layers.cbam")
    from torch.utils.flop_counter import FlopCounterMode

    monkeypatch.syspath_prepend(str(plugin_path))
    archspec.load_plugins(PLUGIN)
    spec = tmp_path / "cbam64.yaml"
    spec.write_text(ONE_CBAM.replace("[24, 9, 11]", "[64, 14, 14]").replace("cbam(4, k=3, bias=true)", "cbam"))
    typed = archspec.compile(spec)
    module = archspec.build(typed).eval()
    torch.manual_seed(0)
    reference = timm_cbam.CbamModule(64).eval()
    for t in reference.state_dict().values():
        if t.is_floating_point():
            t.copy_(torch.rand_like(t) + 0.5)
    renamed = {"attention." + k.replace("spatial.conv.conv.", "spatial.conv.").replace("spatial.conv.bn.",
                                                                                       "spatial.bn."): v
               for k, v in reference.state_dict().items()}
    module.load_state_dict(renamed, strict=True)
    x = torch.randn(2, 64, 14, 14)
    with torch.no_grad():
        torch.testing.assert_close(module(x), reference(x))
    assert typed.total("params") == sum(p.numel() for p in reference.parameters())
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        module(x[:1])
    assert typed.total("macs") == counter.get_total_flops() // 2


def test_the_plugins_shape_rule_refuses_at_the_spec_line(clean_registry, plugin_path, monkeypatch):
    monkeypatch.syspath_prepend(str(plugin_path))
    archspec.load_plugins(PLUGIN)
    for text, where, expected, found in [
        (ONE_CBAM.replace("cbam(4, k=3, bias=true)", "cbam(k=4)"), "bad.yaml:5:14", "an odd k", "k=4"),
        (ONE_CBAM.replace("cbam(4, k=3, bias=true)", "flatten\n  again: cbam"), "bad.yaml:6:10", "C×H×W", "2376"),
    ]:
        with pytest.raises(archspec.SpecError) as info:
            archspec.compile(archspec.loads(text, file="bad.yaml"))
        (fault,) = info.value.diagnostics
        assert (fault.code, str(fault.loc), fault.expected, fault.found) == ("shape-mismatch", where, expected, found)


# -- entry points -------------------------------------------------------------------------------------------------

def fake_distribution(folder: Path, entry: str = f"cbam = {PLUGIN}") -> Path:
    """An installed package's metadata declaring the entry point, as `pip install` would write it."""
    info = folder / "archspec_cbam-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: archspec-cbam\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text(f"[archspec.ops]\n{entry}\n")
    return folder


def test_an_installed_entry_point_is_found_without_any_option(plugin_path, tmp_path):
    site = fake_distribution(tmp_path / "site")
    out = run("check", str(SPEC), path=[plugin_path, site])
    assert out.returncode == 0, out.stderr
    out = run("--plugin", PLUGIN, "check", str(SPEC), path=[plugin_path, site])
    assert out.returncode == 0, "naming an installed plugin again loads it once"


def test_a_broken_entry_point_is_a_usage_error_naming_its_package(plugin_path, tmp_path):
    site = fake_distribution(tmp_path / "site", entry="cbam = archspec_cbam.nothing_here")
    out = run("check", str(SPEC), path=[plugin_path, site])
    assert out.returncode == 2
    assert ("error[plugin-import-failed]: plugin 'archspec_cbam.nothing_here' (entry point 'cbam' of "
            "archspec-cbam): no module named 'archspec_cbam.nothing_here'") in out.stderr
    assert "Traceback" not in out.stderr


def test_load_plugins_reads_entry_points(clean_registry, plugin_path, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(plugin_path))
    monkeypatch.syspath_prepend(str(fake_distribution(tmp_path / "site")))
    (loaded,) = archspec.load_plugins()
    assert loaded == plugins.Plugin(PLUGIN, "entry point 'cbam' of archspec-cbam", ("cbam",))
    assert archspec.load_plugins(PLUGIN) == [loaded, loaded]
    with pytest.raises(plugins.PluginError, match=r"plugin 'plg_absent' \(load_plugins\)"):
        archspec.load_plugins("plg_absent")  # named after an installed plugin: still said to be named here
    assert archspec.load_plugins(entry_points=False) == []


@pytest.mark.slow
def test_pip_install_declares_the_entry_point(tmp_path):
    source = tmp_path / "src"
    shutil.copytree(PACKAGE, source, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build"))
    target = tmp_path / "site"
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index",
                          "--target", str(target), str(source)], capture_output=True, text=True, timeout=300)
    assert pip.returncode == 0, pip.stderr
    out = run("check", str(SPEC), path=[target])
    assert out.returncode == 0, out.stderr


# -- loading fails clearly -----------------------------------------------------------------------------------------

def test_a_failing_plugin_is_a_usage_error_naming_it(tmp_path):
    write_module(tmp_path, "plg_broken", "raise RuntimeError('no GPU found')\n")
    out = run("--plugin", "plg_broken", "check", str(SPEC), path=[tmp_path])
    assert out.returncode == 2
    assert ("error[plugin-import-failed]: plugin 'plg_broken' (--plugin): failed to import: RuntimeError: "
            "no GPU found") in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize("name, message", [
    ("plg_missing.ops", "no module named 'plg_missing'"),
    ("plugins/plg.py", "is not a module name"),
])
def test_a_plugin_that_is_not_there(clean_registry, name, message):
    with pytest.raises(plugins.PluginError) as info:
        archspec.load_plugins(name, entry_points=False)
    assert info.value.code == "plugin-import-failed" and message in str(info.value)
    assert str(info.value).startswith(f"plugin '{name}' (load_plugins)")


OP = """\
from archspec.ops.registry import NoAttrs, Op, register

register(Op(name={name!r}, attrs=NoAttrs, infer=lambda a, ins: ins[0], emit=lambda a, ins: None))
"""


def test_shadowing_a_built_in_op_is_refused(clean_registry, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    write_module(tmp_path, "plg_conv", OP.format(name="conv"))
    conv = REGISTRY["conv"]
    with pytest.raises(plugins.PluginError) as info:
        archspec.load_plugins("plg_conv", entry_points=False)
    assert info.value.code == "plugin-op-conflict"
    message = "plugin 'plg_conv' (load_plugins): registers op 'conv', which is a built-in op of archspec"
    assert message in str(info.value)
    assert REGISTRY["conv"] is conv


def test_two_plugins_with_one_op_name_are_refused_and_the_second_is_rolled_back(clean_registry, tmp_path,
                                                                                  monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    write_module(tmp_path, "plg_one", OP.format(name="attn"))
    write_module(tmp_path, "plg_two", OP.format(name="attn2") + OP.format(name="attn"))
    archspec.load_plugins("plg_one", entry_points=False)
    with pytest.raises(plugins.PluginError) as info:
        archspec.load_plugins("plg_two", entry_points=False)
    assert "registers op 'attn', which is already registered by plugin 'plg_one'" in str(info.value)
    assert "attn2" not in REGISTRY and REGISTRY["attn"].emit.__module__ == "plg_one"


@pytest.mark.parametrize("body, code, message", [
    ("x = 1\n", "plugin-no-ops", "importing it registered no op"),
    (OP.format(name="my-op"), "plugin-bad-op", "op 'my-op' has a name a spec cannot call"),
    (OP.format(name="twice") + OP.format(name="twice"), "plugin-op-conflict", "registers op 'twice', which is "
                                                                               "registered twice by it"),
])
def test_a_plugin_without_usable_ops_is_refused(clean_registry, tmp_path, monkeypatch, body, code, message):
    monkeypatch.syspath_prepend(str(tmp_path))
    write_module(tmp_path, "plg_odd", body)
    before = set(REGISTRY)
    with pytest.raises(plugins.PluginError) as info:
        archspec.load_plugins("plg_odd", entry_points=False)
    assert info.value.code == code and message in str(info.value)
    assert set(REGISTRY) == before


def test_an_already_imported_module_that_defines_no_op_is_refused(clean_registry):
    with pytest.raises(plugins.PluginError, match="registered no op"):
        archspec.load_plugins("json", entry_points=False)


# -- -o .py, where archspec's Op has a Python-source form ------------------------------------------------------------

@pytest.mark.skipif("source" not in Op.__dataclass_fields__, reason="this archspec's Op has no Python-source form")
def test_python_source_of_the_plugins_op_runs_with_the_modules_weights(clean_registry, plugin_path, monkeypatch,
                                                                       tmp_path):
    target = tmp_path / "cbam_net.py"
    out = run("--plugin", PLUGIN, "build", str(SPEC), "-o", str(target), path=[plugin_path])
    assert out.returncode == 0, out.stderr
    source = target.read_text()
    assert "class CBAM(nn.Module):" in source and "CBAM(c, reduction=16)" in source  # in the residual block
    monkeypatch.syspath_prepend(str(plugin_path))
    archspec.load_plugins(PLUGIN)
    module = archspec.build(SPEC).eval()
    namespace: dict = {}
    exec(compile(source, str(target), "exec"), namespace)  # the file needs torch only: no archspec, no plugin
    written = namespace["CbamNet"]().eval()
    written.load_state_dict(module.state_dict(), strict=True)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(written(x), module(x))
