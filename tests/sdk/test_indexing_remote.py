"""Gathering and masking on a server: a mask's count comes from the server's values, and
errors found in index values come back as PyTorch's, never as INTERNAL."""

from __future__ import annotations

import gradd
import numpy as np
import pytest


def test_masked_select_learns_its_length_from_the_server(remote: gradd.Session) -> None:
    x = remote.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    out = x.masked_select(x > 2.5)
    assert out.shape == (3,)
    assert out.grad_fn.name() == "MaskedSelectBackward0"
    assert out.tolist() == [3.0, 4.0, 5.0]
    (out * 2).sum().backward()
    assert x.grad.tolist() == [[0.0, 0.0, 0.0], [2.0, 2.0, 2.0]]


def test_masked_select_mask_errors_are_found_by_the_client(remote: gradd.Session) -> None:
    x = remote.ones(2, 3)
    with pytest.raises(RuntimeError, match="masked_select: expected BoolTensor for mask"):
        x.masked_select(remote.tensor([1, 0, 1]))


@pytest.mark.cpu_only("index values are checked on the CPU only (a GPU would sync)")
@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda s, x: x.gather(0, s.tensor([[5, 0, 0, 0]])), "index 5 is out of bounds"),
        (lambda s, x: x.scatter_add(1, s.tensor([[4]]), s.ones(1, 1)), "index 4 is out of"),
        (lambda s, x: x.index_select(1, s.tensor([7])), "id=7 axis_dim=4"),
        (lambda s, x: x.take_along_dim(s.tensor([12])), "index 12 is out of bounds"),
    ],
    ids=["gather", "scatter_add", "index_select", "take_along_dim"],
)
def test_out_of_range_indices_are_invalid_arguments(
    remote: gradd.Session, call: object, message: str
) -> None:
    x = remote.ones(3, 4)
    y = call(remote, x)
    with pytest.raises(gradd.GraddError, match=message) as info:
        y.tolist()
    assert info.value.code.name == "INVALID_ARGUMENT"
    assert (x * 2).sum().item() == 24.0  # the session goes on
