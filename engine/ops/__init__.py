"""The op declarations, one module per family; importing this package fills the op table."""

from . import arithmetic, compare, inplace, nn, reduction, shape_ops, unary  # noqa: F401
