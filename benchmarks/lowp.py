"""The low-precision ways of benchmarks/run.py (`--lowp`): archspec bf16 and int8 against ONNX Runtime's int8.

    archspec bf16         archspec.optimize(dtype="bf16"): real bf16 weights and activations, oneDNN convs
    archspec int8         archspec.optimize(dtype="int8", calibrate=...): oneDNN int8 convs, uint8 activations
    ONNX Runtime int8     the reference exported to ONNX, then onnxruntime.quantization.quantize_static: QDQ,
                          per-channel int8 weights, uint8 activations, MinMax calibration

Both int8 ways are calibrated on the same batches (CALIBRATION_BATCHES random batches of the timed
input's shape). Low precision cannot match the fp32 reference to 1e-4: bf16 is checked to 1e-2
(relative max difference), and for each int8 way the top-1 agreement with the reference on the
timed batch is noted beside its speed.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Callable

import torch

import archspec
from archspec.profile import forward_runner

BF16, INT8, ORT_INT8 = "archspec bf16", "archspec int8", "ONNX Runtime int8"
OPT = "archspec optimised"
CALIBRATION_BATCHES = 4
BF16_TOLERANCE = 1e-2
TARGETS = [  # (what, faster, than, at least): CPU, batch 8
    (f"{INT8} ≥ 1.0× {ORT_INT8}", INT8, ORT_INT8, 1.0),
    (f"{INT8} ≥ 2.5× {OPT}", INT8, OPT, 2.5),
    (f"{BF16} ≥ 1.5× {OPT}", BF16, OPT, 1.5),
]


def calibration(x: torch.Tensor, seed: int = 1) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(x.shape, generator=gen).to(x.device) for _ in range(CALIBRATION_BATCHES)]


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b).abs().max() / b.abs().max().clamp_min(1e-12))


def _agreement(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.argmax(1) == b.argmax(1)).float().mean())


def ort_int8_session(ref: torch.nn.Module, x: torch.Tensor, batches: list[torch.Tensor], workdir: Path) -> Any:
    """ONNX Runtime on the reference exported to ONNX and quantised statically (QDQ, per channel) on `batches`."""
    import onnxruntime as ort
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    fp32, int8 = workdir / f"ref_{id(ref)}_{x.shape[0]}.onnx", workdir / f"ref_{id(ref)}_{x.shape[0]}_int8.onnx"
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(ref, (x,), str(fp32), opset_version=17, dynamo=False, input_names=["x"])

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.feeds = iter([{"x": b.cpu().numpy()} for b in batches])

        def get_next(self) -> dict[str, Any] | None:
            return next(self.feeds, None)

    quantize_static(str(fp32), str(int8), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # as run.py's fp32 session
    return ort.InferenceSession(str(int8), options, providers=["CPUExecutionProvider"])


def lowp_ways(spec: str, ref: torch.nn.Module, ours: torch.nn.Module, x: torch.Tensor, workdir: Path,
              notes: list[str]) -> dict[str, Callable[[], Any]]:
    """archspec bf16, archspec int8 and ONNX Runtime int8 as no-argument forwards on `x` (CPU only)."""
    if x.device.type != "cpu":
        notes.append(f"{spec}: --lowp ways left out: int8 runs on the CPU only, and bf16 there is --dtype bf16")
        return {}
    batches = calibration(x)
    with torch.inference_mode():
        expected = ref(x).float()
    runners: dict[str, Callable[[], Any]] = {}
    tag = f"{spec}, batch {x.shape[0]}"
    try:
        bf16 = archspec.optimize(ours, dtype="bf16", batch=x.shape[0])
        int8 = archspec.optimize(ours, dtype="int8", calibrate=batches, batch=x.shape[0])
    except ValueError as exc:  # LowPrecisionError: this CPU lacks the arithmetic
        notes.append(f"{tag}: archspec bf16/int8 left out: {exc}")
        return {}
    with torch.inference_mode():
        diff = _rel(bf16(x), expected)
        if diff <= BF16_TOLERANCE:
            runners[BF16] = forward_runner(bf16, x)
        else:
            notes.append(f"{tag}: **{BF16} left out**: differs from the reference by {diff:.2e} (limit 1e-2)")
        notes.append(f"{tag}: {INT8}: top-1 agreement with the reference {_agreement(int8(x), expected):.0%}, "
                     f"relative max difference {_rel(int8(x), expected):.2e}")
    runners[INT8] = forward_runner(int8, x)
    try:
        session = ort_int8_session(ref, x, batches, workdir)
    except ImportError as exc:
        notes.append(f"{ORT_INT8} left out: {exc} (pip install 'archspec[bench]')")
        return runners
    feed = {"x": x.numpy()}
    out = torch.from_numpy(session.run(None, feed)[0])
    notes.append(f"{tag}: {ORT_INT8}: top-1 agreement with the reference {_agreement(out, expected):.0%}, "
                 f"relative max difference {_rel(out, expected):.2e}")
    runners[ORT_INT8] = lambda: session.run(None, feed)
    return runners


def target_rows(results: dict[tuple[str, int], dict[str, list[float]]], batch: int,
                speedup: Callable[[dict[str, list[float]], str, str], float | None]) -> list[list[str]]:
    """The low-precision targets next to what this run measured, per spec at `batch`."""
    rows = []
    for (spec, b), times in results.items():
        if b != batch:
            continue
        for what, way, base, goal in TARGETS:
            got = speedup(times, way, base)
            status = "not measured" if got is None else "met" if got >= goal else f"missed by {1 - got / goal:.0%}"
            rows.append([spec, what, "—" if got is None else f"{got:.2f}×", status])
    return rows
