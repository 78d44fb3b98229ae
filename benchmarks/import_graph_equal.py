"""Is each imported zoo model the hand-written spec's graph? The importer's measure against `specs/`.

    PYTHONPATH=. python benchmarks/import_graph_equal.py [NAME ...] [--cache DIR]

Imports every torchvision builder with a spec in `specs/` (and timm's Inception v4 and Inception-ResNet v2),
built on the meta device (RegNet on the CPU, which torchvision needs), and prints per network the verdict
of `archspec.graph_equal` against `specs/NAME.yaml`: equal, or the first differences. With `--cache DIR`
the imported specs are kept there and read back on the next run (delete one to import it again).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
TIMM = ("inception_v4", "inception_resnet_v2")
INPUT = {"inception_v3": (3, 299, 299), "inception_v4": (3, 299, 299), "inception_resnet_v2": (3, 299, 299)}
KWARGS = {"googlenet": {"init_weights": False}, "inception_v3": {"init_weights": False}}
TOO_BIG = ("regnet_y_128gf",)  # 644 M parameters, 2.6 GB to build on the CPU first


def names() -> list[str]:
    import torchvision

    out = [p.stem for p in sorted(SPECS.glob("*.yaml")) if hasattr(torchvision.models, p.stem)]
    return [n for n in out if n not in TOO_BIG] + list(TIMM)


def imported(name: str) -> str:
    import torch
    import torchvision

    from archspec.importer import import_module

    shape = INPUT.get(name, (3, 224, 224))
    if name in TIMM:
        import timm

        with torch.device("meta"):
            module = timm.create_model(name, pretrained=False)
    elif name.startswith("regnet"):  # torchvision's RegNet cannot be built on the meta device
        module = getattr(torchvision.models, name)(weights=None).to("meta")
    else:
        with torch.device("meta"):
            module = getattr(torchvision.models, name)(weights=None, **KWARGS.get(name, {}))
    return import_module(module, shape, name=name)


def main() -> int:
    import archspec
    from archspec.graph_equal import graph_equal

    ap = argparse.ArgumentParser()
    ap.add_argument("names", nargs="*")
    ap.add_argument("--cache", type=Path)
    args = ap.parse_args()
    differ = 0
    for name in args.names or names():
        cached = args.cache / f"{name}.yaml" if args.cache else None
        start = time.perf_counter()
        if cached is not None and cached.exists():
            text = cached.read_text()
        else:
            text = imported(name)
            if cached is not None:
                cached.parent.mkdir(parents=True, exist_ok=True)
                cached.write_text(text)
        took = time.perf_counter() - start
        result = graph_equal(archspec.compile(archspec.loads(text, file=f"{name}.imported.yaml")),
                             archspec.compile(SPECS / f"{name}.yaml"))
        differ += not result.equal
        print(f"{name:24} {result.summary()}  ({took:.1f} s)", flush=True)
    print(f"{differ} network(s) differ", flush=True)
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
