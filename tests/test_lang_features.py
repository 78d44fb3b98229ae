"""when:, $in, callee variables, named repeats, splice:, name: and their faults (expand and graph)."""

from __future__ import annotations

import pytest

import archspec
from archspec.errors import SpecError

HEAD = "archspec: 1\nname: t\ninput: [3, 8, 8]\n"


def compile_(text: str, **vars):
    return archspec.compile(archspec.loads(HEAD + text, "t.yaml", **vars))


def errors(text: str, **vars):
    with pytest.raises(SpecError) as info:
        compile_(text, **vars)
    return info.value.diagnostics


RESIDUAL = """
blocks:
  res:
    params: [out, s=1]
    body:
      conv1: conv($out, 3, s=$s, p=1)
      downsample: {from: input, when: "$s != 1 or $in.c != $out", body: "conv($out, 1, s=$s)"}
      add: add(conv1, downsample)
body:
  a: res(3)
  b: res(8)
  c: res(8, s=2)
"""


def test_when_false_leaves_the_layer_out_and_a_reference_reads_its_input():
    typed = compile_(RESIDUAL)
    nodes = typed.net.nodes
    assert "a/downsample" not in nodes and "b/downsample" in nodes and "c/downsample" in nodes
    assert typed.graph.inputs["a/add"] == ["a/conv1", "input"]
    assert typed.output_shapes()["main"] == (8, 4, 4)


def test_when_false_in_a_sequence_passes_the_input_on():
    typed = compile_("vars: {bn: false}\nbody:\n  - conv(4, 1)\n  - {body: bn, when: $bn}\n  - relu\n")
    assert list(typed.net.nodes) == ["input", "0", "2"] and typed.graph.inputs["2"] == ["0"]
    typed = compile_("vars: {bn: false}\nbody:\n  - conv(4, 1)\n  - {body: bn, when: $bn}\n  - relu\n", bn=True)
    assert list(typed.net.nodes) == ["input", "0", "1", "2"]


def test_an_absent_last_layer_leaves_the_output_to_the_one_before():
    typed = compile_("body:\n  a: conv(4, 1)\n  b: {from: a, body: relu, when: false}\n")
    assert typed.net.outputs["main"] == "a"


def test_when_must_be_a_boolean():
    (d,) = errors("vars: {n: 1}\nbody:\n  a: conv(4, 1)\n  b: {body: relu, when: $n + 1}\n")
    assert d.code == "wrong-type" and "`when:`" in d.message and str(d.loc) == "t.yaml:7:6" and d.found == "2"
    (d,) = errors("body:\n  a: conv(4, 1)\n  b: {body: relu, when: 1}\n")
    assert d.code == "wrong-type" and str(d.loc) == "t.yaml:6:25"


def test_in_reads_the_instance_input_shape():
    typed = compile_("blocks:\n  dw: {body: 'conv($in.c, 3, p=1, groups=$in.c)'}\n"
                     "body: ['conv(6, 1)', dw, 'conv(10, 1)', dw]\n")
    assert typed.net.nodes["1"].attrs.groups == 6 and typed.net.nodes["3"].attrs.groups == 10


def test_in_in_a_parameter_default_and_as_a_list():
    typed = compile_("blocks:\n  b:\n    params: ['c=$in.c * 2']\n    body: 'conv($c + $in[1], 1)'\n"
                     "body: ['conv(4, 1)', b]\n")
    assert typed.shape("1") == (16, 8, 8)


def test_in_of_a_forward_reference_is_a_located_error():
    diags = errors("blocks:\n  dw: {body: 'conv($in.c, 1)'}\nbody:\n  a: {from: b, body: dw}\n  b: conv(4, 1)\n")
    assert [d.code for d in diags] == ["unknown-shape"] and str(diags[0].loc) == "t.yaml:7:22"


def test_in_after_a_failed_shape_rule_reports_that_fault_once():
    diags = errors("blocks:\n  dw: {body: 'conv($in.c, 1)'}\n"
                   "body: ['maxpool(16)', dw, dw, relu]\n")
    assert [d.code for d in diags] == ["input-too-small", "unknown-shape"]  # the second dw reads the first: failed


def test_in_outside_a_block_is_an_unknown_variable():
    (d,) = errors("body: conv($in.c, 1)\n")
    assert d.code == "unknown-variable" and "inside a block" in (d.hint or "") and str(d.loc) == "t.yaml:4:12"
    (d,) = errors("body: conv($i + 1, 1)\n")
    assert d.code == "unknown-variable" and "repeat:" in (d.hint or "")


def test_callee_from_a_variable():
    text = ("vars: {act: relu, block: cbr}\nblocks:\n  cbr:\n    params: [c, act=relu]\n"
            "    body: ['conv($c, 1)', $act]\n  plain: {params: [c, act=relu], body: 'conv($c, 1)'}\n"
            "body: ['$block(4)', '$block(8, act=$act)', $act]\n")
    typed = compile_(text, act="hardswish")
    assert [n.op for n in typed.net.nodes.values()][1:] == ["conv", "relu", "conv", "hardswish", "hardswish"]
    typed = compile_(text, block="plain")
    assert [n.op for n in typed.net.nodes.values()][1:] == ["conv", "conv", "relu"]


def test_unknown_callee_names_the_variable():
    (d,) = errors("vars: {act: rleu}\nbody: ['conv(4, 1)', $act]\n")
    assert d.code == "unknown-op" and "(the value of $act)" in d.message
    assert (d.hint or "").startswith("did you mean 'relu'")
    assert str(d.loc) == "t.yaml:5:22"
    (d,) = errors("vars: {act: 3}\nbody: ['conv(4, 1)', $act]\n")
    assert d.code == "unknown-op" and d.found == "3"


def test_named_repeat_with_start_and_index():
    typed = compile_("body:\n  block: {repeat: 3, start: 1, names: 'layer{i}', body: 'conv(4, 3, p=1, s=2 if $i == 0 "
                     "else 1)'}\n  tail: {repeat: 2, start: 5, body: relu}\n")
    assert [n for n in typed.net.nodes][1:] == ["block/layer1", "block/layer2", "block/layer3", "tail/5", "tail/6"]
    assert typed.shape("block/layer3") == (4, 4, 4)


def test_names_pattern_with_expressions_and_dashes():
    typed = compile_("vars: {stage: 2}\nbody:\n  s: {repeat: 2, names: 'block{$stage}-{i}', body: relu}\n")
    assert list(typed.net.nodes)[1:] == ["s/block2-0", "s/block2-1"]


@pytest.mark.parametrize("text, code", [
    ("body: {repeat: 2, names: 'a{i}.b', body: relu}\n", "bad-name"),
    ("body: {repeat: 2, names: 'layer', body: relu}\n", "wrong-type"),
    ("body: {start: 1, body: relu}\n", "bad-construct"),
    ("body: {repeat: 2, start: -1, body: relu}\n", "wrong-type"),
    ("body:\n  - {name: '{$s}', body: relu}\nvars: {s: forward}\n", "reserved-name"),
    ("body:\n  - {name: 'a b', body: relu}\n", "bad-name"),
    ("body:\n  - {name: '-a', body: relu}\n", "bad-name"),
])
def test_name_pattern_faults(text, code):
    assert code in [d.code for d in errors(text)]


def test_splice_flattens_into_the_enclosing_list():
    text = ("blocks:\n  cr: {params: [c], body: ['conv($c, 3, p=1)', relu]}\n"
            "body:\n  features:\n    - {repeat: 2, splice: 'cr(4)'}\n    - maxpool(2, s=2)\n    - {splice: 'cr(8)'}\n"
            "    - {splice: [relu, {splice: [relu]}]}\n    - {splice: relu, when: false}\n"
            "    - {name: last, body: relu}\n")
    typed = compile_(text)
    assert list(typed.net.nodes)[1:] == [f"features/{i}" for i in range(9)] + ["features/last"]
    assert [typed.net.nodes[f"features/{i}"].op for i in range(9)] == \
        ["conv", "relu", "conv", "relu", "maxpool", "conv", "relu", "relu", "relu"]


def test_splice_in_a_block_reads_in_where_it_lands():
    typed = compile_("blocks:\n  dw: {body: ['conv($in.c, 3, p=1, groups=$in.c)', relu]}\n"
                     "body: ['conv(6, 1)', {splice: dw}, 'conv(2, 1)', {splice: dw}]\n")
    assert list(typed.net.nodes)[1:] == ["0", "1", "2", "3", "4", "5"]
    assert typed.net.nodes["1"].attrs.groups == 6 and typed.net.nodes["4"].attrs.groups == 2


@pytest.mark.parametrize("text", [
    "body:\n  a: {splice: [relu]}\n",
    "body: [{splice: {a: relu}}]\n",
    "blocks:\n  m: {body: {a: relu}}\nbody: [{splice: m}]\n",
    "body: {splice: [relu]}\n",
])
def test_splice_faults_are_located(text):
    diags = errors(text)
    assert [d.code for d in diags] == ["bad-construct"] and diags[0].loc is not None


def test_name_override_and_from_path_to_it():
    typed = compile_("body:\n  trunk:\n    - {name: block1-0, body: 'conv(4, 1)'}\n    - relu\n"
                     "  head: {from: trunk/block1-0, body: relu}\n  out: add(head, trunk)\n")
    assert list(typed.net.nodes)[1:] == ["trunk/block1-0", "trunk/1", "head", "out"]
    assert typed.graph.inputs["head"] == ["trunk/block1-0"]


def test_torch_registers_names_with_dashes():
    text = ("body:\n  trunk:\n    - {name: block1-0, body: 'conv(4, 3, p=1)'}\n    - {name: '2', body: relu}\n"
            "  heads: global_avgpool\n  flat: flatten\n  fc: linear(3)\n")
    model = archspec.build(archspec.loads(HEAD + text, "t.yaml"))
    import torch

    assert "trunk.block1-0.weight" in model.state_dict() and "heads" in dict(model.named_children())
    assert model(torch.randn(1, 3, 8, 8)).shape == (1, 3) and "block1-0" in model.code


def test_heads_is_a_node_name_and_reserved_names_are_refused():
    assert "heads" in compile_("body:\n  heads: relu\n").net.nodes
    diags = errors("body:\n  forward: relu\n")
    assert diags[0].code == "reserved-name" and "train_graph" in (diags[0].expected or "")


def test_a_merge_argument_may_quote_a_name_with_a_dash():
    typed = compile_("body:\n  trunk:\n    - {name: block1-0, body: 'conv(3, 1)'}\n  out: \"add('trunk', input)\"\n")
    assert typed.graph.inputs["out"] == ["trunk/block1-0", "input"]


def test_when_on_a_block_definition_makes_its_instances_optional():
    typed = compile_("blocks:\n  se: {params: [use], when: $use, body: 'conv($in.c, 1)'}\n"
                     "body:\n  a: conv(4, 1)\n  b: se(false)\n  c: se(true)\n  d: add(b, c)\n")
    assert "b" not in typed.net.nodes and typed.graph.inputs["c"] == ["a"] and typed.graph.inputs["d"] == ["a", "c"]


def test_splice_of_a_one_item_list_makes_each_copy_one_item():
    """EfficientNet's features.1 ... features.7: one stage (a block instance) per copy."""
    typed = compile_("blocks:\n  stage: {params: [c], body: {repeat: 2, body: 'conv($c, 1)'}}\n"
                     "body:\n  features:\n    - conv(4, 1)\n    - {repeat: 3, splice: ['stage(4 * ($i + 1))']}\n"
                     "    - conv(8, 1)\n")
    assert list(typed.net.nodes)[1:] == ["features/0", "features/1/0", "features/1/1", "features/2/0",
                                         "features/2/1", "features/3/0", "features/3/1", "features/4"]
    assert typed.shape("features/3/1") == (12, 8, 8)


def test_a_block_whose_body_is_a_splice_flattens_a_table_into_the_list():
    """MobileNetV2's features.1 ... features.N: rows of (c, n, s), each row n blocks, numbered on."""
    typed = compile_("vars:\n  cfg: [[4, 1, 1], [6, 2, 2], [8, 3, 1]]\nblocks:\n"
                     "  row:\n    params: [c, n, s]\n"
                     "    splice: {repeat: $n, body: ['conv($c, 3, p=1, s=$s if $i == 0 else 1)']}\n"
                     "body:\n  features:\n    - conv(2, 1)\n"
                     "    - {repeat: len($cfg), splice: 'row($cfg[$i][0], $cfg[$i][1], $cfg[$i][2])'}\n")
    assert list(typed.net.nodes)[1:] == [f"features/{i}" for i in range(7)]
    assert [typed.shape(f"features/{i}")[0] for i in range(7)] == [2, 4, 6, 6, 8, 8, 8]
    assert typed.shape("features/6") == (8, 4, 4)


def test_in_of_a_block_behind_a_permute_names_the_channels_last_axes() -> None:
    """`$in.c` reads the channels of an H×W×C input too (ConvNeXt's MLP runs channels-last)."""
    typed = archspec.compile(archspec.loads(
        "archspec: 1\nname: t\ninput: [8, 4, 4]\n"
        "blocks:\n  mlp:\n    body:\n      - linear($in.c * 2)\n      - linear($in.c)\n"
        'body:\n  - "permute([0, 2, 3, 1])"\n  - mlp\n  - "permute([0, 3, 1, 2])"\n'))
    assert tuple(typed.shape("1/0")) == (4, 4, 16) and tuple(typed.shape("1/1")) == (4, 4, 8)
    assert tuple(typed.shape("2")) == (8, 4, 4)
