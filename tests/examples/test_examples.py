"""Every example in examples/ runs as a user would run it and prints what it promises.

Each runs in its own process from the repository's root (`python examples/NAME.py`);
the lines listed for it must appear in its output, in order. `train.py` and `lowp_accuracy.py` are tested
with the training code, not here.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
SKIP = {"train.py", "lowp_accuracy.py"}

EXPECTED: dict[str, list[str]] = {
    "custom_block.py": [
        "my_net.yaml:27:29: error[too-many-arguments] mix2: mix() takes 4 arguments",
        "  = expected: mix(c1, c3r, c3, pool_proj)",
        "my_net.yaml:26:9: error[shape-mismatch] mix1: concat inputs differ in spatial size",
        "  = found:    16×16×16, 32×14×14, 16×16×16",
        "ok    my_net: 33,418 params, 8,086,784 MACs",
        "      mix2  128×16×16",
        "built My_net: input 4×3×32×32 -> output 4×10",
    ],
    "mnist_inception_v4.py": [
        "error[input-too-small] features/10/branch0/conv: conv 3×3/2 p0 turns a 1×1 input into 0×0",
        "  = hint: the smallest input this network accepts is 75×75 (given 28×28)",
        "--- smallest input of inception_v4: 75×75",
        "--- way out 1, resize: 2×1×28×28 -> 2×1×75×75 -> logits (2, 10)",
        "--- way out 2, a smaller stem: 41,157,610 params, 1,077,643,776 MACs, smallest input 19×19",
        "      features/0  32×28×28",
        "      features/21 1536×2×2",
        "      2×1×28×28 -> logits (2, 10)",
    ],
    "ablation.py": [
        "**diff  A: specs/googlenet.yaml   B: specs/googlenet.yaml --set k5=5**",
        "| inception3a | inception(64, 96, 128, 16, 32, 32) | branch3/1/conv: conv 3×3/1, 32 → conv 5×5/1, 32 "
        "| 256×28×28 | 155,872 | 164,064 | +8,192 | 121,626,624 | 128,049,152 | +6,422,528 | changed |",
        "changed blocks: 9",
        "params at inference: 6,624,904 -> 7,005,832 (+380,928)",
        "MACs per image:      1,498,376,192 -> 1,582,671,872 (+84,295,680)",
        "k5=7:  7,577,224 params   1,709,115,392 MACs",
    ],
    "load_torchvision.py": [
        "loaded 364 tensors with strict=True: 0 missing, 0 unexpected",
        "e.g. inception3a.branch2.0.conv.weight",
        "eval outputs: (2, 1000), largest difference",
        "outputs match",
    ],
}


def examples() -> list[str]:
    return sorted(p.name for p in EXAMPLES.glob("*.py") if p.name not in SKIP)


def test_every_example_has_its_expected_output_listed():
    assert set(examples()) == set(EXPECTED), "list the key output lines of each example in EXPECTED"


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n == "mnist_inception_v4.py" else n
                                  for n in examples()])
def test_example_runs_and_prints_its_results(name):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, f"examples/{name}"], cwd=ROOT, capture_output=True, text=True,
                         timeout=600, env=env)
    assert out.returncode == 0, f"{name} failed:\n{out.stdout}\n{out.stderr}"
    lines = out.stdout.splitlines()
    position = 0
    for expected in EXPECTED[name]:
        found = next((i for i in range(position, len(lines)) if expected in lines[i]), None)
        assert found is not None, f"{name} no longer prints:\n{expected}\n\nit prints:\n{out.stdout}"
        position = found + 1
