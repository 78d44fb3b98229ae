"""Validation accuracy of a network trained on the digits, in fp32, bf16 and int8 (archspec.optimize).

    python examples/lowp_accuracy.py specs/inception_mini.yaml --checkpoint runs/train/checkpoint.pt
    python examples/lowp_accuracy.py specs/inception_mini.yaml --epochs 8      # trains first (examples/train.py)

int8 is calibrated on the training split (every training image, in batches of 64), never on the
validation images it is scored on. Prints a Markdown table: accuracy per dtype, its difference from
fp32 in points, and how often the top-1 class agrees with fp32's.
"""

from __future__ import annotations

import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import train  # noqa: E402  (examples/train.py: the data, the network, the training run)

import archspec  # noqa: E402


@dataclass
class Score:
    dtype: str
    correct: int
    total: int
    agree: float  # fraction of validation images whose top-1 equals fp32's

    @property
    def accuracy(self) -> float:
        return self.correct / self.total


def _inputs(images: torch.Tensor, shape: tuple[int, ...], batch: int = 64) -> list[torch.Tensor]:
    return [train.to_input(images[i:i + batch], shape).contiguous() for i in range(0, len(images), batch)]


def scores(net: Any, data: train.Digits, shape: tuple[int, ...], dtypes: tuple[str, ...] = ("bf16", "int8")
           ) -> list[Score]:
    """fp32 first, then each of `dtypes`, on the validation split."""
    images, labels = data.val.tensors
    val = _inputs(images, shape)
    calibration = _inputs(data.train.tensors[0], shape)
    net = net.eval()
    with torch.inference_mode():
        reference = torch.cat([net(x) for x in val]).argmax(1)
    out = [Score("fp32", int((reference == labels).sum()), len(labels), 1.0)]
    for dtype in dtypes:
        fast = archspec.optimize(net, dtype=dtype, calibrate=calibration if dtype == "int8" else None, batch=64)
        with torch.inference_mode():
            top1 = torch.cat([fast(x) for x in val]).argmax(1)
        out.append(Score(dtype, int((top1 == labels).sum()), len(labels), float((top1 == reference).float().mean())))
    return out


def table(rows: list[Score]) -> str:
    base = rows[0].accuracy
    lines = ["| dtype | validation accuracy | vs fp32 | top-1 agrees with fp32 |", "| --- | --- | --- | --- |"]
    for r in rows:
        delta = "" if r.dtype == "fp32" else f"{(r.accuracy - base) * 100:+.2f} pts"
        lines.append(f"| {r.dtype} | {r.accuracy:.2%} ({r.correct}/{r.total}) | {delta} | {r.agree:.2%} |")
    return "\n".join(lines)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("spec")
@click.option("--checkpoint", type=click.Path(dir_okay=False, exists=True), default=None,
              help="checkpoint.pt written by examples/train.py; without it, train first.")
@click.option("--epochs", type=click.IntRange(min=1), default=train.Options.epochs, show_default=True)
@click.option("--limit", type=click.IntRange(min=50), default=None, help="A stratified subset of N images.")
@click.option("--seed", type=int, default=0, show_default=True, help="The split's seed (the checkpoint's too).")
def main(spec: str, checkpoint: str | None, epochs: int, limit: int | None, seed: int) -> None:
    """Print SPEC's validation accuracy on the digits in fp32, bf16 and int8."""
    typed = train.load_network(spec, {})
    data = train.load_data(seed, limit)
    if checkpoint is not None:
        net = archspec.build(typed)
        net.load_state_dict(torch.load(checkpoint, weights_only=True)["model"])
    else:
        with tempfile.TemporaryDirectory() as out:
            net = train.run(train.Options(spec=spec, epochs=epochs, limit=limit, seed=seed, out=out, device="cpu",
                                          progress=False))
    click.echo(table(scores(net, data, tuple(typed.input_shape))))


if __name__ == "__main__":
    main()
