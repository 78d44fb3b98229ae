"""Load a torchvision GoogLeNet `state_dict` into the module archspec compiles, and compare outputs.

    python examples/load_torchvision.py

specs/googlenet.yaml names its layers as torchvision does, so the keys of the
two state_dicts are the same and `load_state_dict(..., strict=True)` accepts
torchvision's weights as they are. torchvision's model is randomly initialised
here (nothing is downloaded); with `weights="DEFAULT"` you would load the
ImageNet weights the same way.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
import torchvision

import archspec

GOOGLENET = Path(__file__).resolve().parent.parent / "specs" / "googlenet.yaml"


def main() -> None:
    torch.manual_seed(0)
    with warnings.catch_warnings():  # torchvision warns that random init is slow
        warnings.simplefilter("ignore")
        reference = torchvision.models.googlenet(weights=None, aux_logits=True, init_weights=True,
                                                 transform_input=False)
    model = archspec.build(GOOGLENET)
    result = model.load_state_dict(reference.state_dict(), strict=True)
    print(f"loaded {len(reference.state_dict())} tensors with strict=True: "
          f"{len(result.missing_keys)} missing, {len(result.unexpected_keys)} unexpected")
    print(f"e.g. {next(k for k in model.state_dict() if k.startswith('inception3a.branch2'))}")

    reference.eval(), model.eval()
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        expected, got = reference(x), model(x)
    difference = (got - expected).abs().max().item()
    print(f"eval outputs: {tuple(got.shape)}, largest difference {difference:.1e}")
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)
    print("outputs match")


if __name__ == "__main__":
    main()
