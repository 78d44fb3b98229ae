"""The new ops inside real networks: pieces of torchvision's CNNs written as specs.

Each spec names its nodes as torchvision names its modules, so the reference's
state_dict loads with strict=True and the outputs must agree; each also goes
through the Python-source backend (`-o .py`) and ONNX Runtime.
"""

from __future__ import annotations

import textwrap
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch
from torch import nn

import archspec
from archspec.backends.python_source import emit_python

CONVNEXT = """
    archspec: 1
    name: convnext_part
    input: [3, 64, 64]
    blocks:
      cnblock:
        params: [dim, p=0.0]
        body:
          block:
            - conv($dim, 7, p=3, groups=$dim)
            - permute([0, 2, 3, 1])
            - layernorm(eps=1e-6)
            - linear(4 * $dim)
            - gelu
            - linear($dim)
            - permute([0, 3, 1, 2])
          layer_scale: layer_scale(1e-6)
          stochastic_depth: drop_path($p)
          residual: add(stochastic_depth, input)
    body:
      features:
        - - conv(96, 4, s=4)
          - layernorm(eps=1e-6)
        - repeat: 3
          body: cnblock(96, 0.1)
        - - layernorm(eps=1e-6)
          - conv(192, 2, s=2)
      avgpool: adaptive_avgpool(1)
      classifier:
        - layernorm(eps=1e-6)
        - flatten
        - linear(10)
"""

SHUFFLE_UNIT = """
    archspec: 1
    name: shuffle_unit
    input: [116, 14, 14]
    body:
      x1: chunk(2, 0)
      x2: {from: input, body: "chunk(2, 1)"}
      branch2:
        from: x2
        body:
          - conv(58, 1, bias=false)
          - bn
          - relu
          - conv(58, 3, p=1, groups=58, bias=false)
          - bn
          - conv(58, 1, bias=false)
          - bn
          - relu
      both: concat(x1, branch2)
      shuffle: channel_shuffle(2)
"""

SQUEEZE_EXCITATION = """
    archspec: 1
    name: se
    input: [96, 14, 14]
    body:
      avgpool: adaptive_avgpool(1)
      fc1: conv(24, 1)
      activation: relu
      fc2: conv(96, 1)
      scale_activation: hardsigmoid
      scaled: mul(scale_activation, input)
"""

MNASNET_HEAD = """
    archspec: 1
    name: mnasnet_head
    input: [320, 7, 7]
    body:
      layers:
        - conv(1280, 1, bias=false)
        - bn
        - relu
      pooled: mean
      classifier:
        - dropout(0.2)
        - linear(10)
      tail: slice(2, 8)
"""

SPECS = {"convnext": CONVNEXT, "shuffle_unit": SHUFFLE_UNIT, "se": SQUEEZE_EXCITATION, "mnasnet_head": MNASNET_HEAD}
SpecWriter = Callable[..., Path]


def _compile(write_spec: SpecWriter, name: str) -> archspec.TypedGraph:
    return archspec.compile(write_spec(textwrap.dedent(SPECS[name]), f"{name}.yaml"))


def _convnext_reference() -> nn.Module:
    """torchvision's convnext_tiny up to its second stage, and a classifier of its kind on 192 channels."""
    from torchvision.models import convnext_tiny
    from torchvision.models.convnext import LayerNorm2d

    tv = convnext_tiny()
    ref = nn.Module()
    ref.features = tv.features[:3]
    ref.avgpool = tv.avgpool
    ref.classifier = nn.Sequential(LayerNorm2d(192, eps=1e-6), nn.Flatten(1), nn.Linear(192, 10))
    for p in ref.parameters():  # layer scales of 1e-6 and unit norms would hide a mistake
        nn.init.normal_(p, 0.0, 0.5) if p.dim() < 2 else None
    ref.forward = lambda x: ref.classifier(ref.avgpool(ref.features(x)))  # type: ignore[method-assign]
    return ref


def _reference(name: str) -> nn.Module:
    if name == "convnext":
        return _convnext_reference()
    if name == "shuffle_unit":
        from torchvision.models.shufflenetv2 import InvertedResidual

        return InvertedResidual(116, 116, 1)
    from torchvision.ops import SqueezeExcitation

    return SqueezeExcitation(96, 24, scale_activation=nn.Hardsigmoid)


@pytest.mark.parametrize("name", ["convnext", "shuffle_unit", "se"])
def test_torchvisions_weights_load_and_the_outputs_agree(write_spec: SpecWriter, name: str) -> None:
    torch.manual_seed(0)
    ref = _reference(name).eval()
    for m in ref.modules():  # non-trivial batch-norm statistics
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 1.5)
    typed = _compile(write_spec, name)
    ours = archspec.build(typed).eval()
    assert list(ours.state_dict()) == list(ref.state_dict())
    ours.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(2, *typed.input_shape)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x), rtol=1e-5, atol=1e-5)
    assert typed.total("params") == sum(p.numel() for p in ref.parameters())


def test_layer_scale_key_is_torchvisions(write_spec: SpecWriter) -> None:
    """The parameter sits on the block module itself: `features.1.0.layer_scale`, shape (96, 1, 1)."""
    from torchvision.models import convnext_tiny

    ours = archspec.build(_compile(write_spec, "convnext")).state_dict()
    theirs = convnext_tiny().state_dict()
    for key in ("features.1.0.layer_scale", "features.1.2.layer_scale"):
        assert ours[key].shape == theirs[key].shape == (96, 1, 1)
    block = {k: v.shape for k, v in theirs.items() if k.startswith("features.1.0.")}
    assert {k: v.shape for k, v in ours.items() if k.startswith("features.1.0.")} == block


def test_a_conv_after_permute_to_channels_last_is_a_located_error(write_spec: SpecWriter) -> None:
    path = write_spec("""
        archspec: 1
        name: wrong_layout
        input: [8, 6, 6]
        body:
          last: permute([0, 2, 3, 1])
          conv: conv(8, 3)
    """)
    with pytest.raises(archspec.SpecError) as info:
        archspec.compile(path)
    (diag,) = info.value.diagnostics
    assert (diag.code, diag.path, diag.loc.line) == ("shape-mismatch", "conv", 6)
    assert diag.expected == "C×H×W" and diag.found == "6×6×8 (H×W×C)"
    assert "permute([0, 3, 1, 2])" in (diag.hint or "")


def _same_outputs(source: str, typed: archspec.TypedGraph) -> str:
    namespace: dict = {}
    exec(compile(source, typed.net.name, "exec"), namespace)
    cls = [line for line in source.splitlines() if line.startswith("class ")][-1][6:].split("(")[0]
    torch.manual_seed(0)
    model = archspec.build(typed)
    for name, p in model.named_parameters():
        if name.endswith("layer_scale"):
            nn.init.uniform_(p, 0.5, 1.5)
    ours = namespace[cls]()
    assert list(ours.state_dict()) == list(model.state_dict())
    ours.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(4, *typed.input_shape)
    with torch.no_grad():
        for mode in (False, True):  # training mode: dropout and drop_path draw the same masks
            torch.manual_seed(7)
            expected = model.train(mode)(x)
            torch.manual_seed(7)
            torch.testing.assert_close(ours.train(mode)(x), expected, rtol=0, atol=1e-5)
    return source


@pytest.mark.parametrize("name", sorted(SPECS))
def test_python_source_round_trips(write_spec: SpecWriter, name: str) -> None:
    typed = _compile(write_spec, name)
    source = _same_outputs(emit_python(typed), typed)
    assert max(len(line) for line in source.splitlines()) <= 120
    if name == "convnext":
        assert "class LayerNorm2d(nn.LayerNorm):" in source and "class Permute(nn.Module):" in source
        assert "self.layer_scale = nn.Parameter(torch.full((dim, 1, 1), 1e-06))" in source
        assert "Permute((0, 2, 3, 1))," in source and "nn.Linear(dim, 4 * dim)," in source
        assert "layer_scale = block * self.layer_scale" in source
    if name == "shuffle_unit":
        assert "def channel_shuffle(" in source and "x.chunk(2, 1)[0]" in source
    if name == "se":
        assert "nn.Hardsigmoid()" in source or "F.hardsigmoid(" in source
        assert " * x" in source
    if name == "mnasnet_head":
        assert ".mean([2, 3])" in source and "[:, 2:8]" in source


@pytest.mark.parametrize("name", sorted(SPECS))
def test_onnxruntime_gives_the_modules_outputs(write_spec: SpecWriter, name: str, tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from archspec.export import save

    typed = _compile(write_spec, name)
    torch.manual_seed(0)
    module = archspec.build(typed)
    target = tmp_path / f"{name}.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        save(module, typed, target)
    session = ort.InferenceSession(str(target), providers=["CPUExecutionProvider"])
    for batch in (2, 3):
        x = torch.randn(batch, *typed.input_shape)
        with torch.no_grad():
            expected = module.eval()(x).numpy()
        (got,) = session.run(None, {"x": x.numpy()})
        np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_deep_check_confirms_every_shape(write_spec: SpecWriter, name: str) -> None:
    """`check --deep`: torch's shapes equal the rules' (a channels-last shape compares as its axes)."""
    from archspec.deep import deep_check

    report = deep_check(_compile(write_spec, name))
    assert report.ok, [d.message for d in report.diagnostics]


def test_a_top_level_learned_tensor_survives_copy_pickle_optimize_and_source(write_spec: SpecWriter) -> None:
    """At the top level the tensor sits on the network module itself: key `layer_scale`."""
    import copy
    import pickle

    typed = archspec.compile(write_spec("""
        archspec: 1
        name: top
        input: [4, 5, 5]
        body:
          conv: conv(6, 3)
          layer_scale: layer_scale(0.5)
          pool: mean
    """))
    module = archspec.build(typed).eval()
    assert list(module.state_dict()) == ["layer_scale", "conv.weight", "conv.bias"]
    x = torch.randn(2, 4, 5, 5)
    with torch.no_grad():
        expected = module(x)
        for other in (copy.deepcopy(module), copy.copy(module), pickle.loads(pickle.dumps(module)),
                      archspec.optimize(module)):
            torch.testing.assert_close(other(x), expected, rtol=0, atol=1e-6)
    assert copy.copy(module).layer_scale is module.layer_scale
    assert copy.deepcopy(module).layer_scale is not module.layer_scale
    _same_outputs(emit_python(typed), typed)
