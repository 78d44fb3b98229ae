"""Weights files: write a module's `state_dict` as safetensors, load one strictly, located.

A weights file is read without unpickling code: `.safetensors` with safetensors,
anything else with `torch.load(weights_only=True)` (a `state_dict` saved by
`torch.save`, e.g. torchvision's). When the file does not fit the network,
every missing, unexpected or differently shaped tensor is reported at the
spec line of the node it belongs to (`state_dict` keys are node paths).
"""

from __future__ import annotations

import difflib
import os
import re
import stat
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Any

import torch

from .errors import Diagnostic, Diagnostics, Location, SpecError
from .infer import TypedGraph
from .ir import Node, Scope

SHOWN = 12
"""At most this many nodes are reported one by one; the rest are counted."""

WIDENED = {(torch.float16, torch.float32), (torch.bfloat16, torch.float32), (torch.float16, torch.float64),
           (torch.bfloat16, torch.float64), (torch.float32, torch.float64)}
"""(file's dtype, module's dtype) pairs loaded by conversion: every value of the first is exact in the second.

Every other difference is refused: fp64 -> fp32 rounds, integers and bools are no weights,
complex would lose its imaginary part, and float8 tensors mean nothing without their scales.
"""


class WeightsConverted(UserWarning):
    """Weights were loaded by a lossless conversion (fp16 or bf16 in the file, float32 in the module)."""


def save_weights(module: torch.nn.Module, path: str | Path) -> None:
    """Write `module.state_dict()` to a safetensors file (on CPU, contiguous, no shared storage)."""
    from safetensors.torch import save_file

    tensors: dict[str, torch.Tensor] = {}
    seen: set[tuple[int, int]] = set()
    for key, tensor in module.state_dict().items():
        t = tensor.detach().to("cpu").contiguous()
        storage = (t.untyped_storage().data_ptr(), t.storage_offset())
        if storage in seen or t.untyped_storage().nbytes() != t.numel() * t.element_size():
            t = t.clone()  # safetensors refuses tensors that share or only partly use their storage
        seen.add((t.untyped_storage().data_ptr(), t.storage_offset()))
        tensors[key] = t
    try:
        save_file(tensors, str(path), metadata={"format": "pt"})
    except Exception as exc:  # safetensors' Rust writer reports a full disk as text: raise it as the OSError it is
        code = re.search(r"\(os error (\d+)\)", str(exc))
        if code is None:
            raise
        raise OSError(int(code.group(1)), os.strerror(int(code.group(1))), str(path)) from None


def read_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a weights file, on CPU; SpecError `weights-unreadable` (at the file) if it has none."""
    path = str(path)
    try:
        info = os.stat(path)  # never open a FIFO or a device: reading one can block forever
    except OSError as exc:
        raise _unreadable(path, "no such file" if isinstance(exc, FileNotFoundError) else str(exc.strerror),
                          "--weights takes a .safetensors file, or a state_dict written by torch.save") from None
    if not stat.S_ISREG(info.st_mode):
        raise _unreadable(path, f"it is {_file_kind(info.st_mode)}, not a regular file",
                          "--weights takes a .safetensors file, or a state_dict written by torch.save")
    if info.st_size == 0:
        raise _unreadable(path, "the file is empty", None)
    try:
        if path.endswith(".safetensors"):
            from safetensors.torch import load_file

            state: Any = load_file(path, device="cpu")
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure to read a user's file is reported, not raised
        raise _unreadable(path, _reason(path, exc), _hint(path, exc)) from None
    if isinstance(state, dict) and state and all(isinstance(v, torch.Tensor) for v in state.values()):
        return dict(state)
    nested = [k for k in ("state_dict", "model", "model_state_dict") if isinstance(state, dict) and k in state]
    hint = f"the file is a checkpoint: save its '{nested[0]}' entry alone" if nested else None
    raise _unreadable(path, f"it holds {_kind(state)}, not a state_dict of tensors", hint)


def load_weights(module: torch.nn.Module, typed: TypedGraph, path: str | Path) -> None:
    """Load a weights file into `module` (built from `typed`) strictly; SpecError `weights-mismatch` if unfit.

    Tensors must have the module's dtypes, except where converting is lossless (fp16 or
    bf16 into float32): those are converted, with a `WeightsConverted` warning.
    """
    state = read_weights(path)
    own = module.state_dict()
    problems = mismatches(typed, {k: tuple(v.shape) for k, v in own.items()},
                          {k: tuple(v.shape) for k, v in state.items()}, str(path))
    if not problems:
        problems = dtype_mismatches(typed, {k: v.dtype for k, v in own.items()},
                                    {k: v.dtype for k, v in state.items()}, str(path))
    if problems:
        raise SpecError(problems, typed.net.sources)
    converted: dict[tuple[torch.dtype, torch.dtype], int] = defaultdict(int)
    for key, tensor in state.items():
        if tensor.dtype != own[key].dtype:
            converted[(tensor.dtype, own[key].dtype)] += 1
            state[key] = tensor.to(own[key].dtype)
    module.load_state_dict(state, strict=True)
    if converted:
        done = ", ".join(f"{n} {_dtype(a)} tensor{'s' if n > 1 else ''} to {_dtype(b)}"
                         for (a, b), n in converted.items())
        warnings.warn(f"{path}: converted {done} (lossless)", WeightsConverted, stacklevel=2)


def dtype_mismatches(typed: TypedGraph, want: dict[str, torch.dtype], have: dict[str, torch.dtype],
                     file: str) -> list[Diagnostic]:
    """A file's tensors whose dtype is not the module's and cannot be converted without loss, located at their nodes."""
    nodes = {n.module_path: n for n in typed.net.nodes.values()}
    wrong: dict[str, list[str]] = defaultdict(list)
    for key, dtype in want.items():  # in the module's order: the file's may be sorted
        if key in have and have[key] != dtype and (have[key], dtype) not in WIDENED:
            wrong[key.rpartition(".")[0]].append(key.rpartition(".")[2])
    diags = Diagnostics()
    for owner, names in wrong.items():
        found = ", ".join(f"{n} {_dtype(have[f'{owner}.{n}'])}" for n in names)
        verb = "has" if len(names) == 1 else "have"
        diags.add(_at(nodes.get(owner), owner, f"{_and(names)} in {file} {verb} another dtype than this {{op}}'s",
                      expected=", ".join(f"{n} {_dtype(want[f'{owner}.{n}'])}" for n in names), found=found))
    if not diags.items:
        return []
    count = sum(map(len, wrong.values()))
    summary = Diagnostic("weights-mismatch", f"{file} does not fit {typed.net.name}: {count} tensor"
                         f"{'s' if count > 1 else ''} of another dtype",
                         hint="only fp16 and bf16 are converted to float32 (that is lossless); convert the file "
                              "yourself where rounding is wanted, e.g. `{k: v.float() for k, v in state.items()}`")
    if len(diags.items) > SHOWN:
        summary.notes.append((Location(file, 1, 1), f"{len(diags.items) - SHOWN} more places are not shown"))
    return diags.items[:SHOWN] + [summary]


def mismatches(typed: TypedGraph, want: dict[str, tuple[int, ...]], have: dict[str, tuple[int, ...]],
               file: str) -> list[Diagnostic]:
    """Where a file's tensors (`have`, key -> shape) do not fit the network's (`want`), located in the spec.

    One diagnostic per node with tensors missing from the file, one per node with
    tensors of another shape, one per spec scope that the file's extra keys fall in,
    then a summary with the counts.
    """
    net = typed.net
    nodes = {n.module_path: n for n in net.nodes.values()}
    missing: dict[str, list[str]] = defaultdict(list)
    reshaped: dict[str, list[str]] = defaultdict(list)
    for key, shape in want.items():
        owner, _, name = key.rpartition(".")
        if key not in have:
            missing[owner].append(name)
        elif have[key] != shape:
            reshaped[owner].append(name)
    extra = [k for k in have if k not in want]
    diags = Diagnostics()
    for owner, names in missing.items():
        sizes = ", ".join(f"{n} {_shape(want[f'{owner}.{n}'])}" for n in names)
        diags.add(_at(nodes.get(owner), owner, f"{file} has no {_and(names)} for this {{op}}", expected=sizes))
    for owner, names in reshaped.items():
        verb = "has" if len(names) == 1 else "have"
        diags.add(_at(nodes.get(owner), owner, f"{_and(names)} in {file} {verb} another shape than this {{op}}'s",
                      expected=", ".join(f"{n} {_shape(want[f'{owner}.{n}'])}" for n in names),
                      found=", ".join(f"{n} {_shape(have[f'{owner}.{n}'])}" for n in names)))
    for scope, keys in _by_scope(net.scopes, extra):
        where = f"under '{scope.path}'" if scope is not None and scope.path else "in this network"
        shown = ", ".join(keys[:6]) + (f" and {len(keys) - 6} more" if len(keys) > 6 else "")
        loc = scope.loc if scope is not None and scope.loc is not None else _body(typed)
        diags.add(Diagnostic("weights-mismatch", f"{file} has {len(keys)} tensor{'s' if len(keys) > 1 else ''} "
                             f"with no place {where}", loc=loc,
                             path=scope.path if scope is not None and scope.path else None, found=shown,
                             hint=_did_you_mean(keys, [k for k in want if k not in have] or list(want))))
    if not diags.items:
        return []
    counted = (f"{sum(map(len, missing.values()))} missing, {len(extra)} unexpected, "
               f"{sum(map(len, reshaped.values()))} of another shape")
    summary = Diagnostic("weights-mismatch", f"{file} does not fit {net.name}: {counted}",
                         hint="loading is strict: the file must hold this network's state_dict, as "
                              "`archspec build SPEC -o weights.safetensors` writes it, with the same --set values")
    if len(diags.items) > SHOWN:
        summary.notes.append((Location(file, 1, 1), f"{len(diags.items) - SHOWN} more places are not shown"))
    return diags.items[:SHOWN] + [summary]


def _at(node: Node | None, owner: str, message: str, **kw: Any) -> Diagnostic:
    """A mismatch at the spec line of the node that owns module path `owner`."""
    return Diagnostic("weights-mismatch", message.format(op=node.op if node is not None else "module"),
                      loc=node.loc if node is not None else None,
                      path=node.name if node is not None else owner.replace(".", "/"), **kw)


def _by_scope(scopes: dict[str, Scope], keys: list[str]) -> list[tuple[Scope | None, list[str]]]:
    """Unexpected keys grouped by the deepest spec scope whose module path prefixes them (None: no scope)."""
    paths = {s.path.replace("/", "."): s.path for s in scopes.values() if s.path}
    groups: dict[str | None, list[str]] = defaultdict(list)
    for key in keys:
        parts = key.split(".")
        prefixes = (".".join(parts[:i]) for i in range(len(parts) - 1, 0, -1))
        groups[next((paths[p] for p in prefixes if p in paths), None)].append(key)
    return [(scopes[path] if path is not None else None, found) for path, found in groups.items()]


def _body(typed: TypedGraph) -> Location | None:
    """The `body:` line of the spec's main file (where keys that fall in no block are reported)."""
    file = typed.net.file
    text = typed.net.sources.get(str(file)) if file is not None else None
    if text is None:
        return None
    line = next((i for i, t in enumerate(text.splitlines(), 1) if re.match(r"body\s*:", t)), 1)
    return Location(str(file), line, 1)


def _did_you_mean(extra: list[str], missing: list[str]) -> str | None:
    """`did you mean fc.weight for fc1.weight?`: extra keys paired with the network's keys the file lacks."""
    pairs = []
    for key in extra:
        close = difflib.get_close_matches(key, missing, n=1, cutoff=0.6)
        if close:
            pairs.append(f"'{close[0]}' for '{key}'")
    if not pairs:
        return None
    return "did you mean " + _and(pairs[:3]) + (f" (and {len(pairs) - 3} more)" if len(pairs) > 3 else "") + \
        "? the file's keys must be the network's state_dict keys"


def _file_kind(mode: int) -> str:
    kinds = [(stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"),
             (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device")]
    return next((what for test, what in kinds if test(mode)), "a special file")


def _dtype(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _unreadable(path: str, reason: str, hint: str | None) -> SpecError:
    return SpecError([Diagnostic("weights-unreadable", f"cannot read weights: {reason}", loc=Location(path, 1, 1),
                                 hint=hint)])


def _reason(path: str, exc: Exception) -> str:
    text = str(exc)
    unsafe = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text)
    if unsafe:
        return f"it pickles Python objects ({unsafe.group(1)}), which weights_only loading refuses to run"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    if not path.endswith(".safetensors"):  # torch.load fails on other bytes in many ways, none of them telling
        return "it is not a file written by torch.save, or it is damaged"
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return first if len(first) <= 160 else first[:157] + "..."


def _hint(path: str, exc: Exception) -> str | None:
    if "GLOBAL archspec." in str(exc):
        return ("this is a whole pickled module, as `-o model.pt` writes it: --weights reads weights only; "
                "write them with `-o weights.safetensors`")
    if not path.endswith(".safetensors"):
        return "--weights reads a .safetensors file, or a state_dict written by torch.save"
    return None


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "an empty dict" if not value else "a dict with values that are not tensors"
    return f"a {type(value).__name__}"


def _and(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _shape(shape: tuple[int, ...]) -> str:
    return "×".join(map(str, shape)) if shape else "scalar"
