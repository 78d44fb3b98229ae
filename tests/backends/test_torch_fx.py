"""The torch backend: exact parity with torchvision, modes, export, compile, copies, devices."""

from __future__ import annotations

import copy
import io
import warnings
from pathlib import Path

import pytest
import torch

import archspec
from archspec.backends.torch_fx import DeviceError, resolve_device

ROOT = Path(__file__).resolve().parents[2]
GOOGLENET = ROOT / "specs" / "googlenet.yaml"
TINY = ROOT / "tests" / "fixtures" / "tiny.yaml"


def _zero_dropout(*modules: torch.nn.Module) -> None:
    for module in modules:
        for m in module.modules():
            if isinstance(m, torch.nn.Dropout):
                m.p = 0.0


@pytest.fixture(scope="module")
def googlenet_pair():
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = torchvision.models.googlenet(weights=None, aux_logits=True, init_weights=True, transform_input=False)
    model = archspec.build(GOOGLENET)
    model.load_state_dict(ref.state_dict(), strict=True)
    return ref, model


def test_googlenet_state_dict_keys_and_shapes_equal_torchvision(googlenet_pair):
    ref, model = googlenet_pair
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in ref.state_dict().items()}
    assert ours == theirs


def test_googlenet_eval_output_equals_torchvision(googlenet_pair):
    ref, model = googlenet_pair
    ref.eval(), model.eval()
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected, got = ref(x), model(x)
    assert isinstance(got, torch.Tensor) and got.shape == (2, 1000)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


def test_googlenet_training_outputs_equal_torchvision_with_aux_heads(googlenet_pair):
    ref, model = googlenet_pair
    ref_copy, ours = copy.deepcopy(ref), copy.deepcopy(model)
    _zero_dropout(ref_copy, ours)
    ref_copy.train(), ours.train()
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(2))
    expected, got = ref_copy(x), ours(x)
    assert list(got) == ["main", "aux1", "aux2"]
    torch.testing.assert_close(got["main"], expected.logits, atol=1e-5, rtol=0)
    torch.testing.assert_close(got["aux1"], expected.aux_logits1, atol=1e-5, rtol=0)
    torch.testing.assert_close(got["aux2"], expected.aux_logits2, atol=1e-5, rtol=0)
    # batch norm running statistics moved the same way
    torch.testing.assert_close(ours.state_dict()["inception4a.branch1.bn.running_mean"],
                               ref_copy.state_dict()["inception4a.branch1.bn.running_mean"], atol=1e-6, rtol=0)


def test_googlenet_without_aux_heads_equals_torchvision_aux_logits_false():
    torchvision = pytest.importorskip("torchvision")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=True).eval()
    model = archspec.build(GOOGLENET, aux_logits=False).eval()
    model.load_state_dict(ref.state_dict(), strict=True)
    assert sum(p.numel() for p in model.parameters()) == 6_624_904
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(model(x), ref(x), atol=1e-5, rtol=0)
    assert isinstance(model.train()(x), torch.Tensor)  # no training-only heads left: a tensor in both modes


def test_googlenet_param_counts_equal_the_analysis(googlenet_pair):
    _, model = googlenet_pair
    typed = archspec.compile(GOOGLENET)
    assert sum(p.numel() for p in model.parameters()) == typed.total("params") == 13_004_888
    inference = sum(p.numel() for n, p in model.named_parameters() if not n.startswith("aux"))
    assert inference == typed.total("params", inference=True) == 6_624_904
    assert model.loss_weights == {"main": 1.0, "aux1": 0.3, "aux2": 0.3}


def test_googlenet_export_accepts_eval_module(googlenet_pair):
    _, model = googlenet_pair
    model.eval()
    x = torch.randn(1, 3, 224, 224)
    program = torch.export.export(model, (x,))
    with torch.no_grad():
        torch.testing.assert_close(program.module()(x), model(x), atol=1e-5, rtol=0)


def test_code_is_readable_and_graph_lints():
    model = archspec.build(TINY)
    model.graph.lint()
    model.train_graph.lint()
    code = model.code
    assert "self.stem.conv(x)" in code
    assert "torch.cat([" in code
    assert "aux" not in code  # training-only head absent from the inference graph
    assert "aux" in model.train_code
    node = next(n for n in model.graph.nodes if n.name == "mix")
    meta = node.meta["archspec"]
    assert meta["path"] == "mix" and meta["op"] == "concat" and meta["shape"] == (32, 16, 16)
    assert meta["loc"].endswith("tiny.yaml:27:8")


def test_modes_switch_outputs():
    model = archspec.build(TINY)
    x = torch.randn(2, 3, 32, 32)
    assert isinstance(model.eval()(x), torch.Tensor)
    out = model.train()(x)
    assert set(out) == {"main", "aux"} and out["aux"].shape == (2, 10)


def test_deepcopy_and_save_load_keep_both_graphs(tmp_path):
    model = archspec.build(TINY).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = model(x)
    clone = copy.deepcopy(model)
    assert clone.state_dict().keys() == model.state_dict().keys()
    assert all(a.data_ptr() != b.data_ptr() for a, b in zip(clone.parameters(), model.parameters(), strict=True))
    buffer = io.BytesIO()
    torch.save(model, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False)
    for m in (clone, loaded):
        assert not m.training
        with torch.no_grad():
            torch.testing.assert_close(m(x), expected)
        assert set(m.train()(x)) == {"main", "aux"}


def test_shallow_copy_shares_parameters_and_keeps_both_graphs():
    model = archspec.build(TINY)
    shallow = copy.copy(model)
    assert all(a is b for a, b in zip(shallow.parameters(), model.parameters(), strict=True))
    x = torch.randn(2, 3, 32, 32)
    assert set(shallow.train()(x)) == {"main", "aux"} and isinstance(shallow.eval()(x), torch.Tensor)


def test_torch_compile_small_spec():
    model = archspec.build(TINY).eval()
    x = torch.randn(2, 3, 32, 32)
    compiled = torch.compile(model)
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), model(x), atol=1e-5, rtol=1e-5)


def test_each_module_has_its_own_forward_code():
    # torch.compile caches per code object: a shared forward would make a second
    # compiled network recompile with dynamic shapes
    a, b = archspec.build(TINY), archspec.build(TINY)
    assert type(a).forward.__code__ is not type(b).forward.__code__


def test_meta_device_allocates_nothing():
    model = archspec.build(GOOGLENET, device="meta")
    assert all(p.is_meta for p in model.parameters())
    out = model.eval()(torch.empty(4, 3, 224, 224, device="meta"))
    assert out.shape == (4, 1000)


def test_missing_cuda_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(DeviceError, match="CUDA is not available"):
        resolve_device("cuda")
    with pytest.raises(DeviceError, match="not a device name"):
        resolve_device("gpu7")


def test_overrides_reach_the_module():
    model = archspec.build(TINY, classes=3, input=[3, 64, 64])
    assert model.eval()(torch.randn(1, 3, 64, 64)).shape == (1, 3)
