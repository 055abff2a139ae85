"""The article's linear regression, 200 epochs as raw commands, equals the engine in-process."""

from __future__ import annotations

import threading

import article_commands as article
import gradd.engine as ge
import numpy as np
import pytest
from gradd.v1 import command_pb2 as cpb
from server_harness import Tensor, op

EPOCHS = 200


def _in_process(x_train: np.ndarray, y_train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    generator = ge.Generator().manual_seed(42)
    b = ge.randn(1, generator=generator, requires_grad=True)
    w = ge.randn(1, generator=generator, requires_grad=True)
    x, y = ge.tensor(x_train), ge.tensor(y_train)
    for _ in range(EPOCHS):
        yhat = b + w * x
        error = y - yhat
        loss = (error**2).mean()
        loss.backward()
        with ge.no_grad():
            b -= article.LR * b.grad
            w -= article.LR * w.grad
        b.grad.zero_()
        w.grad.zero_()
    return b.detach().numpy(), w.detach().numpy()


def _train(session) -> None:
    x_train, y_train = article.data()

    def batches():
        yield cpb.ExecuteRequest(session_id=session.id, commands=article.setup(x_train, y_train))
        for i in range(EPOCHS):  # streamed without waiting for any reply
            yield cpb.ExecuteRequest(session_id=session.id, sequence=i, commands=article.epoch())

    replies = list(session.stub.ExecuteStream(batches(), metadata=session.md, timeout=120))
    assert [r.HasField("error") for r in replies] == [False] * (EPOCHS + 1)


def test_linear_regression_matches_the_engine(session):
    _train(session)
    b_expected, w_expected = _in_process(*article.data())
    np.testing.assert_array_equal(session.array("b"), b_expected)
    np.testing.assert_array_equal(session.array("w"), w_expected)


@pytest.mark.cpu_only("starts from the article's values, PyTorch's CPU random numbers")
def test_linear_regression_nears_the_articles_line(session):
    _train(session)
    assert abs(session.array("b")[0] - 1) < 0.1 and abs(session.array("w")[0] - 2) < 0.2


def test_sessions_train_at_once_without_disturbing_each_other(client):
    x_train, y_train = article.data()
    expected = _in_process(x_train, y_train)
    sessions = [client.session(seed=i) for i in range(4)]
    results: dict[str, object] = {}

    def train(s) -> None:
        def batches():
            yield cpb.ExecuteRequest(session_id=s.id, commands=article.setup(x_train, y_train))
            for i in range(EPOCHS):
                commands = article.epoch()
                if i % 2:  # odd epochs also run a no_grad op, to interleave grad modes
                    commands.insert(0, op("mul", Tensor("x"), 2.0, outs=["x2"], no_grad=True))
                yield cpb.ExecuteRequest(session_id=s.id, sequence=i, commands=commands)

        replies = list(s.stub.ExecuteStream(batches(), metadata=s.md, timeout=120))
        results[s.id] = [r.error.message for r in replies if r.HasField("error")]

    threads = [threading.Thread(target=train, args=(s,)) for s in sessions]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    for s in sessions:
        assert results[s.id] == []
        np.testing.assert_array_equal(s.array("b"), expected[0])
        np.testing.assert_array_equal(s.array("w"), expected[1])
        s.close()
