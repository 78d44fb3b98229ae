"""ONNX backend: an `ArchModule` -> an `.onnx` file with a dynamic batch dimension.

It goes through `torch.onnx.export` with `dynamo=True`, torch's default since
2.9: the module is captured by `torch.export` (which already accepts every
ArchModule, see `-o model.pt2`) and translated by onnxscript. The TorchScript
exporter (`dynamo=False`) also handles these networks, but warns on every call
that it is deprecated and will be removed.

The graph is the inference graph (eval mode): input `x` of shape `batch×C×H×W`,
outputs named as the spec's outputs (`main`, then heads that are not
training-only), each with the same dynamic `batch` first dimension.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..infer import TypedGraph

OPSET = 18
"""The ONNX opset written: torch's default for this exporter, run by onnxruntime >= 1.14."""

MAX_BYTES = 2**31 - 1
"""A single ONNX (protobuf) file holds at most 2 GB; larger weights need external data files."""

EXAMPLE_BATCH = 2
"""Traced with a batch of 2: a batch of 1 would let the tracer treat the batch size as a constant."""


class OnnxExportError(RuntimeError):
    """The module cannot be written as one ONNX file."""


def export_onnx(module: Any, typed: TypedGraph, path: str | Path, opset: int = OPSET) -> None:
    """Write `module`'s inference graph to `path` (module in eval mode; its mode is restored after)."""
    weights = sum(t.numel() * t.element_size() for t in module.state_dict().values())
    if weights > MAX_BYTES:
        raise OnnxExportError(f"the weights take {weights:,} bytes; one .onnx file holds at most 2 GB "
                              "(write .safetensors or .pt2 instead)")
    device = next((p.device for p in module.parameters()), torch.device("cpu"))
    example = torch.randn((EXAMPLE_BATCH, *typed.input_shape), device=device)
    outputs = typed.net.output_names(training=False)
    batch = torch.export.Dim("batch")
    was_training = module.training
    module.eval()
    try:
        program = torch.onnx.export(module, (example,), dynamo=True, opset_version=opset, input_names=["x"],
                                    output_names=outputs, dynamic_shapes=({0: batch},), verbose=False)
    finally:
        module.train(was_training)
    if program is None:  # pragma: no cover - dynamo=True always returns a program
        raise OnnxExportError("torch.onnx.export returned no program")
    program.save(str(path), external_data=False)
