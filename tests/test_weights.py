"""Weights files: safetensors out, safetensors or torch.save state_dicts in, strictly, mismatches located."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch

import archspec
from archspec.export import save
from archspec.weights import WeightsConverted, load_weights, read_weights, save_weights

ROOT = Path(__file__).resolve().parent.parent
GOOGLENET = ROOT / "specs" / "googlenet.yaml"
TINY = ROOT / "tests" / "fixtures" / "tiny.yaml"


def _equal_states(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


@pytest.fixture(scope="module")
def googlenet() -> archspec.ArchModule:
    torch.manual_seed(0)
    module = archspec.build(GOOGLENET)
    module.train()(torch.randn(4, 3, 224, 224))  # moves the BatchNorm running statistics off their initial values
    return module


def test_round_trip_pt_to_safetensors_to_build(googlenet, tmp_path: Path):
    pt, st = tmp_path / "googlenet.pt", tmp_path / "googlenet.safetensors"
    torch.save(googlenet.state_dict(), pt)
    from_pt = archspec.build(GOOGLENET, weights=pt)
    save(from_pt, from_pt.typed, st)
    from_st = archspec.build(GOOGLENET, weights=st)
    _equal_states(googlenet, from_pt)
    _equal_states(googlenet, from_st)
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(from_st.eval()(x), googlenet.eval()(x), atol=0, rtol=0)


def test_torchvision_state_dict_loads_and_gives_its_outputs(tmp_path: Path):
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = torchvision.models.googlenet(weights=None, aux_logits=True, init_weights=True, transform_input=False)
    path = tmp_path / "torchvision_googlenet.pth"
    torch.save(ref.state_dict(), path)
    model = archspec.build(GOOGLENET, weights=path).eval()
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(model(x), ref.eval()(x), atol=1e-5, rtol=0)


def test_other_num_classes_is_a_located_mismatch(googlenet, tmp_path: Path):
    path = tmp_path / "g.safetensors"
    save_weights(googlenet, path)
    with pytest.raises(archspec.SpecError) as info:
        archspec.build(GOOGLENET, weights=path, num_classes=10)
    diags = info.value.diagnostics
    assert {d.code for d in diags} == {"weights-mismatch"}
    fc = next(d for d in diags if d.path == "fc")
    assert (fc.loc.line, fc.loc.col) == (81, 7)
    assert fc.expected == "weight 10×1024, bias 10" and fc.found == "weight 1000×1024, bias 1000"
    assert {d.path for d in diags if d.path} == {"fc", "aux1/fc2", "aux2/fc2"}
    assert diags[-1].message.endswith("does not fit googlenet: 0 missing, 0 unexpected, 6 of another shape")
    text = info.value.render()
    assert "81 |   fc: linear($num_classes)" in text


def test_missing_and_unexpected_keys_are_named_at_their_nodes_and_scopes(tmp_path: Path):
    module = archspec.build(TINY)
    state = module.state_dict()
    del state["mix.mid.1.conv.weight"]
    state["mix.extra.weight"] = torch.zeros(3)
    state["stray"] = torch.zeros(1)
    path = tmp_path / "w.pt"
    torch.save(state, path)
    fresh = archspec.build(TINY)
    with pytest.raises(archspec.SpecError) as info:
        load_weights(fresh, fresh.typed, path)
    by_path = {d.path: d for d in info.value.diagnostics}
    missing = by_path["mix/mid/1/conv"]
    assert "has no weight for this conv" in missing.message and missing.expected == "weight 16×8×3×3"
    assert missing.loc is not None and missing.loc.line == 27  # `mix: mixed(8, 8, 16)`, the call that made it
    under_mix = by_path["mix"]
    assert "1 tensor with no place under 'mix'" in under_mix.message and under_mix.found == "mix.extra.weight"
    stray = next(d for d in info.value.diagnostics if d.found == "stray")
    assert "1 tensor with no place in this network" in stray.message
    assert stray.loc is not None and (stray.loc.file, stray.loc.line) == (str(TINY), 25)  # the spec's `body:`
    assert info.value.diagnostics[-1].message.endswith("1 missing, 2 unexpected, 0 of another shape")


def test_a_failed_load_leaves_the_module_as_it_was(tmp_path: Path):
    torch.manual_seed(0)
    module = archspec.build(TINY)
    before = {k: v.clone() for k, v in module.state_dict().items()}
    other = archspec.build(TINY, classes=3)
    path = tmp_path / "w.safetensors"
    save_weights(other, path)
    with pytest.raises(archspec.SpecError):
        load_weights(module, module.typed, path)
    assert all(torch.equal(before[k], v) for k, v in module.state_dict().items())


@pytest.mark.parametrize("content, reason", [
    (b"", "the file is empty"),
    (b"\x00" * 64, "is not a file written by torch.save"),
    (b"archspec: 1\n", "is not a file written by torch.save"),
])
def test_unreadable_files_are_located_at_the_file(tmp_path: Path, content: bytes, reason: str):
    path = tmp_path / "w.pt"
    path.write_bytes(content)
    with pytest.raises(archspec.SpecError) as info:
        read_weights(path)
    (diag,) = info.value.diagnostics
    assert diag.code == "weights-unreadable" and reason in diag.message
    assert diag.loc is not None and diag.loc.file == str(path)


def test_a_damaged_safetensors_file(tmp_path: Path):
    path = tmp_path / "w.safetensors"
    save_weights(archspec.build(TINY), path)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(archspec.SpecError) as info:
        read_weights(path)
    assert info.value.diagnostics[0].code == "weights-unreadable"


def test_a_pickled_module_is_refused_without_running_it(tmp_path: Path):
    path = tmp_path / "model.pt"
    torch.save(archspec.build(TINY), path)
    with pytest.raises(archspec.SpecError) as info:
        read_weights(path)
    diag = info.value.diagnostics[0]
    assert "archspec.backends.torch_fx._rebuild" in diag.message and "-o weights.safetensors" in diag.hint


def test_a_checkpoint_dict_gets_a_hint(tmp_path: Path):
    path = tmp_path / "ckpt.pt"
    torch.save({"epoch": 3, "state_dict": archspec.build(TINY).state_dict()}, path)
    with pytest.raises(archspec.SpecError) as info:
        read_weights(path)
    assert "save its 'state_dict' entry alone" in info.value.diagnostics[0].hint


def test_shared_and_non_contiguous_tensors_are_saved(tmp_path: Path):
    from safetensors.torch import load_file

    module = torch.nn.Module()
    module.a = torch.nn.Linear(4, 3)
    module.b = torch.nn.Linear(4, 3)
    module.b.weight = module.a.weight  # one tensor under two keys
    module.register_buffer("t", torch.arange(12.0).reshape(3, 4).t())  # a transposed view
    module.register_buffer("part", torch.arange(10.0)[2:5])  # uses part of its storage
    path = tmp_path / "w.safetensors"
    save_weights(module, path)
    loaded = load_file(str(path))
    for key, value in module.state_dict().items():
        assert torch.equal(loaded[key], value), key


def test_keys_outside_every_block_are_located_at_the_body_with_a_suggestion(tmp_path: Path):
    module = archspec.build(TINY)
    state = module.state_dict()
    state["fc1.weight"] = state.pop("fc.weight")
    path = tmp_path / "w.pt"
    torch.save(state, path)
    with pytest.raises(archspec.SpecError) as info:
        load_weights(module, module.typed, path)
    extra = next(d for d in info.value.diagnostics if d.found == "fc1.weight")
    assert extra.loc is not None and (extra.loc.file, extra.loc.line) == (str(TINY), 25)
    assert extra.hint is not None and "did you mean 'fc.weight' for 'fc1.weight'?" in extra.hint
    assert f"{TINY}:25:1: error[weights-mismatch]" in info.value.render()


@pytest.mark.parametrize("dtype", [torch.bool, torch.int64, torch.int32, torch.complex64, torch.float8_e4m3fn,
                                   torch.float64])
def test_weights_of_another_dtype_are_refused_at_their_nodes(tmp_path: Path, dtype: torch.dtype):
    torch.manual_seed(0)
    module = archspec.build(TINY)
    before = {k: v.clone() for k, v in module.state_dict().items()}
    state = {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in module.state_dict().items()}
    path = tmp_path / "w.safetensors"
    from safetensors.torch import save_file

    save_file(state, str(path))
    with pytest.raises(archspec.SpecError) as info:
        load_weights(module, module.typed, path)
    fc = next(d for d in info.value.diagnostics if d.path == "fc")
    name = str(dtype).removeprefix("torch.")
    assert fc.code == "weights-mismatch" and "weight and bias in" in fc.message and "another dtype" in fc.message
    assert fc.expected == "weight float32, bias float32" and fc.found == f"weight {name}, bias {name}"
    assert fc.loc is not None and fc.loc.line == 30
    assert "of another dtype" in info.value.diagnostics[-1].message
    assert all(torch.equal(before[k], v) for k, v in module.state_dict().items())


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_weights_are_converted_losslessly_and_said_so(tmp_path: Path, dtype: torch.dtype):
    torch.manual_seed(0)
    source = archspec.build(TINY)
    state = {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in source.state_dict().items()}
    path = tmp_path / "w.pt"
    torch.save(state, path)
    module = archspec.build(TINY)
    count = sum(v.is_floating_point() for v in state.values())
    with pytest.warns(WeightsConverted, match=f"converted {count} {str(dtype)[6:]} tensors to float32 \\(lossless\\)"):
        load_weights(module, module.typed, path)
    loaded = module.state_dict()
    assert all(loaded[k].dtype == source.state_dict()[k].dtype for k in loaded)
    assert all(torch.equal(loaded[k], state[k].to(loaded[k].dtype)) for k in loaded)


def test_missing_files_and_fifos_are_refused_without_opening_them(tmp_path: Path):
    import os

    fifo = tmp_path / "w.safetensors"
    os.mkfifo(fifo)
    with pytest.raises(archspec.SpecError) as info:
        read_weights(fifo)  # opening a FIFO with no writer would block forever
    (diag,) = info.value.diagnostics
    assert diag.code == "weights-unreadable" and "a FIFO (named pipe), not a regular file" in diag.message
    with pytest.raises(archspec.SpecError) as info:
        read_weights(tmp_path / "missing.pt")
    (diag,) = info.value.diagnostics
    assert "no such file" in diag.message and diag.loc is not None and diag.loc.file == str(tmp_path / "missing.pt")
    assert diag.hint is not None and ".safetensors" in diag.hint


def test_the_same_seed_builds_the_same_weights():
    a, b = archspec.build(TINY, seed=5), archspec.build(TINY, seed=5)
    _equal_states(a, b)
    other = archspec.build(TINY, seed=6).state_dict()
    assert not torch.equal(other["fc.weight"], a.state_dict()["fc.weight"])


@pytest.mark.parametrize("suffix", [".safetensors", ".pt", ".pt2"])
def test_a_full_disk_while_saving_is_an_os_error_at_the_target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              suffix: str):
    """Each writer's report of a failed write (a Rust error's text, a C++ RuntimeError) becomes the OSError."""
    import errno
    import io

    import safetensors.torch

    import archspec.files

    def full_safetensors(*args: object, **kwargs: object) -> None:
        raise safetensors.SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

    class Full(io.BufferedWriter):
        def write(self, data: object) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(safetensors.torch, "save_file", full_safetensors)
    monkeypatch.setattr(archspec.files, "open", lambda path, mode: Full(io.FileIO(path, "w")), raising=False)
    module = archspec.build(TINY)
    target = tmp_path / f"model{suffix}"
    target.write_text("old")
    with pytest.raises(OSError) as info:
        save(module, module.typed, target)
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(target)
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == [target.name]
