"""The op declarations, one module per family; importing this package fills the op table."""

from . import (  # noqa: F401
    arithmetic,
    compare,
    creation,
    indexing,
    inplace,
    linalg,
    nn,
    nn_activations,
    nn_attention,
    nn_cross_entropy,
    nn_embedding,
    nn_losses,
    nn_norms,
    nn_padding,
    pointwise,
    reduction,
    shape_more,
    shape_ops,
    unary,
)
