"""Checks beside torchvision_parity.py: `archspec check` of a builder's spec with its MACs against
torch's own counter, the settings of its parameter-free modules, and small real-tensor checks on
one thread.

- `check_counts(builder)` runs the spec's `expect:` (params, MACs, output shape) through
  archspec's torch-free check; with `torch_counter=True` it also asserts that `expect: macs`
  equals what torch's FLOP counter measures on the reference at the spec's input, on the meta
  device. The counter costs a second or so per network, so a family runs it on one variant.
- `check_settings(builder)`: what state_dict keys cannot show, module by module on the meta
  device: BatchNorm eps and momentum, dropout rates, and the stochastic depth rate of every
  block that adds its residual (torchvision makes the module in the others too, unused).
- `check_variant_vars(spec, builder, **vars)`: a family's variants differ only in their vars,
  so a spec with another variant's numbers set (as `--set` does) counts that variant's
  parameters (torch-free, against the reference on the meta device).
- `one_thread()`: a network at 32×32 is hundreds of tiny convolutions, where synchronising
  torch's intra-op threads costs more than the arithmetic (10× slower on a busy 2-core machine).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn
from torchvision.ops import StochasticDepth

import archspec

from . import SPECS, torch_macs
from .torchvision_parity import reference


def check_counts(builder: str, torch_counter: bool = False) -> None:
    path = SPECS / f"{builder}.yaml"
    result = archspec.check_file(path)
    assert result.ok, "\n".join(d.headline() for d in result.diagnostics)
    if torch_counter:
        spec = archspec.load(path)
        assert spec.expect is not None and spec.expect.macs is not None
        with torch.device("meta"):
            _, macs = torch_macs(reference(builder).eval(), torch.empty(1, *spec.input))
        assert spec.expect.macs == macs, f"{builder}: expect: macs {spec.expect.macs:,}, torch counts {macs:,}"


def check_settings(builder: str) -> None:
    with torch.device("meta"):
        ref = reference(builder)
    ours = dict(archspec.build(SPECS / f"{builder}.yaml", device="meta").named_modules())
    for name, module in ref.named_modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            got = ours[name]
            assert (got.eps, got.momentum) == (module.eps, module.momentum), f"{builder}: {name}: {got}"
        elif isinstance(module, nn.Dropout):
            assert ours[name].p == module.p, f"{builder}: {name}: {ours[name]}"
        elif isinstance(module, StochasticDepth) and ref.get_submodule(name.rpartition(".")[0]).use_res_connect:
            assert ours[name].p == module.p, f"{builder}: {name}: p {ours[name].p}, torchvision {module.p}"


def check_variant_vars(spec: str, builder: str, **variables: Any) -> None:
    typed = archspec.compile(SPECS / f"{spec}.yaml", **variables)
    with torch.device("meta"):
        want = sum(p.numel() for p in reference(builder).parameters())
    got = typed.total("params")
    assert got == want, f"{spec} with {variables}: {got:,} params, {builder} {want:,}"


@contextmanager
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
