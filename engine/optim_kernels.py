"""The optimizers' update rules on arrays: one rule per ``torch.optim`` optimizer, used by the
SDK's embedded optimizers and by the server's fused ``OptimizerStep`` alike.

Each rule is PyTorch's single-tensor kernel (what ``torch.optim`` runs on CPU tensors: foreach
and fused kernels are for GPUs), op for op, with each ATen CPU kernel's arithmetic: Python
scalars are rounded to the tensor's dtype first, ``add(alpha=)``, ``lerp`` and ``addcmul``
round once after a multiply-add (their vectorised kernels use ``fmadd``; float32's is computed
in float64 here, exact before its one rounding), ``addcdiv`` is ``x + (value * a) / b``. So
float32 results agree with PyTorch's to the last bit except where its ``sqrt`` (MKL's, which
may be 1 ulp off) differs from the correctly rounded one; float64 ones to an ulp or so.

Options travel as floats (flags 0 or 1) named as PyTorch's group keys, with ``betas`` split
into ``beta1`` and ``beta2`` (``options_of`` and ``group_of`` convert).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .memory_meter import check_active
from .tensor import Tensor, wrap

Options = Mapping[str, float]


@dataclass(frozen=True)
class OptimizerRule:
    """One optimizer: its options, state slots, PyTorch's checks and its update."""

    kind: str
    numbers: tuple[str, ...]  # numeric options, by their wire names
    flags: tuple[str, ...]  # boolean options
    counts_steps: bool  # keeps PyTorch's per-parameter `step`
    slots: Callable[[Options], tuple[str, ...]]  # state names, in PyTorch's state-dict order
    check: Callable[[Mapping[str, Any]], None]  # PyTorch's constructor checks, on group values
    update: Callable[..., None]  # (xp, p, g, state, step, o, fresh), in place
    fill: Callable[[Options], float] = lambda o: 0.0  # the state's first value
    writes: Callable[[Options], int] = lambda o: 1  # PyTorch's in-place ops on the parameter

    @property
    def options(self) -> tuple[str, ...]:
        return self.numbers + self.flags


# --- ATen's CPU arithmetic -----------------------------------------------------------------
def _s(x: float, a: Any) -> Any:
    """A Python scalar as ATen's kernels take it: rounded to the tensor's dtype."""
    return a.dtype.type(x)


def _fma(a: Any, b: Any, c: Any) -> Any:
    """``a * b + c`` rounded once (ATen's ``vec::fmadd``); float32 exactly, via float64."""
    if a.dtype.itemsize < 8:
        wide = np.float64
        b = b.astype(wide) if hasattr(b, "ndim") and b.ndim else float(b)
        return (a.astype(wide) * b + c.astype(wide)).astype(a.dtype)
    return a * b + c


def _lerp(start: Any, end: Any, weight: float) -> Any:
    """``start.lerp(end, weight)`` with ATen's two branches."""
    w = _s(weight, start)
    if abs(w) < 0.5:
        return _fma(end - start, w, start)
    return _fma(end - start, w - _s(1, start), end)


def _addcmul(x: Any, a: Any, b: Any, value: float) -> Any:
    return _fma(_s(value, x) * a, b, x)


def _addcdiv(x: Any, a: Any, b: Any, value: float) -> Any:
    return x + (_s(value, x) * a) / b


def _decayed(p: Any, g: Any, o: Options) -> Any:
    """The gradient with maximize and (coupled) weight decay applied, a new array if changed."""
    if o["maximize"]:
        g = -g
    if o["weight_decay"] != 0:
        g = _fma(p, _s(o["weight_decay"], p), g)  # grad.add(param, alpha=weight_decay)
    return g


# --- the rules -----------------------------------------------------------------------------
def _sgd(xp: Any, p: Any, g: Any, state: list, step: float, o: Options, fresh: bool) -> None:
    g = _decayed(p, g, o)
    momentum = o["momentum"]
    if momentum != 0:
        buf = state[0]
        if fresh:
            buf[...] = g
        else:
            buf *= _s(momentum, buf)
            buf[...] = _fma(g, _s(1 - o["dampening"], buf), buf)
        g = _fma(buf, _s(momentum, buf), g) if o["nesterov"] else buf
    p[...] = _fma(g, _s(-o["lr"], p), p)


def _adam(xp: Any, p: Any, g: Any, state: list, step: float, o: Options, fresh: bool) -> None:
    _adam_like(xp, p, g, state, step, o, decoupled=False)


def _adamw(xp: Any, p: Any, g: Any, state: list, step: float, o: Options, fresh: bool) -> None:
    _adam_like(xp, p, g, state, step, o, decoupled=True)


def _adamw_writes(o: Options) -> int:
    return 2 if o["weight_decay"] != 0 else 1  # param.mul_ then param.addcdiv_


def _adam_like(
    xp: Any, p: Any, g: Any, state: list, step: float, o: Options, decoupled: bool
) -> None:
    lr, beta1, beta2, wd = o["lr"], o["beta1"], o["beta2"], o["weight_decay"]
    if o["maximize"]:
        g = -g
    if wd != 0:
        if decoupled:
            p *= _s(1 - lr * wd, p)  # (_adamw_writes counts it)
        else:
            g = _fma(p, _s(wd, p), g)
    exp_avg, exp_avg_sq = state[0], state[1]
    exp_avg[...] = _lerp(exp_avg, g, 1 - beta1)
    exp_avg_sq *= _s(beta2, exp_avg_sq)
    exp_avg_sq[...] = _addcmul(exp_avg_sq, g, g, 1 - beta2)
    step_size = lr / (1 - beta1**step)
    bias_correction2_sqrt = (1 - beta2**step) ** 0.5
    second = exp_avg_sq
    if o["amsgrad"]:
        second = state[2]
        xp.maximum(second, exp_avg_sq, out=second)
    denom = xp.sqrt(second) / _s(bias_correction2_sqrt, p) + _s(o["eps"], p)
    p[...] = _addcdiv(p, exp_avg, denom, -step_size)


def _rmsprop(xp: Any, p: Any, g: Any, state: list, step: float, o: Options, fresh: bool) -> None:
    g = _decayed(p, g, o)
    alpha, momentum = o["alpha"], o["momentum"]
    square_avg = state[0]
    square_avg *= _s(alpha, square_avg)
    square_avg[...] = _addcmul(square_avg, g, g, 1 - alpha)
    if o["centered"]:
        grad_avg = state[-1]
        grad_avg[...] = _lerp(grad_avg, g, 1 - alpha)
        avg = xp.sqrt(_addcmul(square_avg, grad_avg, grad_avg, -1))
    else:
        avg = xp.sqrt(square_avg)
    avg = avg + _s(o["eps"], p)
    if momentum > 0:
        buf = state[1]
        buf *= _s(momentum, buf)
        buf[...] = _addcdiv(buf, g, avg, 1)
        p[...] = _fma(buf, _s(-o["lr"], p), p)
    else:
        p[...] = _addcdiv(p, g, avg, -o["lr"])


def _adagrad(xp: Any, p: Any, g: Any, state: list, step: float, o: Options, fresh: bool) -> None:
    g = _decayed(p, g, o)
    clr = o["lr"] / (1 + (step - 1) * o["lr_decay"])
    total = state[0]
    total[...] = _addcmul(total, g, g, 1)
    std = xp.sqrt(total) + _s(o["eps"], p)
    p[...] = _addcdiv(p, g, std, -clr)


# --- PyTorch's constructor checks (its messages, in its order) -------------------------------
def _at_least_zero(group: Mapping[str, Any], *names: tuple[str, str]) -> None:
    for key, what in names:
        value = group[key]
        if not 0.0 <= value:
            raise ValueError(f"Invalid {what}: {value}")


def _check_sgd(group: Mapping[str, Any]) -> None:
    lr, momentum, weight_decay = group["lr"], group["momentum"], group["weight_decay"]
    if lr < 0.0:
        raise ValueError(f"Invalid learning rate: {lr}")
    if momentum < 0.0:
        raise ValueError(f"Invalid momentum value: {momentum}")
    if weight_decay < 0.0:
        raise ValueError(f"Invalid weight_decay value: {weight_decay}")
    if group["nesterov"] and (momentum <= 0 or group["dampening"] != 0):
        raise ValueError("Nesterov momentum requires a momentum and zero dampening")


def _check_adam(group: Mapping[str, Any]) -> None:
    _at_least_zero(group, ("lr", "learning rate"), ("eps", "epsilon value"))
    betas = group["betas"]
    for i in (0, 1):
        if not 0.0 <= betas[i] < 1.0:
            raise ValueError(f"Invalid beta parameter at index {i}: {betas[i]}")
    _at_least_zero(group, ("weight_decay", "weight_decay value"))


def _check_rmsprop(group: Mapping[str, Any]) -> None:
    _at_least_zero(
        group,
        ("lr", "learning rate"),
        ("eps", "epsilon value"),
        ("momentum", "momentum value"),
        ("weight_decay", "weight_decay value"),
        ("alpha", "alpha value"),
    )


def _check_adagrad(group: Mapping[str, Any]) -> None:
    _at_least_zero(
        group,
        ("lr", "learning rate"),
        ("lr_decay", "lr_decay value"),
        ("weight_decay", "weight_decay value"),
        ("initial_accumulator_value", "initial_accumulator_value value"),
        ("eps", "epsilon value"),
    )


_ADAM_NUMBERS = ("lr", "beta1", "beta2", "eps", "weight_decay")


def _adam_slots(o: Options) -> tuple[str, ...]:
    return (
        ("exp_avg", "exp_avg_sq", "max_exp_avg_sq") if o["amsgrad"] else ("exp_avg", "exp_avg_sq")
    )


RULES: dict[str, OptimizerRule] = {
    r.kind: r
    for r in (
        OptimizerRule(
            "sgd",
            ("lr", "momentum", "dampening", "weight_decay"),
            ("nesterov", "maximize"),
            False,
            lambda o: ("momentum_buffer",) if o["momentum"] != 0 else (),
            _check_sgd,
            _sgd,
        ),
        OptimizerRule(
            "adam", _ADAM_NUMBERS, ("amsgrad", "maximize"), True, _adam_slots, _check_adam, _adam
        ),
        OptimizerRule(
            "adamw",
            _ADAM_NUMBERS,
            ("amsgrad", "maximize"),
            True,
            _adam_slots,
            _check_adam,
            _adamw,
            writes=_adamw_writes,
        ),
        OptimizerRule(
            "rmsprop",
            ("lr", "alpha", "eps", "weight_decay", "momentum"),
            ("centered", "maximize"),
            True,
            lambda o: (
                ("square_avg",)
                + (("momentum_buffer",) if o["momentum"] > 0 else ())
                + (("grad_avg",) if o["centered"] else ())
            ),
            _check_rmsprop,
            _rmsprop,
        ),
        OptimizerRule(
            "adagrad",
            ("lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps"),
            ("maximize",),
            True,
            lambda o: ("sum",),
            _check_adagrad,
            _adagrad,
            fill=lambda o: o["initial_accumulator_value"],
        ),
    )
}


def options_of(rule: OptimizerRule, group: Mapping[str, Any]) -> dict[str, float]:
    """A parameter group's options as the rule's floats (``betas`` split in two)."""
    out = {}
    for name in rule.options:
        if name in ("beta1", "beta2"):
            out[name] = float(group["betas"][name == "beta2"])
        else:
            out[name] = float(group[name])
    return out


def group_of(options: Options) -> dict[str, Any]:
    """Options back as group values (``betas`` joined), for the rule's ``check``."""
    group = dict(options)
    if "beta1" in group:
        group["betas"] = (group.pop("beta1"), group.pop("beta2"))
    return group


def check_wire_options(rule: OptimizerRule, options: Options) -> None:
    """A remote client's options: exactly the rule's, finite, non-negative, flags 0 or 1, and
    PyTorch's checks (ValueError, with its messages)."""
    names = set(options)
    if names != set(rule.options):
        unknown, missing = sorted(names - set(rule.options)), sorted(set(rule.options) - names)
        raise ValueError(
            f"{rule.kind} takes options {list(rule.options)}; unknown {unknown}, missing {missing}"
        )
    for name, value in options.items():
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"Invalid {name} value: {value} (must be finite and non-negative)")
        if name in rule.flags and value not in (0.0, 1.0):
            raise ValueError(f"{name} is a flag: 0 or 1, got {value}")
    rule.check(group_of(options))


def check_state(rule: OptimizerRule, o: Options, param: Tensor, state: list[Tensor]) -> None:
    """State tensors as the rule needs them for ``param`` (ValueError otherwise)."""
    names = rule.slots(o)
    if len(state) != len(names):
        raise ValueError(
            f"{rule.kind} keeps {len(names)} state tensors per parameter {list(names)}, "
            f"got {len(state)}"
        )
    for name, t in zip(names, state):
        if t.shape != param.shape or t.dtype is not param.dtype or t.device is not param.device:
            raise ValueError(
                f"{rule.kind} state {name!r} must match its parameter ({list(param.shape)}, "
                f"{param.dtype}, {param.device}), got {list(t.shape)}, "
                f"{t.dtype}, {t.device}"
            )
        _check_writable(t)


def check_param(param: Tensor) -> None:
    """A parameter an optimizer can update in place: floating point, writable."""
    if not param.dtype.is_floating_point:
        raise ValueError(f"optimizers update floating-point tensors, not {param.dtype}")
    _check_writable(param)


def _check_writable(t: Tensor) -> None:
    a = t._data
    if a.size > 1 and (0 in a.strides or not getattr(a.flags, "writeable", True)):
        raise RuntimeError(
            "unsupported operation: more than one element of the written-to tensor refers to a "
            "single memory location. Please clone() the tensor before performing the operation."
        )


def new_state(rule: OptimizerRule, o: Options, param: Tensor) -> list[Tensor]:
    """The state tensors of a parameter's first step (metered before they are made)."""
    names = rule.slots(o)
    check_active(len(names) * param.nbytes, f"{rule.kind} state")
    dev, value = param.device, rule.fill(o)
    with dev.scope():
        return [wrap(dev.xp.full(param.shape, value, param._data.dtype), dev) for _ in names]


def apply(
    rule: OptimizerRule, o: Options, param: Tensor, state: list[Tensor], step: float, fresh: bool
) -> None:
    """One step of ``param`` by its ``.grad`` (which must exist), in place: the parameter's
    version counter moves as PyTorch's in-place ops move it, each state tensor's once."""
    dev = param.device
    with dev.scope():
        arrays = [t._data for t in state]
        rule.update(dev.xp, param._data, param._grad._data, arrays, step, o, fresh)
    param._vc[0] += rule.writes(o)
    for t in state:
        t._vc[0] += 1
