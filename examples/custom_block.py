"""Write your own Inception block, check it, read the located error, fix it.

    python examples/custom_block.py

The spec below defines a small Inception-style block (`mix`: a 1×1 branch, a
1×1 → 3×3 branch and a pool branch, concatenated) and a network that uses it
twice. It starts with two mistakes; each check prints the error archspec finds,
at file:line:col, and the fix is applied to the text before checking again.
Nothing here imports torch until the final build.
"""

from __future__ import annotations

import archspec

SPEC = """\
archspec: 1
name: my_net
input: [3, 32, 32]
vars: {num_classes: 10}

blocks:
  cbr:                                 # conv → batch norm → relu
    params: [out, k, s=1, p=0]
    body:
      conv: conv($out, $k, s=$s, p=$p, bias=false)
      bn: bn
      relu: relu
  mix:                                 # my Inception block
    params: [c1, c3r, c3, pool_proj]
    concat:
      branch1: cbr($c1, 1)
      branch2:
        - cbr($c3r, 1)
        - cbr($c3, 3)
      branch3:
        - maxpool(3, s=1, p=1)
        - cbr($pool_proj, 1)

body:
  stem: cbr(32, 3, s=2, p=1)
  mix1: mix(16, 16, 32, 16)
  mix2: mix(32, 32, 64, 32, 8)
  pool: global_avgpool
  flatten: flatten
  fc: linear($num_classes)
"""

FIXES = [
    # 1. mix takes four widths; the fifth is a leftover from another block
    ("mix(32, 32, 64, 32, 8)", "mix(32, 32, 64, 32)"),
    # 2. an unpadded 3×3 conv shrinks 16×16 to 14×14, so the branches cannot be concatenated
    ("cbr($c3, 3)", "cbr($c3, 3, p=1)"),
]


def check(text: str) -> archspec.TypedGraph | None:
    """Load and analyse the spec; print the located error if there is one."""
    try:
        return archspec.compile(archspec.loads(text, "my_net.yaml"))
    except archspec.SpecError as err:
        print(err.render())
        return None


def main() -> None:
    text = SPEC
    for step, (wrong, right) in enumerate(FIXES, 1):
        print(f"--- check {step}")
        assert check(text) is None, "the spec should still have a mistake here"
        print(f"fix: {wrong}  ->  {right}\n")
        text = text.replace(wrong, right)

    print("--- check 3")
    typed = check(text)
    assert typed is not None
    print(f"ok    {typed.net.name}: {typed.total('params'):,} params, {typed.total('macs'):,} MACs")
    for name in ("stem", "mix1", "mix2", "fc"):
        print(f"      {name:<6}{'×'.join(map(str, typed.shape(typed.net.output_of(name))))}")

    import torch

    model = archspec.build(typed).eval()
    logits = model(torch.randn(4, 3, 32, 32))
    print(f"built {type(model).__name__}: input 4×3×32×32 -> output {'×'.join(map(str, logits.shape))}")


if __name__ == "__main__":
    main()
