"""ONNX export: every zoo spec runs in onnxruntime with the module's outputs, at any batch size."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import INCEPTION_FAMILY, compile_small

import archspec
from archspec.backends.onnx import OPSET
from archspec.export import save

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

ROOT = Path(__file__).resolve().parents[2]
SPECS = ROOT / "specs"
TINY = ROOT / "tests" / "fixtures" / "tiny.yaml"
FAST = {"googlenet", "inception_v3"}  # CI runs these two; the rest are marked slow (a minute or more each on 2 cores)
NEW_FAMILIES = {"resnet18", "mobilenet_v3_small", "shufflenet_v2_x0_5", "efficientnet_b0", "convnext_tiny"}
"""One small member of the families whose ops differ most (residual adds, SE gates, chunk and channel shuffle,
layer norm and permutes); tests/ops checks every op's export on its own."""
ZOO = [pytest.param(p, id=p.stem, marks=() if p.stem in FAST else pytest.mark.slow)
       for p in sorted(SPECS.glob("*.yaml")) if p.stem in INCEPTION_FAMILY or p.stem in NEW_FAMILIES]


def _export(spec: Path, tmp_path: Path) -> tuple[archspec.ArchModule, Path]:
    torch.manual_seed(0)
    typed = compile_small(spec)  # every op, at a fraction of the cost
    module = archspec.build(typed)
    target = tmp_path / f"{spec.stem}.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the exporter must be quiet: a warning here fails the test
        save(module, typed, target)
    return module, target


def _outputs(module: torch.nn.Module, x: torch.Tensor) -> list[np.ndarray]:
    with torch.no_grad():
        out = module(x)
    values = [out] if isinstance(out, torch.Tensor) else list(out.values())
    return [v.numpy() for v in values]


@pytest.mark.parametrize("spec", ZOO)
def test_onnxruntime_gives_the_modules_outputs_at_any_batch(spec: Path, tmp_path: Path, capfd):
    module, target = _export(spec, tmp_path)
    assert capfd.readouterr().err == ""
    assert module.training, "export leaves the module in the mode it found it in"
    module.eval()
    session = ort.InferenceSession(str(target), providers=["CPUExecutionProvider"])
    (inp,) = session.get_inputs()
    assert inp.name == "x" and inp.shape == ["batch", *module.typed.input_shape]
    names = module.typed.net.output_names(training=False)
    assert [o.name for o in session.get_outputs()] == names
    assert all(o.shape[0] == "batch" for o in session.get_outputs())
    generator = torch.Generator().manual_seed(1)
    for batch in (2, 3):  # 2 as traced; 3 proves the batch dimension is not baked in
        x = torch.randn(batch, *module.typed.input_shape, generator=generator)
        got = session.run(None, {"x": x.numpy()})
        for ours, theirs in zip(_outputs(module, x), got, strict=True):
            assert theirs.shape == ours.shape and theirs.shape[0] == batch
            np.testing.assert_allclose(theirs, ours, atol=1e-4, rtol=0)
            assert np.abs(theirs - ours).max() <= 1e-4 * np.abs(ours).max()  # close relative to the scale, too


def test_opset_and_a_valid_model(tmp_path: Path):
    _, target = _export(TINY, tmp_path)
    model = onnx.load(str(target))
    onnx.checker.check_model(model)
    assert {o.domain: o.version for o in model.opset_import}[""] == OPSET


def test_training_only_heads_are_left_out(tmp_path: Path):
    _, target = _export(TINY, tmp_path)
    session = ort.InferenceSession(str(target), providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == ["main"]


def test_heads_kept_at_inference_are_named_outputs(tmp_path: Path):
    spec = tmp_path / "heads.yaml"
    spec.write_text(TINY.read_text().replace("train_only: true", "train_only: false"))
    module, target = _export(spec, tmp_path)
    module.eval()
    session = ort.InferenceSession(str(target), providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == ["main", "aux"]
    x = torch.randn(4, *module.typed.input_shape)
    for ours, theirs in zip(_outputs(module, x), session.run(None, {"x": x.numpy()}), strict=True):
        np.testing.assert_allclose(theirs, ours, atol=1e-5, rtol=0)


def test_weights_over_the_protobuf_limit_are_refused_and_nothing_is_written(tmp_path: Path, monkeypatch):
    from archspec.backends import onnx as backend
    from archspec.export import ExportError

    monkeypatch.setattr(backend, "MAX_BYTES", 10_000)  # tiny's weights are 11,448 bytes
    typed = archspec.compile(TINY)
    with pytest.raises(ExportError, match="one .onnx file holds at most 2 GB"):
        save(archspec.build(typed), typed, tmp_path / "tiny.onnx")
    assert list(tmp_path.iterdir()) == []
