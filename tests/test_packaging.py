"""The base install is torch-free: `pip install archspec` (no extras) checks specs, and asks for torch to build.

The pre-commit hook installs archspec as `pip install .` does, with no extras, so this is also the hook's install.
The install reaches the package index pip is configured with (PyPI, or a mirror), and takes 15 s or more:
the tests that need it are marked slow (CI runs them).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import venv
from pathlib import Path

import pytest
import yaml

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parent.parent
SPEC = str(ROOT / "specs" / "googlenet.yaml")
OPTIONAL = {"torch", "safetensors", "onnx", "onnxscript", "onnxruntime", "matplotlib"}


def _requirement_names(requirements: list[str]) -> set[str]:
    return {r.split(";")[0].split("[")[0].split(">")[0].split("=")[0].split("<")[0].strip().lower()
            for r in requirements}


def test_base_dependencies_leave_out_torch_and_each_extra_that_needs_it_pulls_it_in():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert _requirement_names(project["dependencies"]) & OPTIONAL == set()
    extras = project["optional-dependencies"]
    assert {"torch>=2.4", "safetensors>=0.4"} <= set(extras["torch"])
    for name in ("dev", "export", "train", "profile"):
        assert any(r.startswith("archspec[") and "torch" in r for r in extras[name]), name
    assert any(r.startswith("archspec[") and ("export" in r or "profile" in r) for r in extras["bench"])


def test_the_pre_commit_hook_installs_with_no_extra_dependencies():
    hook = next(h for h in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text()) if h["id"] == "archspec-check")
    assert hook["language"] == "python" and "additional_dependencies" not in hook


@pytest.fixture(scope="module")
def base_install(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with `pip install .` from a copy of the sources (the tree stays clean)."""
    tmp = tmp_path_factory.mktemp("base-install")
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "archspec", src / "archspec", ignore=shutil.ignore_patterns("__pycache__"))
    env_dir = tmp / "venv"
    venv.create(env_dir, with_pip=True)
    bindir = env_dir / "bin"
    done = subprocess.run([str(bindir / "python"), "-m", "pip", "install", "-q", str(src)], capture_output=True,
                          text=True, timeout=600, env=_clean_env())
    assert done.returncode == 0, done.stdout + done.stderr
    return bindir


def _clean_env() -> dict[str, str]:
    """The environment without PYTHONPATH, so the fresh install's archspec is the one imported."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}


def _run(bindir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run a program of the fresh environment outside the source tree (whose archspec/ `python -c` would import)."""
    return subprocess.run([str(bindir / args[0]), *args[1:]], cwd=bindir.parent, capture_output=True, text=True,
                          timeout=300, env=_clean_env())


@pytest.mark.slow
def test_a_base_install_checks_every_spec_without_torch(base_install):
    probe = _run(base_install, "python", "-c", "import importlib.util as u, archspec; "
                 "print(u.find_spec('torch'), u.find_spec('safetensors'), archspec.__file__)")
    none_torch, none_st, where = probe.stdout.split()
    assert (none_torch, none_st) == ("None", "None") and str(base_install.parent) in where, probe.stdout + probe.stderr
    check = _run(base_install, "archspec", "check", str(ROOT / "specs"))
    assert check.returncode == 0, check.stdout + check.stderr
    assert "specs ok" in check.stdout
    for verb in (["summary", SPEC], ["schema"],
                 ["diff", SPEC, str(ROOT / "specs" / "googlenet_paper.yaml")]):
        assert _run(base_install, "archspec", *verb).returncode == 0, verb


@pytest.mark.slow
@pytest.mark.parametrize("verb", [["build", SPEC], ["profile", SPEC],
                                  ["check", "--deep", SPEC]], ids=lambda v: "_".join(x for x in v if x != SPEC))
def test_torch_verbs_without_torch_say_what_to_install(base_install, verb):
    done = _run(base_install, "archspec", *verb)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    command = "archspec " + " ".join(v for v in verb if v != SPEC)
    assert done.stderr.splitlines()[:2] == [
        f"error[missing-extra]: `{command}` needs torch, which is not installed",
        "  = hint: pip install 'archspec[torch]'"]


@pytest.mark.slow
def test_the_pre_commit_hook_entry_runs_in_the_base_install(base_install, tmp_path):
    hook = next(h for h in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text()) if h["id"] == "archspec-check")
    good = _run(base_install, *shlex.split(hook["entry"]), SPEC)
    assert good.returncode == 0, good.stdout + good.stderr
    bad = tmp_path / "specs" / "bad.yaml"
    bad.parent.mkdir()
    bad.write_text((ROOT / "specs" / "googlenet.yaml").read_text().replace("inception(64, 96, 128, 16, 32, 32)",
                                                                          "inception(64, 96, 128, 16, 32)"))
    failed = _run(base_install, *shlex.split(hook["entry"]), str(bad))
    assert failed.returncode == 1 and "error[" in failed.stderr, failed.stdout + failed.stderr
