"""How a built-in optimizer's ``step()`` and ``zero_grad()`` reach the tensors: the engine's
update rule run here on an embedded session's tensors, and one command per server session for
all of its parameters (``OptimizerStep``, ``ZeroGrad``), the client's mirror of each tensor
(version counters, whether ``.grad`` exists) kept as the server will leave it.

PyTorch keeps each parameter's ``step`` count in a CPU float32 tensor (``state["step"]``), also
for parameters on a GPU; so does gradd, for both kinds of session: a server's step reads it
here and sends its value with the command.
"""

from __future__ import annotations

from typing import Any

import gradd.engine as ge
import numpy as np
from gradd.engine import optim_kernels as kernels

_STEP_DTYPE = np.float32  # PyTorch's _get_scalar_dtype()


def step_tensor(value: float) -> ge.Tensor:
    """A ``state["step"]`` tensor: 0-d, float32, on the CPU."""
    return ge.tensor(np.float32(value), device="cpu")


_EngineTensor = ge.Tensor  # an embedded session's; any other gradd tensor is a server's


def step(opt: Any, rule: kernels.OptimizerRule) -> None:
    """One step of every parameter with a ``.grad``, group by group, in order."""
    commands: dict[Any, list] = {}  # server session -> its groups' entries
    for group in opt.param_groups:
        o = kernels.options_of(rule, group)
        names = rule.slots(o)
        writes = rule.writes(o)
        entries: dict[Any, list] = {}
        for p in group["params"]:
            if type(p) is not _EngineTensor:
                if p._has_grad:
                    entries.setdefault(p._s, []).append(_remote_entry(opt, rule, o, names, p))
            elif p._grad is not None:
                state, count, fresh = _state_of(opt, rule, names, p)
                if fresh:
                    state.update(zip(names, kernels.new_state(rule, o, p)))
                slots = [state[n] for n in names]
                kernels.check_state(rule, o, p, slots)  # a loaded state_dict may not fit
                kernels.apply(rule, o, p, slots, count, fresh)
        for s, params in entries.items():
            commands.setdefault(s, []).append((o, params, names, writes))
    for s, groups in commands.items():
        _send_step(s, rule, groups, opt)


def _state_of(opt: Any, rule: kernels.OptimizerRule, names: tuple, p: Any) -> tuple:
    """(the parameter's state dict, its step count after this step, whether it is new)."""
    if not names and not rule.counts_steps:
        return {}, 0.0, False  # no state at all (SGD without momentum), as PyTorch
    state = opt.state[p]
    count = 0.0
    if rule.counts_steps:
        if "step" not in state:
            state["step"] = step_tensor(0.0)
        t = state["step"]
        t._data += _STEP_DTYPE(1)  # PyTorch's step_t += 1, in float32
        count = float(t._data)
    return state, count, bool(names) and names[0] not in state


def _remote_entry(opt: Any, rule: kernels.OptimizerRule, o: dict, names: tuple, p: Any) -> tuple:
    from gradd.remote_tensor import new_tensor

    state, count, fresh = _state_of(opt, rule, names, p)
    if fresh:  # handles chosen here; the server makes the tensors with this step
        state.update((n, new_tensor(p._s, p.shape, p.dtype, False, None)) for n in names)
    return p, [state[n] for n in names], fresh, count


def _send_step(s: Any, rule: kernels.OptimizerRule, groups: list, opt: Any) -> None:
    from gradd import command_encoding as enc
    from gradd.call_site import user_site

    trace = getattr(s, "_compile_trace", None)
    if trace is not None:  # s.compile: each run of the program recounts the steps here
        trace.optimizer_step(rule, groups, _recount(opt, rule, groups))

    wire = [
        (o, [(p._h, [t._h for t in slots], fresh, count) for p, slots, fresh, count in params])
        for o, params, _, _ in groups
    ]
    s._push(enc.optimizer_step(rule.kind, wire), ("optimizer.step", *user_site()))
    for _, params, _, writes in groups:  # the server's in-place writes, mirrored
        for p, slots, _, _ in params:
            p._vc[0] += writes
            for t in slots:
                t._vc[0] += 1


def _recount(opt: Any, rule: kernels.OptimizerRule, groups: list) -> Any:
    """What a compiled function's program does here at each run of a step it holds: count
    each parameter's step and mirror the state's in-place writes; the counts, in order."""
    entries = [(names, p, slots) for _, params, names, _ in groups for p, slots, _, _ in params]

    def recount() -> list[float]:
        counts = []
        for names, p, slots in entries:
            counts.append(_state_of(opt, rule, names, p)[1])
            for t in slots:
                t._vc[0] += 1
        return counts

    return recount


def zero_grad(params: list, set_to_none: bool) -> None:
    """``optimizer.zero_grad``: PyTorch's loop here; one ZeroGrad command per server session."""
    sessions: dict[Any, list] = {}
    for p in params:
        if type(p) is not _EngineTensor:
            if p._has_grad:
                sessions.setdefault(p._s, []).append(p)
            continue
        grad = p._grad
        if grad is None:
            continue
        if set_to_none:
            p.grad = None
            continue
        if grad.grad_fn is not None:
            grad.detach_()
        else:
            grad.requires_grad_(False)
        grad.zero_()
    for s, ps in sessions.items():
        _send_zero_grad(s, ps, set_to_none)


def _send_zero_grad(s: Any, params: list, set_to_none: bool) -> None:
    from gradd import command_encoding as enc
    from gradd.call_site import user_site

    s._push(enc.zero_grad([p._h for p in params], set_to_none), ("zero_grad", *user_site()))
    for p in params:
        if set_to_none:
            p._has_grad = 0
            p._grad_obj = None
            continue
        g = p._grad_obj
        if g is not None:  # the server detaches the grad and zeroes it in place
            g.grad_fn = None
            g._rg = False
            g._vc[0] += 1
        p._has_grad = 1


def copy_for(param: Any, value: Any) -> Any:
    """A loaded state tensor as the optimizer keeps it: a copy in ``param``'s session, dtype
    and device (PyTorch's ``value.to(param.dtype, param.device)`` for floating parameters)."""
    dtype = param.dtype if param.dtype.is_floating_point else None
    if type(param) is not _EngineTensor:
        s = param._s
        if getattr(value, "_s", None) is s:
            return s.tensor(value, dtype=dtype)  # copied on the server
        return s.tensor(_values(value), dtype=dtype)
    return ge.tensor(_values(value), dtype=dtype, device=param.device)


def _values(value: Any) -> Any:
    """What ``tensor()`` copies from: an engine tensor itself, else NumPy values (a remote
    tensor's or a PyTorch tensor's fetched)."""
    if isinstance(value, ge.Tensor):
        return value
    if hasattr(value, "detach"):
        return np.asarray(value.detach().numpy())
    return np.asarray(value)
