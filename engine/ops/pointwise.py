"""Elementwise math beyond the basics: trigonometric and hyperbolic functions, rounding,
error functions, two-tensor pointwise ops (maximum, atan2, lerp...) and tests (isnan...)."""

from __future__ import annotations
