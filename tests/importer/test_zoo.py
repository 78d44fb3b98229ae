"""Every torchvision builder with a spec in specs/, and timm's Inception v4 and Inception-ResNet v2, round trip.

Small networks run on real tensors (strict load, equal outputs); the others are built on the meta device,
where the check is the spec's `expect:` and the state_dict's keys and shapes. Each imported spec is then the
hand-written `specs/NAME.yaml` as a graph (`graph_equal`: same ops, attributes, edges, outputs and weight
names), from the same import. Families the importer does not reach yet must be refused cleanly, with the
submodule named.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision

import archspec
from archspec.graph_equal import graph_equal

from .common import assert_zoo_graph, on_meta, round_trip, same_keys_on_meta

SPECS = Path(__file__).resolve().parents[2] / "specs"
TINY = {  # family: its class at 32×32, two stages (the second of two layers), and the family's block called as such
    "maxvit": (lambda: torchvision.models.maxvit.MaxVit(
        input_size=(32, 32), stem_channels=8, partition_size=2, block_channels=[16, 32], block_layers=[1, 2],
        head_dim=4, stochastic_depth_prob=0.2, num_classes=10),
        "maxvit(8, [16, 32], [1, 2], 4, 0.2, partition_size=2, num_classes=10)"),
}
SMALL = {"alexnet", "convnext_tiny", "densenet121", "efficientnet_b0", "mnasnet0_5", "mobilenet_v3_small",
         "regnet_x_400mf", "squeezenet1_1", "resnet18", "shufflenet_v2_x0_5", "vit_b_32",
         "swin_t", "swin_v2_t"}
SIZED = {"vit_b_32"}  # built for the small input (a ViT's position embedding is as long as its input's tokens)
RTOL = {"swin_t": 1e-4, "swin_v2_t": 1e-4}  # window_attention runs through SDPA: equal up to rounding, as tests/zoo
WRITTEN = {  # what the small member's spec must say: the ops its torchvision classes are read as
    "vit_b_32": ["self_attention: self_attention(12)", "to_tokens: to_tokens", "class_token: class_token",
                 "pos_embedding: pos_embedding", ": select_token", 'layers: {repeat: 12, names: "encoder_layer_{i}"'],
    "swin_t": ["attn: window_attention($heads, 7, shift=$shift)", "swin_transformer_block(3, 0.0, 384)",
               "patch_gather", '"permute([0, 2, 3, 1])"'],
    "swin_v2_t": ["attn: window_attention($heads, 8, shift=$shift, v2=true)", "patch_merging_v2(192)"],
}
GRAPH_APART: dict[str, str] = {}  # imported exactly, but not yet the hand-written graph: none
ON_CPU = ("regnet",)  # torchvision's RegNet cannot be built on the meta device
TOO_BIG = {"regnet_y_128gf"}  # built on the CPU first: 644 M parameters, 2.6 GB, too much for CI; its family runs


def _builders() -> list[str]:
    names = sorted(p.stem for p in SPECS.glob("*.yaml") if hasattr(torchvision.models, p.stem))
    return [n for n in names if n not in ("googlenet", "inception_v3", *TOO_BIG)]


def _build(name: str, **kwargs):
    return getattr(torchvision.models, name)(weights=None, **kwargs)


@pytest.mark.slow
@pytest.mark.parametrize("name", _builders())
def test_torchvision_builder_round_trips(name):
    torch.manual_seed(0)
    if name in SMALL:
        text = round_trip(_build(name, **({"image_size": 64} if name in SIZED else {})), (3, 64, 64), name,
                          rtol=RTOL.get(name, 0.0))
        for part in WRITTEN.get(name, []):
            assert part in text
    elif name.startswith(ON_CPU):
        text = same_keys_on_meta(_build(name).to("meta"), (3, 224, 224), name)
    else:
        text = same_keys_on_meta(on_meta(lambda: _build(name)), (3, 224, 224), name)
    if name not in GRAPH_APART:
        assert_zoo_graph(text, name)


@pytest.mark.slow
@pytest.mark.parametrize("family", sorted(TINY))
def test_small_members_of_a_family_round_trip_on_real_tensors(family):
    """The family's own class, small enough to run (the zoo's member is checked on meta only): equal outputs, and
    the imported spec is the family's hand-written block as a graph. MaxViT's attention runs on the windows or
    the grid torchvision partitions outside it; the spec's `partition_attention` partitions inside itself."""
    build, call = TINY[family]
    torch.manual_seed(0)
    text = round_trip(build().eval(), (3, 32, 32), family, rtol=1e-4)
    imported = archspec.compile(archspec.loads(text, file=f"{family}.imported.yaml"))
    hand = archspec.compile(archspec.loads(f"archspec: 1\nname: {family}\nimport: families/{family}.yaml\n"
                                           f"input: [3, 32, 32]\nbody: {call}\n", file=str(SPECS / "tiny.yaml")))
    verdict = graph_equal(imported, hand)
    assert verdict.equal, verdict.summary(shown=6)
    assert "mode=grid" in text and "permute([0, 2, 3, 1])" in text


@pytest.mark.slow
@pytest.mark.parametrize("name", ["inception_v4", "inception_resnet_v2"])
def test_timm_inception_networks_round_trip(name):
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    text = round_trip(timm.create_model(name, pretrained=False), (3, 160, 160), name)
    assert_zoo_graph(text, name)
    if name == "inception_resnet_v2":
        assert "block35:" in text and "{repeat: 10, splice: [block35]}" in text and "scale(0.17)" in text


@pytest.mark.slow
@pytest.mark.parametrize(("name", "written"), [
    ("efficientnet_b0", ["stochastic_depth: {when: $add, body: drop_path($p)}"]),
    ("convnext_tiny", ["layer_scale: layer_scale\n", "- permute([0, 2, 3, 1])\n        - layernorm(eps=1e-06)",
                       "- [\"conv(96, 4, s=4)\", layernorm(eps=1e-06)]"]),
    ("densenet121", ["cat: concat(input, conv2)", 'denseblock3: {repeat: 24, start: 1, names: "denselayer{i}", '
                     "body: dense_layer}"]),
])
def test_what_torchvision_writes_in_its_own_classes_is_read_as_the_language_writes_it(name, written):
    """StochasticDepth is drop_path, LayerNorm2d and a bare layer-scale parameter are ops, a list of all earlier
    outputs is a chain of concatenations (the round trip itself is test_torchvision_builder_round_trips)."""
    text = same_keys_on_meta(on_meta(lambda: _build(name)), (3, 224, 224), name)
    for part in written:
        assert part in text
