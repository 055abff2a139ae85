"""Pointwise ops' dtype rules run on the client: a remote session knows the result dtype, and
raises PyTorch's kernel errors at the line that broke them (before anything is sent), as an
embedded one does."""

from __future__ import annotations

import gradd
import pytest

REFUSED = [
    (
        lambda s: s.tensor([1, 2]).hypot(s.tensor([3, 4])),
        "\"hypot_cpu\" not implemented for 'Long'",
    ),
    (lambda s: s.tensor([True]).floor(), "\"floor_vml_cpu\" not implemented for 'Bool'"),
    (lambda s: s.tensor([1, 2]).round(decimals=1), "\"round_cpu\" not implemented for 'Long'"),
    (lambda s: s.tensor([1, 2]).frac(), "\"frac_cpu\" not implemented for 'Long'"),
    (lambda s: s.tensor([True]).fmod(True), "\"fmod_cpu\" not implemented for 'Bool'"),
    (lambda s: s.tensor([True]).clamp_min(True), '"clamp_min_scalar_cpu" not implemented'),
    (
        lambda s: s.tensor([1.0]).lerp(s.tensor([1.0], dtype=gradd.float64), 0.5),
        "expected dtype float for `end` but got dtype double",
    ),
    (lambda s: s.tensor([1]).lerp(s.tensor([2]), 0.5), '"lerp_kernel_scalar" not implemented'),
]


@pytest.mark.parametrize("i", range(len(REFUSED)))
def test_kernel_dtype_errors_at_the_call(session: gradd.Session, i: int) -> None:
    call, message = REFUSED[i]
    with pytest.raises(NotImplementedError if "not implemented" in message else RuntimeError) as e:
        call(session)
    assert message in str(e.value)
    assert (session.ones(2) + 1).sum().item() == 4.0  # the session goes on


def test_result_dtypes_known_without_asking(session: gradd.Session) -> None:
    i, f = session.tensor([1, -2]), session.tensor([0.5, 1.5])
    w = session.tensor(0.25, dtype=gradd.float64)
    assert i.sin().dtype is gradd.float32 and i.floor().dtype is gradd.int64
    assert i.fmod(2).dtype is gradd.int64 and i.fmod(2.5).dtype is gradd.float32
    assert i.hypot(f).dtype is gradd.float32 and i.clamp_min(1.5).dtype is gradd.float32
    assert session.tensor([True]).square().dtype is gradd.int64
    out = i.lerp(session.tensor([3, 4]), w)  # a 0-dim weight promotes (torch: float64 too)
    assert out.dtype is gradd.float64 and out.tolist() == [1.5, -0.5]
    assert i.isnan().dtype is gradd.bool and i.nan_to_num().tolist() == [1, -2]
