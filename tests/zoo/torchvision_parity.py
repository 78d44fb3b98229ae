"""Parity of a `specs/<builder>.yaml` with torchvision's builder of the same name.

Two checks, shared by every torchvision family's test file:

- `check_meta(builder)`: the reference and the spec both built on the `meta` device
  (no memory, no compute): equal state_dict keys, equal shapes, and the parameter
  count equal to the reference's and to the spec's `expect: params`. Cheap enough
  for every variant of every family.
- `check_outputs(builder, hw)`: both built for real with random weights (BN statistics
  calibrated on a batch, so eval outputs are of order 1), the reference's state_dict
  loaded with `strict=True`, eval outputs equal within `rtol` at a small input,
  and training-mode outputs of the same structure. For the smallest variant of a family.
"""

from __future__ import annotations

from typing import Any

import torch
import torchvision

import archspec

from . import SPECS, calibrate_bn

RTOL = 1e-4


def reference(builder: str, **kwargs: Any) -> torch.nn.Module:
    """torchvision's model, randomly initialised (no weights are ever downloaded)."""
    return torchvision.models.get_model(builder, weights=None, **kwargs)


def check_meta(builder: str, spec: str | None = None, **kwargs: Any) -> None:
    """Keys, shapes and parameter count of the spec equal the reference's, on the meta device."""
    path = SPECS / f"{spec or builder}.yaml"
    with torch.device("meta"):
        ref = reference(builder, **kwargs)
    ours = archspec.build(path, device="meta")
    ref_shapes = {k: tuple(v.shape) for k, v in ref.state_dict().items()}
    our_shapes = {k: tuple(v.shape) for k, v in ours.state_dict().items()}
    missing, extra = sorted(set(ref_shapes) - set(our_shapes)), sorted(set(our_shapes) - set(ref_shapes))
    assert not missing and not extra, f"{builder}: keys missing {missing[:8]}, unexpected {extra[:8]}"
    wrong = {k: (our_shapes[k], s) for k, s in ref_shapes.items() if our_shapes[k] != s}
    assert not wrong, f"{builder}: shapes differ (ours, reference): {dict(list(wrong.items())[:8])}"
    ref_params = sum(p.numel() for p in ref.parameters())
    assert sum(p.numel() for p in ours.parameters()) == ref_params
    expect = archspec.load(path).expect
    assert expect is not None and expect.params == ref_params, f"{builder}: expect: params must be {ref_params:,}"


def check_outputs(builder: str, hw: int = 64, spec: str | None = None, rtol: float = RTOL,
                  **kwargs: Any) -> None:
    """Strict load of the reference's weights, then equal eval outputs at `hw`×`hw` (and train-mode structure)."""
    path = SPECS / f"{spec or builder}.yaml"
    torch.manual_seed(0)
    x = torch.randn(2, 3, hw, hw)
    ref = calibrate_bn(reference(builder, **kwargs), x)
    ours = archspec.build(path, input=[3, hw, hw])
    ours.load_state_dict(ref.state_dict(), strict=True)
    ours.eval()
    with torch.no_grad():
        want, got = ref(x), ours(x)
    assert got.shape == want.shape
    scale = want.abs().max().item()
    err = (got - want).abs().max().item()
    assert err <= rtol * max(scale, 1e-6), f"{builder}: max |diff| {err:.3g} against max |out| {scale:.3g}"
    ref.train(), ours.train()
    with torch.no_grad():
        want_t, got_t = ref(x), ours(x)
    if isinstance(want_t, torch.Tensor):
        assert isinstance(got_t, torch.Tensor) and got_t.shape == want_t.shape, f"{builder}: training output differs"
    else:  # a reference with auxiliary heads returns a tuple of tensors; archspec a dict, main output first
        assert isinstance(got_t, dict) and len(got_t) == len(want_t), f"{builder}: training outputs differ"
