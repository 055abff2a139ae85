"""The op declarations, one module per family; importing this package fills the op table."""

from . import (  # noqa: F401
    arithmetic,
    compare,
    creation,
    index_put,
    indexing,
    inplace,
    linalg,
    matmul_decomposition,
    nn,
    nn_activations,
    nn_conv,
    nn_losses,
    nn_pool_avg,
    nn_pool_max,
    pointwise,
    random_fill,
    reduction,
    shape_more,
    shape_ops,
    unary,
)
