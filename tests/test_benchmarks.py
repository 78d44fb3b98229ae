"""benchmarks/run.py's bookkeeping: rounds, ratios, targets, arguments. Nothing here is timed."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest
import torch

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.fixture(scope="module")
def run():
    sys.path.insert(0, str(BENCH))
    try:
        yield importlib.import_module("run")
    finally:
        sys.path.remove(str(BENCH))


def test_rounds_run_every_way_once_in_rotating_order(run):
    calls: list[str] = []
    runners = {name: (lambda n=name: calls.append(n)) for name in "abc"}
    times = run.alternate(runners, repeat=3, warmup=1)
    assert calls == list("abc" "abc" "bca" "cab")
    assert {k: len(v) for k, v in times.items()} == {"a": 3, "b": 3, "c": 3}


def test_targets_say_met_or_by_how_much_they_were_missed(run):
    times = {run.REF: [0.2, 0.4, 0.2], run.REF_C: [0.1] * 3, run.ORT: [0.09] * 3, run.OURS: [0.2] * 3,
             run.OPT: [0.1, 0.2, 0.1], run.OPT_C: [0.08] * 3}
    assert run.speedup(times, run.OPT, run.REF) == pytest.approx(2.0)  # the median of per-round ratios
    assert run.speedup(times, run.OPT, "not measured") is None
    rows = run.target_rows({("googlenet", 8): times, ("googlenet", 1): times}, None)
    assert rows == [["googlenet", f"{run.OPT} ≥ 1.0× {run.ORT}", "0.90×", "missed by 10%"],
                    ["googlenet", f"{run.OPT} ≥ 2.5× {run.REF}", "2.00×", "missed by 20%"],
                    ["googlenet", f"{run.OPT_C} ≥ 1.2× {run.REF_C}", "1.25×", "met"],
                    ["googlenet", f"{run.OPT_CF} ≥ 1.2× {run.REF_CF}", "—", "not measured"]]
    speed = run.speed_rows(times, batch=8)
    assert speed[0] == [run.REF, "200.0", "200.0–400.0", "40.0", "1.00×", "0.45×"]


def test_outputs_are_compared_relative_to_the_largest_magnitude(run):
    ref = torch.tensor([10.0, -20.0, 5.0])
    assert run.rel_diff(ref + 0.25, ref) == pytest.approx(0.25 / 20)
    assert run.rel_diff(ref.numpy(), ref) == 0.0


def test_arguments(run):
    args = run.parse_args(["--quick", "--all", "--batches", "4"])
    assert args.repeat == 3 and args.batch_sizes == [4]
    assert args.spec_names == ["googlenet", "inception_v3", "inception_v4", "inception_resnet_v2"]
    with pytest.raises(SystemExit) as exc:
        run.parse_args(["--specs", "alexnet"])
    assert exc.value.code == 2


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_options_without_cuda_exit_2(run, capsys):
    for argv in (["--device", "cuda"], ["--cuda-graphs"]):
        with pytest.raises(SystemExit) as exc:
            run.check_device(run.parse_args(argv))
        assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "CUDA is not available on this machine" in err and "--cuda-graphs needs a CUDA device" in err


def test_bn_statistics_are_randomised(run):
    bn = torch.nn.BatchNorm2d(4)
    run.randomize_bn_stats(torch.nn.Sequential(bn))
    assert bn.running_mean.abs().sum() > 0 and not torch.equal(bn.running_var, torch.ones(4))
