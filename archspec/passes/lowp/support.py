"""Which low-precision dtypes this machine runs, and the error raised when it cannot."""

from __future__ import annotations

from collections.abc import Callable

import torch

DTYPES = ("fp32", "bf16", "fp16", "int8")
"""The `dtype`s `archspec.optimize` takes: fp32 as built, bf16 and fp16 as real casts, int8 quantised."""

TORCH_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


class LowPrecisionError(ValueError):
    """A dtype this device cannot run, or int8 asked for without what it needs (calibration batches, a CPU).

    `code` is the stable error code of docs/errors.md; `hint` says what to do instead.
    """

    def __init__(self, code: str, message: str, hint: str):
        super().__init__(f"{message} (hint: {hint})")
        self.code, self.message, self.hint = code, message, hint


def check_supported(dtype: str, device: torch.device) -> None:
    """Raise `LowPrecisionError` where `device` cannot run `dtype` natively."""
    if dtype not in DTYPES:
        raise LowPrecisionError(code="unsupported-dtype", message=f"unknown dtype '{dtype}'",
                                hint=f"choose one of {', '.join(DTYPES)}")
    if dtype == "fp32" or device.type == "meta":
        return
    if device.type == "cpu":
        _check_cpu(dtype)
    elif dtype == "int8":
        raise LowPrecisionError(code="unsupported-dtype",
                                message=f"int8 runs on the CPU only (oneDNN's VNNI kernels), not on {device.type}",
                                hint="use --dtype bf16 or fp16 on a GPU, or optimise on --device cpu")


NEEDS = {"bf16": "AVX-512 BF16 or AMX", "fp16": "AVX-512 FP16 or AMX-FP16", "int8": "AVX-512 VNNI or AVX-VNNI"}


def _check_cpu(dtype: str) -> None:
    if not torch.backends.mkldnn.is_available():
        raise LowPrecisionError(code="unsupported-dtype", message=f"{dtype} on the CPU needs torch built with oneDNN",
                                hint="install the torch wheels from pytorch.org, or stay in fp32")
    checks: dict[str, Callable[[], bool]] = {"bf16": torch.ops.mkldnn._is_mkldnn_bf16_supported,
                                             "fp16": torch.ops.mkldnn._is_mkldnn_fp16_supported,
                                             "int8": cpu_has_vnni}
    native = checks[dtype]
    if not native():
        raise LowPrecisionError(code="unsupported-dtype",
                                message=f"this CPU has no native {dtype} arithmetic (it needs {NEEDS[dtype]}); "
                                        f"emulated, {dtype} would be slower than fp32",
                                hint="leave out --dtype (fp32), or run on a CPU that has it")


def cpu_has_vnni() -> bool:
    """Whether the CPU has int8 dot-product instructions (VNNI), which oneDNN's int8 convolutions use."""
    return bool(torch.cpu._is_vnni_supported())
