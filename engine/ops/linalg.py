"""Products and matrix reductions: einsum, outer, bmm, baddbmm, dot, mv, trace, diag."""

from __future__ import annotations
