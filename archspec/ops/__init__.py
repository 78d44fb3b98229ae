"""The op registry; importing this package registers every primitive op."""

from . import (  # noqa: F401  (registration)
    activation,
    attention,
    channels,
    class_token,
    conv,
    dense,
    layer_scale,
    layout,
    merge,
    norm,
    partition_attention,
    patch_gather,
    pool,
    pos_embedding,
    to_tokens,
    token_pool,
    window_attention,
)
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
    Tokens,
    get_op,
    register,
)

__all__ = ["IDENTITY", "REGISTRY", "SOURCE_IDENTITY", "Attrs", "ChannelsLast", "FunctionCall", "Op", "ParamCall",
           "Shape", "ShapeError", "SourceArgs", "SourceForm", "Tokens", "get_op", "register"]
