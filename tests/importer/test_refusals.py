"""What cannot be imported is refused with the submodule's path, the file and line, and what is missing."""

from __future__ import annotations

from pathlib import Path

import pytest

from archspec.importer import Refused, import_module

from . import nets

NETS = Path(nets.__file__)


def _line(marker: str) -> int:
    return next(k for k, line in enumerate(NETS.read_text().splitlines(), 1) if marker in line)


def test_a_forward_that_branches_on_a_tensor_value_is_refused_at_its_line():
    with pytest.raises(Refused) as info:
        import_module(nets.DataDependent(), (3, 16, 16))
    exc = info.value
    assert exc.code == "import-untraceable" and exc.path == "gate"
    assert exc.where == f"{NETS}:{_line('GATE-LINE')}"
    assert "control flow" in exc.message


def test_a_module_no_op_computes_is_refused_naming_it():
    with pytest.raises(Refused) as info:
        import_module(nets.WithUnknownOp(), (3, 16, 16))
    exc = info.value
    assert exc.code == "import-unsupported" and exc.path == "up.shuffle"
    assert exc.where == f"{NETS}:{_line('SHUFFLE-LINE')}"
    assert "pixel_shuffle" in exc.message
    assert str(exc).startswith(f"{NETS}:{_line('SHUFFLE-LINE')}: error[import-unsupported] up.shuffle: ")


def test_an_input_the_module_cannot_take_is_refused_with_a_hint():
    with pytest.raises(Refused) as info:
        import_module(nets.TinyNet(), (5, 32, 32))
    assert info.value.code == "import-shape" and "--input" in (info.value.hint or "")


def test_weights_the_forward_never_reads_are_refused_by_name():
    with pytest.raises(Refused) as info:
        import_module(nets.WithUnusedWeights(), (3, 16, 16))
    assert info.value.path == "spare" and "spare.weight" in info.value.message


def test_stochastic_depth_over_the_whole_batch_is_refused_as_no_drop_path():
    with pytest.raises(Refused) as info:
        import_module(nets.Residual("batch"), (8, 8, 8))
    exc = info.value
    assert exc.code == "import-unsupported" and exc.path == "drop"
    assert "mode=batch" in exc.message and "drop_path(p=0.25)" in exc.message
    assert "other outputs in training mode" in exc.message


def test_a_parameter_no_op_owns_is_refused_with_its_shape():
    with pytest.raises(Refused) as info:
        import_module(nets.Scaled((8,)), (8, 8, 8))
    exc = info.value
    assert exc.code == "import-unsupported" and exc.path == ""
    assert exc.where == f"{NETS}:{_line('GAMMA-LINE')}"
    assert "gamma of shape (8,)" in exc.message


def test_a_forward_that_reads_a_tensor_value_as_a_number_is_refused_at_its_line():
    with pytest.raises(Refused) as info:
        import_module(nets.ReadsAValue(), (3, 16, 16))
    exc = info.value
    assert exc.code == "import-untraceable" and exc.where == f"{NETS}:{_line('ITEM-LINE')}"
    assert "item" in exc.message
