"""examples/lowp_accuracy.py: a short training run on the digits keeps its accuracy in bf16 and int8."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
MINI = str(ROOT / "specs" / "inception_mini.yaml")

pytest.importorskip("sklearn")
NATIVE = torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported() \
    and torch.cpu._is_vnni_supported()
needs_lowp = pytest.mark.skipif(not NATIVE, reason="this CPU has no native bf16 or int8")


@pytest.fixture(scope="module")
def example():
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        import lowp_accuracy

        yield lowp_accuracy
    finally:
        sys.path.remove(str(ROOT / "examples"))


@pytest.mark.slow
@needs_lowp
def test_a_short_run_keeps_its_accuracy_in_bf16_and_int8(example):
    """3 epochs on 300 images (60 validation images, one is 1.7 points): bf16 may move one image, int8 two.

    The full run (8 epochs, 1,437 training images) and its table are in docs/optimize.md."""
    train = example.train
    torch.set_num_threads(min(2, torch.get_num_threads()))
    typed = train.load_network(MINI, {})
    with tempfile.TemporaryDirectory() as out:
        net = train.run(train.Options(spec=MINI, epochs=3, limit=300, batch_size=20, out=out, device="cpu",
                                      progress=False))
    fp32, bf16, int8 = example.scores(net, train.load_data(0, 300), tuple(typed.input_shape))
    print(example.table([fp32, bf16, int8]))
    assert fp32.total == 60 and fp32.accuracy >= 0.3  # well above chance (0.1): the comparison means something
    assert abs(bf16.correct - fp32.correct) <= 1 and bf16.agree >= 59 / 60
    assert abs(int8.correct - fp32.correct) <= 2 and int8.agree >= 58 / 60
    table = example.table([fp32, bf16, int8])
    assert table.splitlines()[2].startswith("| fp32 | ") and "pts" in table.splitlines()[4]
