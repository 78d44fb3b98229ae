"""The op registry; importing this package registers every primitive op."""

from . import activation, channels, conv, dense, layer_scale, layout, merge, norm, patch_gather, pool, window_attention  # noqa: F401  (registration)
from .registry import (
    IDENTITY,
    REGISTRY,
    SOURCE_IDENTITY,
    Attrs,
    ChannelsLast,
    FunctionCall,
    Op,
    ParamCall,
    Shape,
    ShapeError,
    SourceArgs,
    SourceForm,
    get_op,
    register,
)

__all__ = ["IDENTITY", "REGISTRY", "SOURCE_IDENTITY", "Attrs", "ChannelsLast", "FunctionCall", "Op", "ParamCall",
           "Shape", "ShapeError", "SourceArgs", "SourceForm", "get_op", "register"]
