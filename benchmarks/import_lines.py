"""How close an imported spec comes to the hand-written one: non-comment lines and templates found.

    PYTHONPATH=. python benchmarks/import_lines.py     # a Markdown table, as in docs/import.md

Lines are those neither blank nor only a comment. The hand-written side is the spec and the library
files it imports (`import:`), which the whole family shares; the imported spec stands alone.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
MODELS = {  # name: (builder keyword arguments, input)
    "googlenet": ({"weights": None, "init_weights": False}, (3, 224, 224)),
    "inception_v3": ({"weights": None, "init_weights": False}, (3, 299, 299)),
    "resnet50": ({"weights": None}, (3, 224, 224)),
    "mobilenet_v2": ({"weights": None}, (3, 224, 224)),
}


def code_lines(text: str) -> int:
    return sum(1 for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#"))


def hand_written(path: Path, seen: set[Path] | None = None) -> int:
    """Non-comment lines of a spec and of every library it imports, each file once."""
    seen = set() if seen is None else seen
    if path in seen:
        return 0
    seen.add(path)
    text = path.read_text()
    imports = yaml.safe_load(text).get("import") or []
    return code_lines(text) + sum(hand_written(path.parent / p, seen) for p in
                                  ([imports] if isinstance(imports, str) else imports))


def measure(name: str) -> tuple[int, int, int, int]:
    """(imported lines, hand-written lines, hand-written spec alone, templates found)."""
    import torchvision

    from archspec.importer import import_module

    kwargs, shape = MODELS[name]
    text = import_module(getattr(torchvision.models, name)(**kwargs), shape, name=name)
    blocks = yaml.safe_load(text).get("blocks") or {}
    spec = ROOT / "specs" / f"{name}.yaml"
    return code_lines(text), hand_written(spec), code_lines(spec.read_text()), len(blocks)


def main(names: list[str]) -> None:
    print("| network | imported | hand-written (with its libraries) | ratio | templates |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name in names or list(MODELS):
        ours, theirs, alone, templates = measure(name)
        print(f"| {name} | {ours} | {theirs} ({alone} + {theirs - alone}) | {ours / theirs:.2f}× | {templates} |")


if __name__ == "__main__":
    main(sys.argv[1:])
