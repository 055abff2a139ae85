"""The OptimizerStep command: one optimizer step for all of an optimizer's parameters.

The update rules are the engine's (``gradd.engine.optim_kernels``), the ones an embedded
optimizer runs. Everything a client sends is checked before anything changes: the kind, each
group's options, each parameter and its state handles, and the bytes of the state to make;
then each parameter with a ``.grad`` is updated in place, in order.
"""

from __future__ import annotations

import math
from typing import Any

from gradd.engine import optim_kernels as kernels
from gradd.v1 import command_pb2 as cpb

from .errors import invalid, shown
from .session import Session
from .tensor_table import new_handle

_KINDS = ", ".join(sorted(kernels.RULES))


def optimizer_step(s: Session, c: cpb.OptimizerStep) -> None:
    """Check the whole step, make the new state, then update every parameter."""
    rule = kernels.RULES.get(c.kind)
    if rule is None:
        raise invalid(f"unknown optimizer {shown(c.kind)}; known: {_KINDS}")
    plan: list[tuple[dict, Any, list, float, bool, list[str]]] = []
    new_handles: list[str] = []
    new_bytes = 0
    for group in c.groups:
        options = dict(group.options)
        kernels.check_wire_options(rule, options)  # ValueError: INVALID_ARGUMENT
        for entry in group.params:
            param = s.table.get(entry.param)
            kernels.check_param(param)
            if param._grad is None:  # (the .grad getter warns for non-leaves)
                continue  # PyTorch skips a parameter without a gradient
            step = entry.step
            if rule.counts_steps and not (math.isfinite(step) and step >= 1):
                raise invalid(
                    f"{rule.kind}: a parameter's step must be finite and >= 1, not {step}"
                )
            handles = list(entry.state)
            if entry.init:
                count = len(rule.slots(options))
                if len(handles) != count:
                    raise invalid(
                        f"{rule.kind} makes {count} state tensors for parameter "
                        f"{shown(entry.param)}, {len(handles)} handles named"
                    )
                new_handles += [new_handle(h) for h in handles]
                new_bytes += count * param.nbytes
                state = []
            else:
                state = [s.table.get(h) for h in handles]
                kernels.check_state(rule, options, param, state)
            plan.append((options, param, state, step, entry.init, handles))
    s.table.check_handles(new_handles)
    s.meter.check(new_bytes, f"the {rule.kind} optimizer's new state")
    for options, param, state, _, init, handles in plan:
        if init:
            state[:] = kernels.new_state(rule, options, param)
            s.table.bind(list(zip(handles, state)))
    for options, param, state, step, init, _ in plan:
        kernels.apply(rule, options, param, state, step, init)
