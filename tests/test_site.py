"""The documentation site builds with `mkdocs build --strict`: a broken link or anchor, or a page
left out of the nav, fails the tests. Needs the `docs` extra (mkdocs-material), which `dev` pulls in."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def build(tmp_path: Path, config: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config),
                           "-d", str(tmp_path / "site")], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env=env)


def test_site_builds_strict(tmp_path):
    pytest.importorskip("material", reason="mkdocs-material is not installed (it comes with the docs extra)")
    out = build(tmp_path, ROOT / "mkdocs.yml")
    assert out.returncode == 0, out.stdout + out.stderr
    assert (tmp_path / "site" / "index.html").is_file()
    assert (tmp_path / "site" / "cli" / "index.html").is_file()


def test_strict_build_fails_on_a_broken_link(tmp_path):
    """The check the test above relies on: a link to a missing page is an error, not a warning."""
    pytest.importorskip("material", reason="mkdocs-material is not installed (it comes with the docs extra)")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.md").write_text("# Home\n\nSee [the missing page](missing.md).\n")
    config = tmp_path / "mkdocs.yml"
    settings = (ROOT / "mkdocs.yml").read_text().split("\nnav:")[0]  # the site's settings, without its pages
    config.write_text(settings.replace("docs_dir: docs", f"docs_dir: {docs}"))
    out = build(tmp_path, config)
    assert out.returncode != 0
    assert "missing.md" in out.stdout + out.stderr
