"""Import, check, build, strict load, equal outputs: torchvision's networks and one written here."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision

import archspec
from archspec.diff import diff_table

from . import nets
from .common import assert_zoo_graph, code_lines, imported, on_meta, round_trip, same_keys_on_meta
from .nets import TinyNet


def test_a_hand_written_forward_round_trips_with_its_block_recovered():
    torch.manual_seed(0)
    net = TinyNet()
    for m in net.modules():  # running statistics that are not the defaults, so that BN matters
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
    text = round_trip(net, (3, 32, 32), "tiny")
    assert "  branchy:\n" in text and "  conv_bn:\n" in text
    assert "block1: branchy(8, 16)" in text and "block2: branchy(12, 4)" in text
    assert "left: {from: input" not in text  # the first branch reads the block's input anyway
    assert "add(input, proj)" in text


def test_a_transformer_that_reads_shapes_round_trips_its_ops_recovered():
    """`n, c, h, w = x.shape` and asserts on shapes are constants of the trace; the attention module is
    self_attention, the reshape and permute to_tokens, the expanded class token class_token, x[:, 0]
    select_token."""
    torch.manual_seed(0)
    text = round_trip(nets.TinyViT(), (3, 16, 16), "tiny_vit")
    for part in ["self_attention(3)", "to_tokens: to_tokens", "cls: class_token", "pos: pos_embedding",
                 ": select_token", "blocks: [{repeat: 2, splice: [encoder]}]"]:
        assert part in text


def test_a_transformer_imported_at_another_image_size_is_refused_by_its_shape_check():
    with pytest.raises(Exception) as info:
        archspec.import_module(nets.TinyViT(), (3, 32, 32))
    assert info.value.code == "import-shape" and "wrong image size" in info.value.message


@pytest.mark.slow
def test_googlenet_is_one_inception_template_called_nine_times():
    torch.manual_seed(0)
    net = torchvision.models.googlenet(weights=None, init_weights=False)
    text = round_trip(net, (3, 96, 96), "googlenet", train=True)
    assert "  inception:\n" in text
    assert "    params: [branch1, branch2_0, branch2_1, branch3_0, branch3_1, branch4_1]\n" in text
    assert text.count(": inception(") == 9
    assert "inception3a: inception(64, 96, 128, 16, 32, 32)" in text
    assert "aux1: {from: inception4a, train_only: true, body: inception_aux}" in text
    assert "avgpool: global_avgpool" in text  # AdaptiveAvgPool2d((1, 1)), written as the zoo writes it
    assert_zoo_graph(text, "googlenet")
    spec = Path(__file__).resolve().parents[2] / "specs" / "googlenet.yaml"
    diff = diff_table(archspec.compile(archspec.loads(text), input=[3, 224, 224]), archspec.compile(spec))
    assert diff.rows == [] and diff.meta["changed"] == 0 and "graph: equal" in diff.notes  # `archspec diff`: none
    hand_written = spec.read_text()
    assert code_lines(text) <= 1.5 * code_lines(hand_written)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2"])
def test_small_torchvision_networks_round_trip(name):
    torch.manual_seed(0)
    round_trip(getattr(torchvision.models, name)(weights=None), (3, 64, 64), name)


@pytest.mark.slow
def test_inception_v3_round_trips_with_its_aux_head():
    torch.manual_seed(0)
    net = torchvision.models.inception_v3(weights=None, init_weights=False)
    text = round_trip(net, (3, 299, 299), "inception_v3", train=True)
    assert "Mixed_5b: inception_a(32)" in text and "Mixed_6e: inception_c(192)" in text
    assert_zoo_graph(text, "inception_v3")


@pytest.mark.slow
def test_resnet50_on_the_meta_device_has_the_reference_keys_and_shapes():
    text = same_keys_on_meta(on_meta(lambda: torchvision.models.resnet50(weights=None)), (3, 224, 224), "resnet50")
    assert "params: 25557032" in text


@pytest.mark.slow
def test_blocks_that_lack_a_layer_share_the_template_with_a_flag():
    torch.manual_seed(0)
    text = round_trip(torchvision.models.resnet18(weights=None), (3, 64, 64), "resnet18")
    assert "basic_block_2" not in text
    assert "downsample: {when: $downsample, from: input" in text
    assert 'layer2: ["basic_block(128, s=2, downsample=true)", basic_block(128)]' in text


def test_expect_holds_the_parameter_count_and_output():
    text, graph = imported(TinyNet(num_classes=7), (3, 32, 32), "tiny")
    assert f"params: {sum(p.numel() for p in TinyNet(num_classes=7).parameters())}" in text
    assert "output: [7]" in text


def test_stochastic_depth_per_sample_is_drop_path_and_equal_in_training_mode():
    torch.manual_seed(0)
    net = nets.Residual("row")
    text = round_trip(net, (8, 8, 8))
    assert "drop_path(0.25)" in text
    built = archspec.build(archspec.loads(text))
    built.load_state_dict(net.state_dict(), strict=True)
    x = torch.randn(4, 8, 8, 8)
    net.train()
    built.train()
    torch.manual_seed(1)
    want = net(x)
    torch.manual_seed(1)
    torch.testing.assert_close(built(x), want, rtol=0, atol=0)


def test_a_parameter_multiplied_in_a_forward_is_a_layer_scale_under_its_own_key():
    torch.manual_seed(0)
    net = nets.Scaled()
    text = round_trip(net, (8, 8, 8))
    assert "gamma: layer_scale(init=0.5)" in text
    with torch.no_grad():
        net.gamma.uniform_()  # weights that are not the initial value still load and give the same outputs
    round_trip(net, (8, 8, 8))


def test_layers_that_read_all_earlier_outputs_become_a_chain_of_concatenations():
    torch.manual_seed(0)
    net = nets.Dense()
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
    text = round_trip(net, (3, 8, 8))
    assert text.count("concat(input, conv)") == 1  # once, in the one template of the three layers
    assert "dense_layer" in text and "output: [20, 8, 8]" in text
