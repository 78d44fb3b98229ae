"""graph_equal: two specs are one graph when ops, attributes, edges, outputs and weight names agree."""

from __future__ import annotations

from pathlib import Path

import pytest

import archspec
from archspec.graph_equal import graph_equal

ROOT = Path(__file__).resolve().parent.parent
GOOGLENET = ROOT / "specs" / "googlenet.yaml"


def edited(*pairs: tuple[str, str]):
    """googlenet.yaml compiled with each `(old, new)` replaced once (each must be there)."""
    text = GOOGLENET.read_text()
    for old, new in pairs:
        assert old in text, old
        text = text.replace(old, new)
    return archspec.compile(archspec.loads(text, file="edited.yaml"))


@pytest.fixture(scope="module")
def googlenet():
    return archspec.compile(GOOGLENET)


def rewritten():
    """GoogLeNet in other words: another template name, other parameter names, other names for weightless
    layers, `adaptive_avgpool(1)` and `act(relu)`, which `global_avgpool` and `relu` are names for, and an
    `identity` that computes nothing."""
    return edited(("cbr", "basic_conv2d"), ("[c1, c3r, c3, c5r, c5, pool_proj]", "[a, b, c, d, e, f]"),
                  ("($c1,", "($a,"), ("($c3r,", "($b,"), ("($c3,", "($c,"), ("($c5r,", "($d,"), ("($c5,", "($e,"),
                  ("($pool_proj,", "($f,"), ("pool: adaptive_avgpool(4)", "squeeze: adaptive_avgpool(4)"),
                  ("  avgpool: global_avgpool\n", "  gap: adaptive_avgpool(1)\n"),
                  ("      flatten: flatten\n", "      flat: flatten\n"),
                  ("      relu: relu\n", "      relu: act(relu)\n"),
                  ("  dropout: dropout($dropout)\n", "  dropout: [identity, dropout($dropout)]\n"))


def test_a_spec_equals_itself_and_its_rewriting(googlenet):
    assert graph_equal(googlenet, googlenet).summary() == "graph: equal"
    verdict = graph_equal(googlenet, rewritten())
    assert verdict.equal and verdict.count == 0, verdict.summary()


def test_a_changed_kernel_is_named_where_it_starts_not_at_every_node_after_it(googlenet):
    verdict = graph_equal(googlenet, archspec.compile(GOOGLENET, k5=5))
    assert not verdict.equal and verdict.count == 9  # the nine 5×5 convs; the BN after each reads the same name
    assert verdict.differences[0] == "inception3a/branch3/1/conv: conv 3×3/1, 32 → conv 5×5/1, 32"
    assert verdict.summary().startswith("graph: differs at 9 nodes: inception3a/branch3/1/conv: ")
    assert verdict.summary().endswith("(+6 more)")


def test_a_renamed_weight_is_a_difference(googlenet):
    verdict = graph_equal(googlenet, edited(("  fc: linear($num_classes)", "  classifier: linear($num_classes)")))
    assert verdict.differences[:2] == ["fc (linear 1000) only in A", "classifier (linear 1000) only in B"]


def test_a_different_weightless_op_and_what_follows_it(googlenet):
    verdict = graph_equal(googlenet, edited(("  avgpool: global_avgpool\n", "  avgpool: adaptive_maxpool(1)\n")))
    assert verdict.differences == ["avgpool: global avgpool → adaptive maxpool → 1×1", "3 nodes after it"]
    assert verdict.nodes_a == verdict.nodes_b == {"avgpool", "flatten", "dropout", "fc"}


def test_concat_order_matters(googlenet):
    swapped = edited(("      branch1: cbr($c1, 1)\n", ""),
                     ("        - cbr($pool_proj, 1)\n", "        - cbr($pool_proj, 1)\n      branch1: cbr($c1, 1)\n"))
    verdict = graph_equal(googlenet, swapped)
    assert not verdict.equal
    assert verdict.differences[0].startswith("inception3a: reads inception3a/branch1/relu, ")
    assert verdict.differences[0].endswith("inception3a/branch4/1/relu, inception3a/branch1/relu")


def test_outputs_and_heads_count(googlenet):
    assert graph_equal(googlenet, archspec.compile(GOOGLENET, aux_logits=False)).differences[-2:] == [
        "output aux1 only in A", "output aux2 only in A"]
    always = edited(("    from: inception4a\n    when: $aux_logits\n    train_only: true",
                     "    from: inception4a\n    when: $aux_logits\n    train_only: false"))
    assert "output aux1: training only → always" in graph_equal(googlenet, always).differences


def test_the_input_channels_count_not_its_size(googlenet):
    assert graph_equal(googlenet, archspec.compile(GOOGLENET, input=[3, 96, 96])).equal
    gray = graph_equal(googlenet, archspec.compile(GOOGLENET, input=[1, 224, 224]))
    assert gray.differences[:2] == ["input channels 3 → 1", "conv1/conv: 9,408 → 3,136 params"]
