"""`-o .py` of specs written with the language's newer forms: the emitted file runs and agrees with the module."""

from __future__ import annotations

import re

import pytest

import archspec
from archspec.backends.python_source import emit_python

HEAD = "archspec: 1\nname: t\ninput: [3, 16, 16]\n"

SPECS = {
    "when": """
blocks:
  res:
    params: [out, s=1]
    body:
      conv1: conv($out, 3, s=$s, p=1)
      bn: bn
      downsample: {from: input, when: "$s != 1 or $in.c != $out", body: ["conv($out, 1, s=$s)", bn]}
      add: add(bn, downsample)
body:
  a: res(3)
  b: res(8)
  c: res(8, s=2)
  d: res(8)
  pool: global_avgpool
""",
    "in_and_callee": """
vars: {act: hardswish, block: dw}
blocks:
  dw:
    params: [act=relu]
    body: ["conv($in.c, 3, p=1, groups=$in.c)", $act]
body:
  stem: conv(8, 1)
  b1: $block(act=$act)
  b2: conv(16, 1)
  b3: $block
  act: $act
""",
    "repeat_names": """
body:
  stage:
    repeat: 3
    start: 1
    names: "denselayer{i}"
    body: ["conv(4, 3, p=1, s=2 if $i == 0 else 1)", relu]
  trunk:
    - {name: block1-0, body: "conv(6, 1)"}
    - {name: block1-1, body: relu}
""",
    "splice": """
blocks:
  cr: {params: [c], body: ["conv($c, 3, p=1)", relu]}
body:
  features:
    - {repeat: 2, splice: "cr(8)"}
    - maxpool(2, s=2)
    - {splice: "cr(16)"}
  pool: global_avgpool
  flat: flatten
  classifier: [dropout(0.5), linear(10)]
""",
    "table": """
vars:
  cfg: [[8, 1, 1], [12, 2, 2]]
blocks:
  dw: {body: ["conv($in.c, 3, p=1, groups=$in.c)", bn, relu6]}
  ir:
    params: [c, s]
    body:
      dw: dw
      project: conv($c, 1, s=$s)
      add: {when: "$s == 1 and $in.c == $c", body: "add(project, input)"}
  row:
    params: [c, n, s]
    splice: {repeat: $n, body: ["ir($c, $s if $i == 0 else 1)"]}
body:
  features:
    - conv(8, 3, p=1)
    - {repeat: len($cfg), splice: "row($cfg[$i][0], $cfg[$i][1], $cfg[$i][2])"}
    - {repeat: 2, splice: ["conv(16 * ($i + 1), 1)"]}
  pool: global_avgpool
""",
}


@pytest.mark.parametrize("name", sorted(SPECS))
def test_emitted_file_runs_and_agrees(name: str) -> None:
    import torch

    typed = archspec.compile(archspec.loads(HEAD + SPECS[name], f"{name}.yaml"))
    source = emit_python(typed)
    namespace: dict = {}
    exec(compile(source, f"{name}.py", "exec"), namespace)
    cls = re.findall(r"^class (\w+)\(nn\.Module\)", source, re.M)[-1]
    torch.manual_seed(0)
    model = archspec.build(typed).eval()
    ours = namespace[cls]().eval()
    ours.load_state_dict(model.state_dict(), strict=True)
    assert list(ours.state_dict()) == list(model.state_dict())
    x = torch.randn(2, *typed.input_shape)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), model(x))
