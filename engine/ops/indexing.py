"""Gathering and scattering: gather, scatter, index_select, masked ops, take_along_dim."""

from __future__ import annotations
