"""`archspec.check_file` stays linear in the size of a spec (benchmarks/bench_check_scaling.py times it).

Times are no test on a shared machine, so these count work instead: the Python
calls a check makes, and the collector being paused while the stages run.
"""

from __future__ import annotations

import cProfile
import gc
import pstats
from pathlib import Path

import pytest

import archspec
from archspec import expand as expand_stage

SPEC = """\
archspec: 1
name: chain
input: [3, 8, 8]
blocks:
  cbr:
    params: [out, k, p=0]
    body:
      conv: conv($out, $k, p=$p, bias=false)
      bn: bn
      relu: relu
  inception:
    params: [c1, c3r, c3, pool_proj]
    concat:
      branch1: cbr($c1, 1)
      branch2:
        - cbr($c3r, 1)
        - cbr($c3, 3, p=1)
      branch3:
        - maxpool(3, s=1, p=1)
        - cbr($pool_proj, 1)
body:
  stem: cbr(32, 3, p=1)
{blocks}  head: global_avgpool
"""


def _spec(tmp_path: Path, n: int) -> Path:
    path = tmp_path / f"chain{n}.yaml"
    path.write_text(SPEC.format(blocks="".join(f"  b{i}: inception(8, 8, 16, 8)\n" for i in range(n))))
    return path


def _calls(path: Path) -> int:
    archspec.check_file(path)  # first run: imports and caches
    profile = cProfile.Profile()
    profile.enable()
    result = archspec.check_file(path)
    profile.disable()
    assert result.ok, [d.headline() for d in result.diagnostics]
    return sum(stat[1] for stat in pstats.Stats(profile).stats.values())  # type: ignore[attr-defined]


def test_work_grows_linearly_with_the_number_of_blocks(tmp_path: Path) -> None:
    small, large = _calls(_spec(tmp_path, 50)), _calls(_spec(tmp_path, 200))
    # a + b·N calls: 4× the blocks make at most 4× the calls (a quadratic step would make ~16×)
    assert 3 * small < large <= 4 * small


def test_the_collector_is_paused_while_the_stages_run_and_restored(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[bool] = []
    real = expand_stage.expand

    def spy(spec: archspec.Spec) -> object:
        seen.append(gc.isenabled())
        return real(spec)

    monkeypatch.setattr("archspec.pipeline.expand", spy)
    assert gc.isenabled()
    assert archspec.check_file(_spec(tmp_path, 2)).ok
    bad = tmp_path / "bad.yaml"
    bad.write_text(SPEC.format(blocks="  b0: inception(8, 8, 16)\n"))
    assert not archspec.check_file(bad).ok  # a fault leaves the collector on too
    archspec.compile(_spec(tmp_path, 1))
    assert seen == [False, False, False] and gc.isenabled()
    gc.disable()
    try:  # a caller that turned it off keeps it off
        archspec.compile(_spec(tmp_path, 1))
        assert not gc.isenabled()
    finally:
        gc.enable()
