"""Run under torchrun by test_train.py: trains with examples/train.py's `run` and saves this rank's parameters."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "examples"))

import train  # noqa: E402

out = Path(sys.argv[1])
model = train.run(train.Options(spec=str(ROOT / "specs" / "inception_mini.yaml"), epochs=2, batch_size=32, limit=200,
                                out=str(out), device="cpu", progress=False))
torch.save({name: p.detach() for name, p in model.named_parameters()}, out / f"params{os.environ['RANK']}.pt")
