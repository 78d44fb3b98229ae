"""`archspec profile` from the command line: the table, JSON rows, the chart, and clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from archspec.cli import main

ROOT = Path(__file__).resolve().parents[2]
TINY = str(ROOT / "tests" / "fixtures" / "tiny.yaml")
ROW_KEYS = {"path", "depth", "kind", "op", "time_ms", "share", "macs", "gflops"}


def invoke(*args: str):
    return CliRunner().invoke(main, ["profile", TINY, "--repeat", "1", "--warmup", "0", *args])


def test_terminal_table_names_blocks_and_totals():
    out = invoke("--depth", "2")
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert lines[0] == "tiny  input 3×32×32  batch 1  cpu fp32  (as built)"
    assert any(line.split()[:2] == ["mix/mid", "sequence"] for line in lines)
    assert any(line.strip().startswith("total (sum of nodes)") for line in lines)
    assert any(line.strip().startswith("time by op: ") for line in lines)


def test_json_rows_have_a_stable_schema():
    out = invoke("--json", "--batch", "2", "--set", "classes=5")
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert data["view"] == "profile" and data["batch"] == 2 and data["device"] == "cpu" and data["dtype"] == "fp32"
    assert {"forward_ms", "node_total_ms", "images_per_s", "by_op", "optimized", "passes"} <= set(data)
    for row in data["rows"]:
        assert ROW_KEYS <= set(row), row
        assert isinstance(row["time_ms"], float) and 0 <= row["share"] <= 1
        assert row["gflops"] is None or row["gflops"] > 0
    assert sum(r["share"] for r in data["rows"]) == pytest.approx(1.0)
    assert [t["path"] for t in data["totals"]] == ["total (sum of nodes)", "forward (no per-node timing)"]
    assert next(r for r in data["rows"] if r["path"] == "fc")["macs"] == 32 * 5  # --set applied
    assert [c["key"] for c in data["columns"]] == ["path", "op", "time_ms", "share", "macs", "gflops", "rank"]


def test_chart_is_written_next_to_the_table(tmp_path):
    pytest.importorskip("matplotlib")
    chart = tmp_path / "profile.svg"
    out = invoke("-o", str(chart))
    assert out.exit_code == 0, out.output
    assert f"wrote {chart}" in out.output and b"<svg" in chart.read_bytes()[:4096]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda_is_a_clear_error():
    out = invoke("--device", "cuda")
    assert out.exit_code == 1 and isinstance(out.exception, SystemExit)
    assert "error[device-unavailable]: device 'cuda' was asked for, but CUDA is not available" in out.output


def test_usage_errors_exit_2():
    graphs = invoke("--cuda-graphs")
    assert graphs.exit_code == 2 and "CUDA graphs need a CUDA device" in graphs.output
    chart = invoke("-o", "chart.bmp")
    assert chart.exit_code == 2 and "the chart is drawn as .png, .svg or .pdf" in chart.output
    both = invoke("--json", "--csv")
    assert both.exit_code == 2


def test_a_chart_over_the_spec_itself_is_refused(tmp_path):
    spec = tmp_path / "net.png"  # a spec with an odd name: still the spec
    spec.write_text(Path(TINY).read_text())
    out = CliRunner().invoke(main, ["profile", str(spec), "--repeat", "1", "-o", str(spec)])
    assert out.exit_code == 2 and "refusing to overwrite the spec file itself" in out.output
    assert spec.read_text() == Path(TINY).read_text()


def test_a_chart_into_a_missing_folder_is_an_io_error(tmp_path):
    out = invoke("-o", str(tmp_path / "charts" / "p.png"))
    assert out.exit_code == 1 and f"error[io-error]: cannot write {tmp_path / 'charts' / 'p.png'}" in out.output
    assert f"the output's folder does not exist; create it first: {tmp_path / 'charts'}" in out.output
    assert list(tmp_path.iterdir()) == []


def test_a_batch_that_cannot_fit_is_refused_before_allocating():
    out = invoke("--batch", "1000000000000")
    assert out.exit_code == 1 and isinstance(out.exception, SystemExit), out.output
    assert f"{TINY}:27:8: error[too-much-memory] mix: running tiny at batch 1,000,000,000,000 needs" in out.output
    assert "of activations at their peak" in out.output and "= hint: lower --batch" in out.output


def test_seed_is_passed_to_the_run(monkeypatch: pytest.MonkeyPatch):
    import archspec.profile

    seeds = []
    real = archspec.profile.profile
    monkeypatch.setattr(archspec.profile, "profile", lambda *a, **k: seeds.append(k["seed"]) or real(*a, **k))
    assert invoke("--seed", "3").exit_code == 0 and invoke().exit_code == 0
    assert seeds == [3, 0]
