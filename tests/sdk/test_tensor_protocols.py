"""Python's protocols on tensors, as PyTorch answers them, embedded and on a server."""

from __future__ import annotations

import gradd
import pytest


def test_format(session: gradd.Session) -> None:
    loss = session.tensor(0.123456)  # float32: f"{loss}" is its item's str, as PyTorch's
    assert f"{loss:.3f}" == "0.123" and f"{loss}" == "0.12345600128173828"
    v = session.tensor([1.0, 2.0])
    assert f"{v}" == repr(v) and repr(v).startswith("tensor([1., 2.]")  # (device=, on a GPU)
    with pytest.raises(TypeError, match="unsupported format string passed to Tensor.__format__"):
        f"{v:.2f}"


def test_len_and_iteration(session: gradd.Session) -> None:
    m = session.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    assert len(m) == 3 and [row.tolist() for row in m] == [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]
    with pytest.raises(TypeError, match="len\\(\\) of a 0-d tensor"):
        len(session.tensor(1.0))
    assert m.element_size() == 4 and session.tensor([1], dtype=session.int64).element_size() == 8
