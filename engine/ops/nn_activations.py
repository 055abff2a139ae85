"""Activation functions of ``torch.nn.functional`` (softplus, gelu, silu, elu...)."""

from __future__ import annotations
