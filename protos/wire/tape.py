"""The lean form of ops, Command.tape: records of fixed-width fields (see command.proto).

The SDK writes records with these structs and the server reads them with the same ones, so the
layout is written once. A record: op code u16, flags u8, nargs u8, nouts u8, one kind byte per
argument, each argument's payload (its kind's size), one u32 slot per result.
"""

from __future__ import annotations

import struct

HEAD = struct.Struct("<HBBB")  # op code, flags, nargs, nouts
HEAD_SIZE = HEAD.size
NO_GRAD = 1  # flags bit 0
FLAGS = NO_GRAD  # every flag bit defined

# Argument kinds and their payloads' struct codes (little-endian, no padding).
SLOT, FLOAT, INT, BOOL, NONE, DTYPE = range(6)
PAYLOAD = {SLOT: "I", FLOAT: "d", INT: "q", BOOL: "B", NONE: "B", DTYPE: "B"}
KIND_NAMES = {SLOT: "slot", FLOAT: "float", INT: "int", BOOL: "bool", NONE: "None", DTYPE: "dtype"}
OUT = "I"  # a result's slot

MAX_SLOT = (1 << 32) - 1  # a u32
INT_MIN, INT_MAX = -(1 << 63), (1 << 63) - 1

slot_bytes = struct.Struct("<I").pack
float_bytes = struct.Struct("<d").pack
int_bytes = struct.Struct("<q").pack
code_bytes = struct.Struct("<H").pack


def slot_handle(slot: int) -> str:
    """The handle that names a slot in every other command: "#<slot>"."""
    return f"#{slot}"


def record(
    code: int, args: list[tuple[int, object]], outs: list[int], no_grad: bool = False
) -> bytes:
    """One record from (kind, value) arguments (a slot number, a float, ...): the readable
    builder for tests and tools; the SDK's hot path writes the same bytes inline."""
    head = HEAD.pack(code, NO_GRAD if no_grad else 0, len(args), len(outs))
    kinds = bytes(k for k, _ in args)
    fmt = "<" + "".join(PAYLOAD[k] for k, _ in args) + OUT * len(outs)
    values = [_payload(k, v) for k, v in args]
    return head + kinds + struct.pack(fmt, *values, *outs)


def _payload(kind: int, v: object) -> object:
    if kind == BOOL:
        return 1 if v else 0
    if kind == NONE:
        return 0
    return v
