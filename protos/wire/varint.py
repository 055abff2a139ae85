"""Protobuf's base-128 varints, written by hand where the SDK and the server build wire bytes
themselves (reading them is the server's, bounded: server/request_views.py)."""

from __future__ import annotations

# The one-byte varints, prebuilt: most lengths and small numbers are one of these.
SMALL = [bytes((i,)) for i in range(128)]


def varint(n: int) -> bytes:
    """Protobuf base-128 varint (negative int64 as its 10-byte two's complement)."""
    if 0 <= n < 128:
        return SMALL[n]
    if n < 0:
        n += 1 << 64
    out = bytearray()
    while n >= 128:
        out.append((n & 127) | 128)
        n >>= 7
    out.append(n)
    return bytes(out)
