"""The op registry; importing this package registers every primitive op."""

from . import activation, conv, dense, merge, norm, pool  # noqa: F401  (registration)
from .registry import IDENTITY, REGISTRY, Attrs, FunctionCall, Op, Shape, ShapeError, get_op

__all__ = ["IDENTITY", "REGISTRY", "Attrs", "FunctionCall", "Op", "Shape", "ShapeError", "get_op"]
