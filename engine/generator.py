"""Per-session random streams that reproduce PyTorch's CPU generator bit for bit.

torch's CPU generator is MT19937 seeded by ``init_genrand(seed & 0xffffffff)``: we give
NumPy's ``MT19937`` that key and read its raw 32-bit words, then redo torch 2.13's CPU
kernels as built for x86-64 (AVX2/AVX512): same draw order, same bit masks, and the fused
multiply-adds GCC makes of ``x * scale + shift``. float32 randn of >= 16 values runs
``normal_fill_16_AVX2``, whose Cephes ``log256_ps``/``sincos256_ps`` we emulate lane by lane.

Against torch 2.13.0 (x86-64, AVX512 and ``ATEN_CPU_CAPABILITY=avx2``) rand, randn, normal,
uniform, randint, randperm, bernoulli/dropout masks and get_state bytes are bit-identical.
Not followed: ``ATEN_CPU_CAPABILITY=default`` and non-x86 torch (libm instead of Cephes,
no fused multiply-add: float32 randn within 2.2e-6 of ours; uniform(low, high) and
normal(mean, std) one rounding apart), and Intel CPUs, whose MKL draws ``bernoulli_(p)``.

These streams are for the CPU. A GPU draws with its own generator (``device_stream``:
``cupy.random.RandomState`` seeded with this generator's seed), so no random value crosses
from host to device; its numbers differ from the CPU's, as PyTorch's CUDA numbers do.
"""

from __future__ import annotations

import math
import os
import struct
import threading
from typing import Any

import numpy as np
import numpy.typing as npt

DEFAULT_SEED = 67280421310721  # c10::detail::default_rng_seed_val: torch.Generator()'s seed
_F32, _F64 = np.float32, np.float64
# torch.get_rng_state() layout (CPUGeneratorImplState): seed, left, seeded, next, state[624]
# as uint64, normal_x, normal_y (cached sample), normal_rho, normal_is_valid, float cache.
_STATE = struct.Struct("<QiiQ624Qdddi4xf?3x")
_SMALL_PERM = (2**32 - 1) // 20  # randperm_cpu switches to random64 inside-out at this n


def _init_genrand(seed: int) -> np.ndarray:
    """MT19937's 624-word key for a 32-bit seed (Matsumoto & Nishimura's init_genrand)."""
    key = [seed & 0xFFFFFFFF]
    for i in range(1, 624):
        prev = key[-1]
        key.append((1812433253 * (prev ^ (prev >> 30)) + i) & 0xFFFFFFFF)
    return np.array(key, dtype=np.uint32)


def _round_odd_sum(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """x + y in float64 rounded to odd, so that a later, coarser rounding is correct."""
    s = x + y
    b = s - x
    err = (x - (s - b)) + (y - b)  # TwoSum: s + err == x + y exactly
    bits = s.view(np.int64)
    even_inexact = (err != 0) & ((bits & 1) == 0)
    away = np.signbit(err) == np.signbit(s)  # +1 on the bits moves away from zero
    return (bits + even_inexact * np.where(away, 1, -1)).view(_F64)


def _fma32(a, b, c) -> np.ndarray:
    """float32 a * b + c rounded once; the float32 product is exact in float64."""
    p = np.asarray(a, _F32).astype(_F64) * np.asarray(b, _F32).astype(_F64)
    return _round_odd_sum(p, np.asarray(c, _F32).astype(_F64)).astype(_F32)


def _split(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Veltkamp split of float64 into two halves whose products are exact."""
    g = a * 134217729.0  # 2**27 + 1
    hi = g - (g - a)
    return hi, a - hi


def _fma64(a: np.ndarray, b: float, c: float) -> np.ndarray:
    """float64 a * b + c rounded once (Boldo & Melquiond's emulation with round-to-odd)."""
    a, b = np.asarray(a, _F64), _F64(b)
    p = a * b
    (ah, al), (bh, bl) = _split(a), _split(b)
    perr = ((ah * bh - p) + ah * bl + al * bh) + al * bl  # p + perr == a * b exactly
    s = p + c
    bb = s - p
    t = (p - (s - bb)) + (c - bb)  # TwoSum: s + t == p + c exactly
    return s + _round_odd_sum(t, perr)


# Cephes float32 polynomials from ATen/native/cpu/avx_mathfun.h (log256_ps, sincos256_ps).
_LOG_P = [7.0376836292e-2, -1.1514610310e-1, 1.1676998740e-1, -1.2420140846e-1, 1.4249322787e-1]
_LOG_P += [-1.6668057665e-1, 2.0000714765e-1, -2.4999993993e-1, 3.3333331174e-1]
_DP = [-0.78515625, -2.4187564849853515625e-4, -3.77489497744594108e-8]


def _log_ps(x: np.ndarray) -> np.ndarray:
    """log256_ps for x in (0, 1], one lane per element."""
    bits = x.view(np.int32)
    e = ((bits >> 23) - 0x7F).astype(_F32) + _F32(1)
    x = ((bits & ~0x7F800000) | 0x3F000000).view(_F32)  # mantissa in [0.5, 1)
    small = x < _F32(0.707106781186547524)
    e = e - small.astype(_F32)
    x = (x - _F32(1)) + np.where(small, x, _F32(0))
    z = x * x
    y = np.full_like(x, _LOG_P[0])
    for p in _LOG_P[1:]:
        y = _fma32(y, x, p)
    y = _fma32(y * x, z, e * _F32(-2.12194440e-4))
    y = y - z * _F32(0.5)
    return _fma32(e, 0.693359375, x + y)


def _sincos_ps(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """sincos256_ps for x >= 0: octant reduction, then the two Cephes polynomials."""
    j = (x * _F32(1.27323954473516)).astype(np.int32)  # 4 / pi, truncated
    j = (j + 1) & ~1
    y = j.astype(_F32)
    for dp in _DP:  # extended-precision x - y * pi / 4
        x = _fma32(y, dp, x)
    z = x * x
    yc = _fma32(_F32(2.443315711809948e-5), z, -1.388731625493765e-3)
    yc = _fma32(yc, z, 4.166664568298827e-2)
    yc = _fma32(yc * z, z, -(z * _F32(0.5))) + _F32(1)
    ys = _fma32(_F32(-1.9515295891e-4), z, 8.3321608736e-3)
    ys = _fma32(ys, z, -1.6666654611e-1)
    ys = _fma32(ys * z, x, x)
    poly = (j & 2) == 0
    sin, cos = np.where(poly, ys, yc), np.where(poly, yc, ys)
    return np.where((j & 4) != 0, -sin, sin), np.where(((j - 2) & 4) == 0, -cos, cos)


class Generator:
    """A reproducible random stream with torch.Generator's CPU numbers and state format."""

    def __init__(self, device: str = "cpu") -> None:
        self.device = device  # informational: every device draws from it (module docstring)
        self._bits = np.random.MT19937(0)  # key replaced by manual_seed
        self._lock = threading.RLock()  # one draw (data, tail, cache) must not interleave
        self._gpu_streams: dict = {}  # (array module, GPU ordinal) -> its RandomState
        self.manual_seed(DEFAULT_SEED)

    def manual_seed(self, seed: int) -> Generator:
        """Reseed like torch: negative seeds wrap to uint64; returns self."""
        seed = int(seed)
        if not -(2**63) <= seed < 2**64:
            raise ValueError(f"seed {seed} does not fit in 64 bits")
        with self._lock:
            self._seed = seed % 2**64
            key = _init_genrand(self._seed)
            self._bits.state = {"bit_generator": "MT19937", "state": {"key": key, "pos": 624}}
            self._fresh = True  # torch's `next` field reads 0 until the first draw
            self._next_normal: float | None = None  # Box-Muller partner of the serial path
            self._gpu_streams = {}  # as torch.manual_seed, reseeds the GPUs' streams too
        return self

    def initial_seed(self) -> int:
        return self._seed

    def seed(self) -> int:
        """Reseed from OS entropy and return the new seed."""
        s = int.from_bytes(os.urandom(8), "little")
        self.manual_seed(s)
        return s

    def get_state(self) -> bytes:
        """The 5056 bytes torch.get_rng_state() would return for this stream."""
        with self._lock:
            st = self._bits.state["state"]
            pos, cache = int(st["pos"]), self._next_normal
            head = (self._seed, 625 - pos, 1, 0 if self._fresh else pos)
            normal = (0.0, cache or 0.0, 0.0, cache is not None)
            return _STATE.pack(*head, *st["key"].tolist(), *normal, 0.0, False)

    def set_state(self, state: bytes) -> None:
        """Restore get_state() bytes (or torch's, e.g. bytes(torch.get_rng_state().numpy()))."""
        f = _STATE.unpack(bytes(state))
        seed, left, nxt, key, valid = f[0], f[1], f[3], f[4:628], f[631]
        with self._lock:
            self._seed = seed
            pos = nxt if left > 1 else 624  # torch regenerates the block when left hits 0
            key = np.array(key, np.uint64).astype(np.uint32)  # torch keeps the low 32 bits
            self._bits.state = {"bit_generator": "MT19937", "state": {"key": key, "pos": pos}}
            self._fresh = left == 1 and nxt == 0
            self._next_normal = f[629] if valid else None

    def device_stream(self, xp: Any) -> Any:
        """The current GPU's stream for this generator: ``xp.random.RandomState`` seeded with
        this generator's seed, made on first use (call inside the device's scope)."""
        key = (xp, xp.cuda.Device().id)
        with self._lock:
            stream = self._gpu_streams.get(key)
            if stream is None:
                stream = self._gpu_streams[key] = xp.random.RandomState(self._seed)
            return stream

    # -- raw stream ------------------------------------------------------------------------
    def _u32(self, n: int) -> np.ndarray:
        self._fresh = self._fresh and n == 0
        return self._bits.random_raw(n)  # 32-bit words held in uint64

    def _u64(self, n: int) -> np.ndarray:
        r = self._u32(2 * n)
        return (r[0::2] << 32) | r[1::2]  # random64(): the first word is the high half

    def _unit(self, n: int, dtype: np.dtype) -> np.ndarray:
        """uniform_real_distribution<T>(0, 1): 24 bits of random() or 53 of random64()."""
        if dtype == _F32:
            return (self._u32(n) & 0xFFFFFF).astype(_F32) * _F32(2.0**-24)
        return (self._u64(n) & (2**53 - 1)).astype(_F64) * 2.0**-53

    # -- distributions ---------------------------------------------------------------------
    def uniform(
        self, shape: tuple[int, ...], dtype: npt.DTypeLike = _F32, low=0.0, high=1.0
    ) -> np.ndarray:
        """torch.rand / Tensor.uniform_(low, high); float16 draws float32 and rounds (as torch,
        bit for bit for rand)."""
        if np.dtype(dtype) == np.float16:
            return self.uniform(shape, _F32, low, high).astype(np.float16)
        dtype = _float_dtype(dtype)
        lo, hi = dtype.type(low), dtype.type(high)
        if lo > hi:
            raise ValueError(f"uniform needs low <= high, got [{low}, {high})")
        with self._lock:
            x = self._unit(math.prod(shape), dtype)
        fma = _fma32 if dtype == _F32 else _fma64  # GCC fuses x * (hi - lo) + lo
        out = fma(x, hi - lo, lo)  # hi - lo is rounded in dtype, as in uniform_kernel
        out[out == hi] = lo  # torch maps a value rounded up to `high` back to `low`
        return out.reshape(shape)

    def normal(
        self, shape: tuple[int, ...], dtype: npt.DTypeLike = _F32, mean=0.0, std=1.0
    ) -> np.ndarray:
        """torch.randn / Tensor.normal_(mean, std) on a contiguous tensor. float16 draws float32
        and rounds: torch's numbers when fewer than 16 or a multiple of 16 (torch's float16
        kernel computes the last partial block its own way, which is not followed)."""
        if np.dtype(dtype) == np.float16:
            return self.normal(shape, _F32, mean, std).astype(np.float16)
        dtype, n = _float_dtype(dtype), math.prod(shape)
        with self._lock:
            out = self._normal_fill(n, dtype, mean, std) if n >= 16 else self._serial(n, mean, std)
        return out.astype(dtype, copy=False).reshape(shape)

    def _serial(self, n: int, mean: float, std: float) -> np.ndarray:
        """normal_distribution<double> per element; each Box-Muller pair's sine is cached."""
        z = []
        for _ in range(n):
            if self._next_normal is not None:
                z.append(self._next_normal)
                self._next_normal = None
                continue
            u1, u2 = self._unit(2, _F64).tolist()
            r = math.sqrt(-2.0 * math.log1p(-u2))  # math.* is libm, as torch's kernel calls
            theta = 2.0 * math.pi * u1
            self._next_normal = r * math.sin(theta)
            z.append(r * math.cos(theta))
        return _fma64(np.array(z, _F64), std, mean)

    def _normal_fill(self, n: int, dtype: np.dtype, mean: float, std: float) -> np.ndarray:
        """normal_fill: n uniforms, Box-Muller over pairs (j, j + 8) of each 16-block; when
        16 does not divide n, 16 fresh uniforms redo the last (overlapping) block."""
        data = self._unit(n, dtype)
        tail = self._unit(16, dtype) if n % 16 else None
        m = n - n % 16
        for i in range(0, m, 1 << 15):  # chunks keep the float64 temporaries in cache
            block = slice(i, min(i + (1 << 15), m))
            data[block] = _box_muller(data[block], dtype, mean, std)
        if tail is not None:
            data[n - 16 :] = _box_muller(tail, dtype, mean, std)
        return data

    def bernoulli(self, shape: tuple[int, ...], p: float) -> np.ndarray:
        """Mask, True with probability p: torch's non-MKL bernoulli_(p), so dropout's mask
        with p = 1 - drop; torch's dropout draws nothing when drop is 0 or 1."""
        with self._lock:
            return (self._unit(math.prod(shape), _F64) < p).reshape(shape)

    def bernoulli_tensor(self, p: np.ndarray) -> np.ndarray:
        """torch.bernoulli(p): element by element, a uniform of p's precision below p (24 bits
        of random() for float32/float16 p, 53 of random64() for float64)."""
        unit = _F64 if p.dtype == _F64 else _F32
        with self._lock:
            u = self._unit(p.size, unit)
        return (u < p.reshape(-1).astype(unit, copy=False)).reshape(p.shape)

    def exponential(self, shape: tuple[int, ...], dtype: npt.DTypeLike = _F32) -> np.ndarray:
        """Tensor.exponential_(1): -log1p(-u) of a 53-bit uniform per element, in dtype."""
        with self._lock:
            u = self._unit(math.prod(shape), _F64)
        return (-np.log1p(-u)).astype(dtype).reshape(shape)

    def uniform_f64(self, n: int) -> np.ndarray:
        """n uniform doubles in [0, 1) (uniform_real_distribution<double>)."""
        with self._lock:
            return self._unit(n, _F64)

    def randint(self, low: int, high: int, shape: tuple[int, ...]) -> np.ndarray:
        """torch.randint(low, high, shape): int64 in [low, high)."""
        low, high = int(low), int(high)
        span = high - low
        if not 0 < span < 2**64:
            raise ValueError(f"randint needs low < high, got [{low}, {high})")
        with self._lock:  # torch uses random64() from 2**28 on to keep the % skew small
            x = self._u64(math.prod(shape)) if span >= 2**28 else self._u32(math.prod(shape))
        return ((x % np.uint64(span)) + np.uint64(low % 2**64)).view(np.int64).reshape(shape)

    def randperm(self, n: int) -> np.ndarray:
        """torch.randperm(n): Fisher-Yates with random() % (n - i), as randperm_cpu."""
        if n < 0:
            raise ValueError(f"randperm needs n >= 0, got {n}")
        with self._lock:
            if n < _SMALL_PERM:
                perm = list(range(n))
                zs = (self._u32(max(n - 1, 0)) % np.arange(n, 1, -1, dtype=np.uint64)).tolist()
                for i, z in enumerate(zs):
                    perm[i], perm[i + z] = perm[i + z], perm[i]
                return np.array(perm, np.int64)
            perm = [0] * n  # randperm_cpu's inside-out variant for huge n
            for i, z in enumerate((self._u64(n) % np.arange(1, n + 1, dtype=np.uint64)).tolist()):
                perm[i], perm[z] = perm[z], i
            return np.array(perm, np.int64)


def _float_dtype(dtype) -> np.dtype:
    dtype = np.dtype(dtype)
    if dtype not in (_F32, _F64):
        raise TypeError(f"random floats are float32 or float64, not {dtype}")
    return dtype


def _box_muller(data: np.ndarray, dtype: np.dtype, mean: float, std: float) -> np.ndarray:
    """Box-Muller on 16-blocks: float32 as normal_fill_16_AVX2, float64 as NormalFill16."""
    u = data.reshape(-1, 2, 8)
    u1, u2 = 1 - u[:, 0], u[:, 1]  # [0, 1) -> (0, 1] for log
    if dtype == _F32:
        radius = np.sqrt(_F32(-2) * _log_ps(u1))
        sin, cos = _sincos_ps(_F32(2 * math.pi) * u2)
    else:  # std::log/cos/sin are libm calls; math.* calls the same libm
        radius = np.sqrt(-2 * np.array(list(map(math.log, u1.ravel().tolist())))).reshape(u1.shape)
        theta = (2 * math.pi * u2).ravel().tolist()
        sin = np.array(list(map(math.sin, theta))).reshape(u1.shape)
        cos = np.array(list(map(math.cos, theta))).reshape(u1.shape)
    pair = np.stack([radius * cos, radius * sin], axis=1)
    return (_fma32 if dtype == _F32 else _fma64)(pair, std, mean).reshape(-1)
