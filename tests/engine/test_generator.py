"""engine/generator.py: seeded streams that reproduce torch's CPU generator.

The hard-coded values come from torch 2.13.0 (x86-64 CPU); they need no torch to run. The
comparisons at the bottom run where torch imports and demand bit-identical results.
"""

from __future__ import annotations

import hashlib
import pathlib
from collections.abc import Callable

import numpy as np
import pytest
from gradd.engine.generator import DEFAULT_SEED, Generator

F32, F64 = np.float32, np.float64


def f32(values: list[float]) -> np.ndarray:
    return np.array(values, dtype=F32)


def sha(a: np.ndarray) -> str:
    return hashlib.sha256(a.tobytes()).hexdigest()[:16]


# -- values recorded from torch 2.13.0 ---------------------------------------------------------


def test_seed_42_randn_twice_is_torchs_0_3367_and_0_1288() -> None:
    g = Generator().manual_seed(42)
    a, b = g.normal((1,), F32), g.normal((1,), F32)
    # torch.manual_seed(42); torch.randn(1); torch.randn(1)
    assert a.tobytes() == f32([0.33669036626815796]).tobytes()
    assert b.tobytes() == f32([0.12880940735340118]).tobytes()
    assert round(float(a[0]), 4) == 0.3367 and round(float(b[0]), 4) == 0.1288


def test_recorded_torch_sequences() -> None:
    g = Generator().manual_seed(42)
    # torch.manual_seed(42); torch.randn(3); torch.randn(2, dtype=torch.float64): the second
    # randn(3) value is the cached Box-Muller partner of the first.
    assert g.normal((3,), F32).tolist() == f32([0.33669036626815796, 0.12880940735340118,
                                                0.23446236550807953]).tolist()  # fmt: skip
    assert g.normal((2,), F64).tolist() == [0.2303330279146119, -1.1228563767381703]

    g.manual_seed(42)  # torch.rand(3), then torch.rand(3, dtype=torch.float64)
    assert g.uniform((3,), F32).tolist() == f32([0.8822692632675171, 0.9150039553642273,
                                                 0.38286375999450684]).tolist()  # fmt: skip
    g.manual_seed(42)
    assert g.uniform((3,), F64).tolist() == [
        0.05815448596142969, 0.06291016742457756, 0.12358607277440903,
    ]  # fmt: skip

    g.manual_seed(0)  # torch.randn(16) (the 16-block Box-Muller), then torch.randn(1)
    first = f32([-1.1258398294448853, -1.152360200881958, -0.2505785822868347,
                 -0.4338788092136383])  # fmt: skip
    assert g.normal((16,), F32)[:4].tolist() == first.tolist()
    assert g.normal((1,), F32).tolist() == f32([-0.7192575931549072]).tolist()

    g.manual_seed(42)  # torch.randint(0, 10, (8,)), then torch.randperm(10)
    assert g.randint(0, 10, (8,)).tolist() == [2, 7, 6, 4, 6, 5, 0, 4]
    assert g.randperm(10).tolist() == [0, 3, 4, 8, 6, 9, 5, 1, 2, 7]


def test_article_data_and_parameters() -> None:
    # torch.manual_seed(42); x = torch.rand(100, 1); eps = torch.randn(100, 1); a, b = randn(1)
    g = Generator().manual_seed(42)
    x, eps = g.uniform((100, 1), F32), g.normal((100, 1), F32)
    assert x.shape == eps.shape == (100, 1) and x.dtype == eps.dtype == F32
    assert x[:3, 0].tolist() == f32([0.8822692632675171, 0.9150039553642273,
                                     0.38286375999450684]).tolist()  # fmt: skip
    assert eps[:3, 0].tolist() == f32([0.640755295753479, 0.5832474231719971,
                                       1.0669267177581787]).tolist()  # fmt: skip
    assert eps[-1, 0] == F32(-0.0335015207529068)
    # sha256 of all 100 float32 values as torch returns them (x86-64 AVX2/AVX512 kernels)
    assert sha(x) == "a2f1029a3f45f5d5" and sha(eps) == "d69cd78d9997d7ec"
    assert g.normal((1,), F32)[0] == F32(-1.2842116355895996)
    assert g.normal((1,), F32)[0] == F32(-0.6916776895523071)


def test_default_seed_is_torchs() -> None:
    g = Generator()
    assert g.initial_seed() == DEFAULT_SEED == 67280421310721
    # torch.randn(2, generator=torch.Generator())
    assert g.normal((2,), F32).tolist() == f32([0.9772631525993347, 1.1568583250045776]).tolist()


# -- behaviour that needs no reference ------------------------------------------------------


def test_seeds_wrap_like_torch() -> None:
    assert Generator().manual_seed(-1).initial_seed() == 2**64 - 1
    assert Generator().manual_seed(2**63).initial_seed() == 2**63
    for bad in (2**64, -(2**63) - 1):
        with pytest.raises(ValueError):
            Generator().manual_seed(bad)
    # only the low 32 bits reach MT19937, as in torch
    assert Generator().manual_seed(2**32 + 5).uniform((4,)).tolist() == (
        Generator().manual_seed(5).uniform((4,)).tolist()
    )


DRAWS: list[Callable[[Generator], np.ndarray]] = [
    lambda g: g.normal((1,), F32),
    lambda g: g.normal((3,), F64),
    lambda g: g.normal((17,), F32),
    lambda g: g.normal((40,), F64),
    lambda g: g.uniform((5,), F32),
    lambda g: g.uniform((2, 3), F64, -2.0, 3.0),
    lambda g: g.normal((5,), F32, 1.5, 0.2),
    lambda g: g.randint(-5, 5, (7,)),
    lambda g: g.randint(0, 2**40, (3,)),
    lambda g: g.randperm(20),
    lambda g: g.bernoulli((10,), 0.3),
    lambda g: g.normal((1,), F32),
]


def draw_everything(g: Generator) -> list[np.ndarray]:
    return [draw(g) for draw in DRAWS]


def test_reproducible_and_reseedable() -> None:
    g = Generator().manual_seed(123)
    first = draw_everything(g)
    again = draw_everything(g.manual_seed(123))
    assert all(a.tobytes() == b.tobytes() for a, b in zip(first, again))
    other = draw_everything(Generator().manual_seed(124))
    assert first[2].tobytes() != other[2].tobytes()


def test_two_generators_are_independent() -> None:
    solo = draw_everything(Generator().manual_seed(7))
    a, b = Generator().manual_seed(7), Generator().manual_seed(8)
    interleaved = []
    for draw in DRAWS:  # b's draws (and its cached normal) between a's change nothing in a
        b.normal((1,), F32)
        interleaved.append(draw(a))
        draw(b)
    assert all(x.tobytes() == y.tobytes() for x, y in zip(solo, interleaved))


def test_state_round_trip_keeps_cached_normal() -> None:
    g = Generator().manual_seed(3)
    g.normal((1,), F32)  # leaves the Box-Muller partner cached
    state = g.get_state()
    assert isinstance(state, bytes) and len(state) == 5056
    expected = draw_everything(g)
    h = Generator()
    h.set_state(state)
    assert h.initial_seed() == 3 and h.get_state() == state
    assert all(a.tobytes() == b.tobytes() for a, b in zip(expected, draw_everything(h)))


def test_shapes_dtypes_and_ranges() -> None:
    g = Generator().manual_seed(0)
    assert g.normal((), F32).shape == () and g.normal((2, 0), F64).shape == (2, 0)
    assert g.normal((4, 5), np.dtype("float64")).dtype == F64
    u = g.uniform((10_000,), F32, -2.0, 3.0)
    assert u.dtype == F32 and u.min() >= -2.0 and u.max() < 3.0
    r = g.randint(-3, 4, (10_000,))
    assert r.dtype == np.int64 and set(r.tolist()) == set(range(-3, 4))
    assert sorted(g.randperm(1000).tolist()) == list(range(1000))
    assert g.randperm(0).tolist() == [] and g.randperm(1).tolist() == [0]
    m = g.bernoulli((100_000,), 0.25)
    assert m.dtype == np.bool_ and abs(m.mean() - 0.25) < 0.01
    n = g.normal((100_000,), F32, 2.0, 0.5)
    assert abs(n.mean() - 2.0) < 0.01 and abs(n.std() - 0.5) < 0.01
    with pytest.raises(TypeError):
        g.normal((2,), np.int64)
    with pytest.raises(ValueError):
        g.randint(5, 5, (1,))


# -- bit-for-bit against torch ----------------------------------------------------------------


def torch_kernels_are_x86() -> bool:
    """Fused multiply-adds and the Cephes float32 Box-Muller exist in torch's AVX2/AVX512
    kernels only; ATEN_CPU_CAPABILITY=default and non-x86 builds differ (see generator.py)."""
    torch = pytest.importorskip("torch")
    return torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512")


def intel_mkl_bernoulli() -> bool:
    """torch on Intel CPUs with MKL draws bernoulli_(p) through MKL, which we do not follow."""
    cpuinfo = pathlib.Path("/proc/cpuinfo")
    return not cpuinfo.exists() or "GenuineIntel" in cpuinfo.read_text()


def assert_same(ours: np.ndarray, theirs, what: str) -> None:
    theirs = theirs.numpy()
    assert ours.dtype == theirs.dtype and ours.shape == theirs.shape, what
    assert ours.tobytes() == theirs.tobytes(), what  # bit for bit: no ulp tolerance


SEEDS = [0, 1, 42, 2024, 2**32 + 9, 2**63 + 1, -7, DEFAULT_SEED]


@pytest.mark.parametrize("seed", SEEDS)
def test_stream_matches_torch(seed: int) -> None:
    """Draws whose result does not depend on torch's SIMD kernels."""
    torch = pytest.importorskip("torch")
    g, t = Generator().manual_seed(seed), torch.Generator().manual_seed(seed)
    for shape in [(1,), (1,), (3,), (), (15,), (5, 3)]:  # per-element path, cached partner
        assert_same(g.normal(shape, F32), torch.randn(shape, generator=t), f"randn{shape}")
    for n in [1, 16, 17, 100, 1001]:
        assert_same(g.normal((n,), F64), torch.randn(n, generator=t, dtype=torch.float64), "f64")
        assert_same(g.uniform((n,), F32), torch.rand(n, generator=t), "rand")
        assert_same(g.uniform((n,), F64), torch.rand(n, generator=t, dtype=torch.float64), "r64")
    for low, high in [(0, 10), (-5, 5), (0, 2**28 - 1), (0, 2**28), (-(2**40), 2**40)]:
        assert_same(g.randint(low, high, (4, 3)), torch.randint(low, high, (4, 3), generator=t),
                    f"randint({low}, {high})")  # fmt: skip
    for n in [0, 1, 2, 10, 5000]:
        assert_same(g.randperm(n), torch.randperm(n, generator=t), f"randperm({n})")
    assert g.get_state() == t.get_state().numpy().tobytes()


@pytest.mark.parametrize("seed", SEEDS)
def test_x86_kernels_match_torch(seed: int) -> None:
    """float32 randn (AVX2 Box-Muller) and fused uniform/normal bounds: exact, 0 ulp."""
    torch = pytest.importorskip("torch")
    if not torch_kernels_are_x86():
        pytest.skip("torch is not running its AVX2/AVX512 kernels")
    g, t = Generator().manual_seed(seed), torch.Generator().manual_seed(seed)
    for shape in [(16,), (17,), (80, 1), (31,), (100, 1), (1000, 3), (12345,)]:
        assert_same(g.normal(shape, F32), torch.randn(shape, generator=t), f"randn{shape}")
        assert_same(g.normal((1,), F32), torch.randn(1, generator=t), "cached partner")
    for dtype, tdtype in [(F32, torch.float32), (F64, torch.float64)]:
        for n in [1, 5, 16, 40, 999]:
            for mean, std in [(0.3, 1.7), (-2.5, 0.1), (5.0, 1.0)]:
                theirs = torch.empty(n, dtype=tdtype).normal_(mean, std, generator=t)
                assert_same(g.normal((n,), dtype, mean, std), theirs, f"normal {mean} {std}")
            for low, high in [(-3.7, 5.1), (0.3, 0.9), (-1e3, 1e-3)]:
                theirs = torch.empty(n, dtype=tdtype).uniform_(low, high, generator=t)
                assert_same(g.uniform((n,), dtype, low, high), theirs, f"uniform {low} {high}")
    assert g.get_state() == t.get_state().numpy().tobytes()


def test_bernoulli_matches_torch() -> None:
    torch = pytest.importorskip("torch")
    if intel_mkl_bernoulli():
        pytest.skip("torch draws bernoulli_ through MKL on Intel CPUs")
    g, t = Generator().manual_seed(5), torch.Generator().manual_seed(5)
    for p in [0.0, 0.1, 0.5, 0.9, 1.0]:
        theirs = torch.empty(50).bernoulli_(p, generator=t).bool()
        assert_same(g.bernoulli((50,), p), theirs, f"bernoulli {p}")


def test_torch_state_round_trips() -> None:
    torch = pytest.importorskip("torch")
    t = torch.Generator().manual_seed(9)
    torch.randn(3, generator=t)  # leaves a cached normal in torch's state
    g = Generator()
    g.set_state(t.get_state().numpy().tobytes())
    assert_same(g.normal((5,), F32), torch.randn(5, generator=t), "after set_state")
    g.normal((1,), F32)
    t.set_state(torch.frombuffer(bytearray(g.get_state()), dtype=torch.uint8))
    assert_same(g.normal((5,), F32), torch.randn(5, generator=t), "torch from our state")
