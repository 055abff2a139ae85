"""``inplace=True`` activations through the SDK: embedded and on a server, the same graph."""

from __future__ import annotations

import gradd
import numpy as np

VALUES = [-2.0, -0.5, 0.25, 3.0]


def test_inplace_activation_is_recorded_and_differentiated(session: gradd.Session) -> None:
    F = session.functional
    x = session.tensor(VALUES, requires_grad=True)
    b = x * 1
    y = F.elu(b, alpha=0.5, inplace=True)
    assert y is b
    assert y.grad_fn.name() == "EluBackward1"
    y.sum().backward()
    v = np.array(VALUES)
    np.testing.assert_allclose(y.detach().numpy(), np.where(v > 0, v, 0.5 * np.expm1(v)))
    np.testing.assert_allclose(x.grad.numpy(), np.where(v > 0, 1.0, 0.5 * np.exp(v)))


def test_inplace_activation_without_a_graph_changes_the_tensor(session: gradd.Session) -> None:
    F = session.functional
    x = session.tensor(VALUES)
    assert F.relu6(x, inplace=True) is x
    assert x.tolist() == [0.0, 0.0, 0.25, 3.0]
    assert F.threshold(x, 0.5, -1.0, inplace=True) is x
    assert x.tolist() == [-1.0, -1.0, -1.0, 3.0]
