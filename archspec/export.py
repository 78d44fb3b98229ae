"""Output formats of `archspec build -o FILE`: a table from the file's suffix to its writer.

Every writer gets a temporary path with the final suffix (see `atomic_output`),
so a failed write never leaves a half-written file. Writers import torch,
onnx, safetensors lazily: this table is read before the network is built.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .files import atomic_output, write_via_python
from .infer import TypedGraph


class ExportError(RuntimeError):
    """A module that cannot be written in the format asked for (too large, a package missing)."""


@dataclass(frozen=True)
class Format:
    suffix: str
    what: str
    write: Callable[[Any, TypedGraph, str], None]
    """`write(module, typed, path)`; `module` is the built ArchModule."""
    needs_weights: bool = True
    """False where the file is made from the typed graph alone (a module built on meta will do)."""
    takes_optimized: bool = False
    """True where an optimised module (`archspec.optimize`) can be written in this format."""


def _write_pt(module: Any, typed: TypedGraph, path: str) -> None:
    import torch

    write_via_python(path, lambda f: torch.save(module, f))


EXAMPLE_BATCH = 2
"""Exported with a batch of 2 marked dynamic: a batch of 1 would let torch.export treat it as a constant."""


def _write_pt2(module: Any, typed: TypedGraph, path: str) -> None:
    import torch

    packed = _packed(module)
    if packed:
        raise ExportError(f"{packed} holds oneDNN-packed weights (an optimisation pass packed them for this CPU), "
                          "which torch.export cannot save; write .pt, or leave out the packing pass with --passes")
    device = next((p.device for p in module.parameters()), torch.device("cpu"))
    example = torch.zeros((EXAMPLE_BATCH, *typed.input_shape), device=device)
    program = torch.export.export(module.eval(), (example,), dynamic_shapes=({0: torch.export.Dim("batch")},))
    write_via_python(path, lambda f: torch.export.save(program, f))


def _packed(module: Any) -> str | None:
    """The first submodule that keeps a oneDNN (mkldnn) tensor as a plain attribute, or None."""
    import torch

    for name, sub in module.named_modules():
        if getattr(sub, "exports_unpacked", False):  # traced through plain ops under torch.export
            continue
        if any(isinstance(v, torch.Tensor) and v.is_mkldnn for v in vars(sub).values()):
            return name or "the module"
    return None


def _write_onnx(module: Any, typed: TypedGraph, path: str) -> None:
    import importlib.util

    missing = [name for name in ("onnx", "onnxscript") if importlib.util.find_spec(name) is None]
    if missing:
        raise ExportError(f"writing .onnx needs {' and '.join(missing)}: pip install 'archspec[export]'")
    from .backends.onnx import OnnxExportError, export_onnx

    try:
        export_onnx(module, typed, path)
    except OnnxExportError as exc:
        raise ExportError(str(exc)) from None


def _write_safetensors(module: Any, typed: TypedGraph, path: str) -> None:
    from .weights import save_weights

    save_weights(module, path)


def _write_python(module: Any, typed: TypedGraph, path: str) -> None:
    try:
        from .backends.python_source import emit_python  # type: ignore[import-not-found,unused-ignore]
    except ModuleNotFoundError as exc:
        if exc.name != "archspec.backends.python_source":
            raise
        raise ExportError("this archspec has no Python source emitter (archspec.backends.python_source)") from None
    Path(path).write_text(emit_python(typed), encoding="utf-8")


FORMATS: dict[str, Format] = {f.suffix: f for f in [
    Format(".pt", "the whole module, pickled (torch.load(..., weights_only=False))", _write_pt,
           takes_optimized=True),
    Format(".pt2", "a torch.export program (torch.export.load)", _write_pt2, takes_optimized=True),
    Format(".onnx", "ONNX, inference graph, dynamic batch (onnxruntime)", _write_onnx),
    Format(".safetensors", "the weights only (load them with --weights)", _write_safetensors),
    Format(".py", "standalone PyTorch source: one nn.Module class per block", _write_python, needs_weights=False),
]}


def format_of(path: str | Path) -> Format | None:
    """The format `path`'s suffix asks for, or None."""
    return FORMATS.get(Path(path).suffix.lower())


def formats_help() -> str:
    """`.pt, .pt2, .onnx, .safetensors or .py`."""
    names = list(FORMATS)
    return ", ".join(names[:-1]) + " or " + names[-1]


def save(module: Any, typed: TypedGraph, path: str | Path) -> None:
    """Write `module` (built from `typed`) to `path` in the format its suffix names, atomically."""
    fmt = format_of(path)
    if fmt is None:
        raise ValueError(f"unknown output format {Path(path).suffix or '(no suffix)'}; use {formats_help()}")
    if fmt.needs_weights and _on_meta(module):
        raise ValueError(f"a module built on the meta device has no weights to write to {fmt.suffix}; "
                         "build it on cpu or cuda")
    with atomic_output(path) as tmp:
        fmt.write(module, typed, tmp)


def _on_meta(module: Any) -> bool:
    return any(p.device.type == "meta" for p in module.parameters())
