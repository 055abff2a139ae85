"""Special functions (erf, erfc, erfinv, ...) for any device's arrays: SciPy's on the CPU,
CuPy's ``cupyx.scipy.special`` on a GPU. Ops call ``special(xp).erf(x)``."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np


def special(xp: Any) -> ModuleType:
    """The special-functions module that computes on ``xp``'s arrays."""
    if xp is np:
        import scipy.special

        return scipy.special
    own = getattr(xp, "scipy_special", None)  # an array module that brings its own (the stand-in)
    if own is not None:
        return own
    import cupyx.scipy.special

    return cupyx.scipy.special
