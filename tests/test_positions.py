"""Order and position: attention ignores the order of the past; RoPE and sinusoids, checked."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn
from hypothesis import given
from hypothesis import strategies as st

from snippets.attention import Head, MultiHeadAttention, causal_attention
from snippets.averaging import prefix_mean_cumsum, prefix_mean_matmul
from snippets.positions import apply_rotary, sinusoidal_positions
from tests.marks import needs_cuda
from tests.refusals import assert_refuses

# ---- references, written as differently from the module as possible ----


def rotary_complex(x, positions, base=10000.0):
    """RoPE as complex multiplication in float64.

    Pair i is the complex number x[2i] + i x[2i+1]; position m multiplies it by e^{i m theta_i}.
    """
    xd = x.double()
    D = x.shape[-1]
    z = torch.view_as_complex(xd.reshape(*x.shape[:-1], D // 2, 2).contiguous())  # (..., T, D/2)
    theta = torch.tensor([base ** (-2 * i / D) for i in range(D // 2)], dtype=torch.float64)
    turn = torch.polar(
        torch.ones(len(positions), D // 2, dtype=torch.float64),
        positions.double().unsqueeze(-1) * theta,
    )  # (T, D/2)
    return torch.view_as_real(z * turn).flatten(-2)  # (..., T, D)


def rotary_matrix(m, D, base=10000.0):
    """The explicit (D, D) block-diagonal rotation of position m, in float64, with math.cos/sin."""
    R = torch.zeros(D, D, dtype=torch.float64)
    for i in range(D // 2):
        a = m * base ** (-2 * i / D)
        R[2 * i : 2 * i + 2, 2 * i : 2 * i + 2] = torch.tensor(
            [[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]], dtype=torch.float64
        )
    return R


def sinusoid_loops(T, C, base=10000.0):
    """Vaswani et al. section 3.5, one entry at a time with math.sin/cos."""
    pe = torch.empty(T, C, dtype=torch.float64)
    for p in range(T):
        for i in range(C // 2):
            pe[p, 2 * i] = math.sin(p / base ** (2 * i / C))
            pe[p, 2 * i + 1] = math.cos(p / base ** (2 * i / C))
    return pe


@st.composite
def rotary_inputs(draw, dtypes=(torch.float32, torch.float64)):
    """x of shape (..., T, D) with D even, positions (or None), and a base."""
    lead = draw(st.lists(st.integers(1, 3), max_size=2))
    T, D = draw(st.integers(1, 12)), 2 * draw(st.integers(1, 8))
    dtype = draw(st.sampled_from(dtypes))
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**32 - 1)))
    x = torch.randn(*lead, T, D, generator=g, dtype=dtype)
    positions = draw(
        st.one_of(
            st.none(),
            st.lists(st.integers(-2000, 2000), min_size=T, max_size=T).map(torch.tensor),
        )
    )
    base = draw(st.sampled_from([10000.0, 100.0, 2.0, 1.0, 0.5, 500000]))
    return x, positions, base


# ---- attention does not see order ----


def shuffled_past(x, t, perm):
    y = x.clone()
    y[:, :t] = x[:, perm]
    return y


MODELS = {
    "prefix_mean_cumsum": lambda C: prefix_mean_cumsum,
    "prefix_mean_matmul": lambda C: prefix_mean_matmul,
    "Head": lambda C: Head(C, 3, 16).double(),
    "MultiHeadAttention": lambda C: MultiHeadAttention(C, 2, 16).double(),
}


@given(
    st.sampled_from(sorted(MODELS)),
    st.integers(2, 16),
    st.integers(0, 2**16),
    st.randoms(use_true_random=False),
)
def test_shuffling_the_past_leaves_the_output_at_t_unchanged(name, T, seed, rnd):
    torch.manual_seed(seed)
    model = MODELS[name](4)
    t = rnd.randrange(1, T)  # a position with a past to shuffle
    perm = list(range(t))
    rnd.shuffle(perm)
    x = torch.randn(2, T, 4, dtype=torch.float64)
    y = shuffled_past(x, t, torch.tensor(perm))
    with torch.no_grad():
        torch.testing.assert_close(model(y)[:, t], model(x)[:, t], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", ["Head", "MultiHeadAttention"])
def test_position_embeddings_break_the_symmetry(name):
    torch.manual_seed(0)
    model = MODELS[name](4)
    T, t = 8, 7
    x = torch.randn(2, T, 4, dtype=torch.float64)
    y = shuffled_past(x, t, torch.tensor([3, 0, 6, 1, 5, 2, 4]))
    pos = torch.arange(T)
    wpe = nn.Embedding(16, 4).double()
    with torch.no_grad():
        torch.testing.assert_close(model(y)[:, t], model(x)[:, t])  # without: the same
        for pe in (wpe(pos), sinusoidal_positions(T, 4, dtype=torch.float64)):
            assert not torch.allclose(model(y + pe)[:, t], model(x + pe)[:, t])


def test_rope_in_a_head_breaks_the_symmetry_and_ignores_a_common_shift():
    torch.manual_seed(0)
    head = Head(4, 4, 16).double()
    T, t = 8, 7
    x = torch.randn(2, T, 4, dtype=torch.float64)
    y = shuffled_past(x, t, torch.tensor([3, 0, 6, 1, 5, 2, 4]))

    def rope_head(x, pos):
        q, k, v = head.query(x), head.key(x), head.value(x)
        return causal_attention(apply_rotary(q, pos), apply_rotary(k, pos), v)

    pos = torch.arange(T)
    with torch.no_grad():
        assert not torch.allclose(rope_head(y, pos)[:, t], rope_head(x, pos)[:, t])
        for shift in (1, 100, -37, 10_000):
            torch.testing.assert_close(
                rope_head(x, pos + shift), rope_head(x, pos), rtol=1e-9, atol=1e-9
            )


def test_two_stacked_prefix_means_do_see_order():
    x = torch.randn(1, 6, 3, dtype=torch.float64)
    y = shuffled_past(x, 5, torch.tensor([3, 0, 4, 1, 2]))
    twice = lambda a: prefix_mean_cumsum(prefix_mean_cumsum(a))
    assert not torch.allclose(twice(x)[:, 5], twice(y)[:, 5])


# ---- apply_rotary ----


@given(rotary_inputs())
def test_apply_rotary_is_complex_multiplication(case):
    x, positions, base = case
    got = apply_rotary(x, positions, base=base)
    assert got.shape == x.shape and got.dtype == x.dtype and got.device == x.device
    pos = torch.arange(x.shape[-2]) if positions is None else positions
    exact = rotary_complex(x, pos, base)
    # An angle of size a is known to about eps * a in x's dtype: the error grows with it.
    D = x.shape[-1]
    largest = pos.abs().double().unsqueeze(-1) * max(1.0, base ** (-(D - 2) / D))  # (T, 1)
    norm = exact.unflatten(-1, (-1, 2)).norm(dim=-1).repeat_interleave(2, dim=-1)  # (..., T, D)
    bound = 4 * torch.finfo(x.dtype).eps * (1 + largest) * norm
    assert ((got.double() - exact).abs() <= bound).all()


@given(
    st.integers(1, 6),
    st.lists(st.integers(-500, 500), min_size=1, max_size=6),
    st.integers(0, 2**16),
)
def test_apply_rotary_is_the_block_diagonal_rotation_matrix(half, positions, seed):
    D = 2 * half
    x = torch.randn(
        len(positions), D, dtype=torch.float64, generator=torch.Generator().manual_seed(seed)
    )
    got = apply_rotary(x, torch.tensor(positions), base=100.0)
    want = torch.stack([rotary_matrix(m, D, 100.0) @ x[i] for i, m in enumerate(positions)])
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


@given(
    st.integers(1, 8),
    st.integers(-1000, 1000),
    st.integers(-1000, 1000),
    st.integers(-5000, 5000),
    st.sampled_from([10000.0, 100.0, 1.0]),
    st.integers(0, 2**16),
)
def test_score_depends_only_on_the_offset(half, m, n, s, base, seed):
    # apply_rotary(q, [m]) . apply_rotary(k, [n])
    #     == apply_rotary(q, [m + s]) . apply_rotary(k, [n + s])
    g = torch.Generator().manual_seed(seed)
    q, k = torch.randn(2, 1, 2 * half, dtype=torch.float64, generator=g).unbind(0)  # (1, D) each

    def score(a, b):
        return (
            apply_rotary(q, torch.tensor([a]), base=base)
            @ apply_rotary(k, torch.tensor([b]), base=base).T
        ).item()

    assert score(m, n) == pytest.approx(score(m + s, n + s), rel=1e-9, abs=1e-9)
    # and it is the score of the unrotated query with the key turned by n - m
    turned = rotary_matrix(n - m, 2 * half, base) @ k[0]
    assert score(m, n) == pytest.approx((q[0] @ turned).item(), rel=1e-9, abs=1e-9)


def test_the_pages_worked_example():
    from snippets.figures import rotary_scores  # needs matplotlib, which the GPU runs may lack

    # q = (1, 2), k = (3, -1): the score is cos(m - n) - 7 sin(m - n); q . k = 1 on the diagonal.
    for T in (1, 5, 8):
        S = rotary_scores(T).double()
        d = torch.arange(T).unsqueeze(-1) - torch.arange(T)  # (T, T): m - n
        torch.testing.assert_close(S, d.double().cos() - 7 * d.double().sin(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(rotary_scores(5).diagonal(), torch.ones(5))  # q . k = 1


def test_apply_rotary_keeps_norms_and_defaults_to_arange():
    x = torch.randn(3, 2, 10, 8, dtype=torch.float64)
    out = apply_rotary(x)
    torch.testing.assert_close(out.norm(dim=-1), x.norm(dim=-1), rtol=1e-12, atol=1e-12)
    assert torch.equal(out, apply_rotary(x, torch.arange(10)))
    assert torch.equal(
        apply_rotary(x, torch.zeros(10, dtype=torch.int64)), x
    )  # position 0: no turn
    for dtype in (torch.int32, torch.int16, torch.uint8):  # any integer dtype
        assert torch.equal(apply_rotary(x, torch.arange(10, dtype=dtype)), out)


def test_apply_rotary_position_zero_and_one():
    x = torch.tensor([[1.0, 0.0, 1.0, 0.0]] * 2)
    out = apply_rotary(x, base=100.0)  # frequencies 1 and 1/10
    want = torch.tensor(
        [[1.0, 0.0, 1.0, 0.0], [math.cos(1), math.sin(1), math.cos(0.1), math.sin(0.1)]]
    )
    torch.testing.assert_close(out, want)


def within_one_rounding(got, exact, dtype):
    """|got - exact| <= eps(dtype) * the length of the pair each entry belongs to."""
    norm = exact.unflatten(-1, (-1, 2)).norm(dim=-1).repeat_interleave(2, dim=-1)  # (..., T, D)
    return ((got.double() - exact).abs() <= torch.finfo(dtype).eps * norm).all()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_is_rotated_in_float32_and_rounded_once(dtype):
    # Large positions: in bfloat16 itself, position 1001 would be 1000, and in float16 the
    # angle 1063 * theta would be off by up to about half a radian.
    x = torch.randn(4, 64, 16).to(dtype)
    positions = torch.arange(1000, 1064)
    got = apply_rotary(x, positions)
    assert got.dtype == dtype
    exact = rotary_complex(x, positions)  # float64, from the rounded inputs
    assert within_one_rounding(got, exact, dtype)
    # The same check tells a rotation done in the low dtype apart: it can fail.
    D = x.shape[-1]
    theta = 10000.0 ** (-torch.arange(0, D, 2, dtype=dtype) / D)
    angle = positions.to(dtype).unsqueeze(-1) * theta
    x0, x1 = x[..., 0::2], x[..., 1::2]
    naive = torch.stack(
        [x0 * angle.cos() - x1 * angle.sin(), x0 * angle.sin() + x1 * angle.cos()], -1
    )
    assert not within_one_rounding(naive.flatten(-2), exact, dtype)


def test_apply_rotary_gradgradcheck():  # the first derivative: tests/test_contracts.py
    x = torch.randn(2, 5, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradgradcheck(lambda a: apply_rotary(a), (x,))


def test_apply_rotary_gradient_is_the_inverse_rotation():
    # The map is orthogonal, so the gradient of <apply_rotary(x), g> with respect to x is R^T g.
    x = torch.randn(7, 4, dtype=torch.float64, requires_grad=True)
    g = torch.randn(7, 4, dtype=torch.float64)
    (apply_rotary(x) * g).sum().backward()
    torch.testing.assert_close(x.grad, apply_rotary(g, -torch.arange(7)))


def test_a_non_finite_value_stays_at_its_position():
    x = torch.randn(2, 9, 4)
    for bad in (float("inf"), float("nan")):
        y = x.clone()
        y[:, 4, 1] = bad
        a, b = apply_rotary(x), apply_rotary(y)
        rows = [r for r in range(9) if r != 4]
        assert torch.equal(a[:, rows], b[:, rows])
        assert not b[:, 4].isfinite().all()


# ---- sinusoidal_positions ----


@pytest.mark.parametrize(
    ("T", "C", "base"), [(1, 2, 10000.0), (7, 6, 10000.0), (50, 16, 100.0), (3, 4, 1.0)]
)
def test_sinusoids_match_the_formula(T, C, base):
    got = sinusoidal_positions(T, C, base=base, dtype=torch.float64)
    torch.testing.assert_close(got, sinusoid_loops(T, C, base), rtol=1e-12, atol=1e-12)
    f32 = sinusoidal_positions(T, C, base=base)
    assert f32.dtype == torch.float32 and f32.shape == (T, C)
    torch.testing.assert_close(f32, got.float(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_sinusoids_in_low_precision_are_rounded_once(dtype):
    got = sinusoidal_positions(200, 8, dtype=dtype)
    assert got.dtype == dtype
    # Entries lie in [-1, 1]: one rounding is at most eps.
    want = sinusoid_loops(200, 8)
    torch.testing.assert_close(got.double(), want, rtol=0, atol=torch.finfo(dtype).eps)
    # Angles computed in the low dtype itself miss that bound: the check can fail.
    angle = torch.arange(200, dtype=dtype).unsqueeze(-1) * 10000.0 ** (
        -torch.arange(0, 8, 2, dtype=dtype) / 8
    )
    naive = torch.stack([angle.sin(), angle.cos()], dim=-1).flatten(-2)
    assert not torch.allclose(naive.double(), want, rtol=0, atol=torch.finfo(dtype).eps)


@given(st.integers(1, 40), st.integers(1, 8), st.integers(-20, 20))
def test_a_fixed_offset_is_a_rotation_of_the_sinusoid_rows(T, half, k):
    # Vaswani et al.: PE[p + k] is a linear function of PE[p]. It is apply_rotary with position -k.
    C = 2 * half
    P = sinusoidal_positions(T + 40, C, base=100.0, dtype=torch.float64)
    rows = torch.arange(20, 20 + T)  # p, with p + k inside the table
    moved = apply_rotary(P[rows], torch.full((T,), -k), base=100.0)
    torch.testing.assert_close(moved, P[rows + k], rtol=1e-10, atol=1e-10)


# ---- bad input ----


@pytest.mark.parametrize(("T", "error"), [(0, ValueError), (17, ValueError), (4.0, TypeError)])
def test_rotary_scores_figure_refuses_bad_sizes(T, error):
    from snippets.figures import rotary_scores_svg  # needs matplotlib, which the GPU runs may lack

    with pytest.raises(error, match="rotary_scores: T must be"):
        rotary_scores_svg(T)


# (args, kwargs, exception, argument named, what the message shows it got)
BAD_ROTARY = [
    (([1.0, 2.0],), {}, TypeError, "x", "got list"),
    ((torch.ones(3, 4, dtype=torch.int64),), {}, TypeError, "x", "got torch.int64"),
    ((torch.ones(4),), {}, ValueError, "x", "got shape (4,)"),
    ((torch.ones(3, 5),), {}, ValueError, "x", "got shape (3, 5)"),
    ((torch.ones(3, 0),), {}, ValueError, "x", "got shape (3, 0)"),
    ((torch.ones(2, 0, 4),), {}, ValueError, "x", "got shape (2, 0, 4)"),
    ((torch.ones(3, 4), [0, 1, 2]), {}, TypeError, "positions", "got list"),
    ((torch.ones(3, 4), 2), {}, TypeError, "positions", "got int"),
    ((torch.ones(3, 4), torch.arange(3.0)), {}, TypeError, "positions", "got torch.float32"),
    ((torch.ones(3, 4), torch.ones(3, dtype=torch.bool)), {}, TypeError, "positions", "got torch.bool"),
    ((torch.ones(3, 4), torch.arange(4)), {}, ValueError, "positions", "got shape (4,)"),
    ((torch.ones(2, 3, 4), torch.arange(3).unsqueeze(0)), {}, ValueError, "positions", "got shape (1, 3)"),
    ((torch.ones(3, 4), torch.tensor(1)), {}, ValueError, "positions", "got shape ()"),
    ((torch.ones(3, 4), torch.arange(3, device="meta")), {}, ValueError, "positions",
     "positions is on meta but x is on cpu"),
    ((torch.ones(3, 4),), {"base": "10000"}, TypeError, "base", "got str"),
    ((torch.ones(3, 4),), {"base": True}, TypeError, "base", "got bool"),
    ((torch.ones(3, 4),), {"base": torch.tensor(2.0)}, TypeError, "base", "got Tensor"),
    ((torch.ones(3, 4),), {"base": 0}, ValueError, "base", "got 0"),
    ((torch.ones(3, 4),), {"base": -2.0}, ValueError, "base", "got -2.0"),
    ((torch.ones(3, 4),), {"base": float("nan")}, ValueError, "base", "got nan"),
    ((torch.ones(3, 4),), {"base": float("inf")}, ValueError, "base", "got inf"),
]


@pytest.mark.parametrize(("args", "kwargs", "error", "arg", "got"), BAD_ROTARY, ids=[g for *_, g in BAD_ROTARY])
def test_apply_rotary_refuses_bad_input_clearly(args, kwargs, error, arg, got):
    assert_refuses(error, arg, apply_rotary, *args, got=got, **kwargs)


BAD_SINUSOIDS = [
    ((3.0, 4), {}, TypeError, "T", "got float"),
    ((3, True), {}, TypeError, "C", "got bool"),
    ((0, 4), {}, ValueError, "T", "got 0"),
    ((3, -2), {}, ValueError, "C", "got -2"),
    ((3, 5), {}, ValueError, "C", "got 5"),
    ((3, 4), {"base": None}, TypeError, "base", "got NoneType"),
    ((3, 4), {"base": -1}, ValueError, "base", "got -1"),
    ((3, 4), {"dtype": torch.int32}, TypeError, "dtype", "got torch.int32"),
    ((3, 4), {"dtype": "float32"}, TypeError, "dtype", "got float32"),
    ((3, 4), {"device": "nonsense"}, ValueError, "device", "'nonsense'"),
]


@pytest.mark.parametrize(("args", "kwargs", "error", "arg", "got"), BAD_SINUSOIDS,
                         ids=[f"{a}-{g}" for *_, a, g in BAD_SINUSOIDS])
def test_sinusoidal_positions_refuses_bad_input_clearly(args, kwargs, error, arg, got):
    assert_refuses(error, arg, sinusoidal_positions, *args, got=got, **kwargs)


# ---- GPU ----


@needs_cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_apply_rotary_on_cuda_matches_cpu_at_large_positions(dtype):
    # tests/test_contracts.py compares the GPU with the CPU at positions 3 to 11; here at 500 on.
    x = torch.randn(2, 4, 33, 16).to(dtype)
    positions = torch.arange(500, 533)
    got = apply_rotary(x.cuda(), positions.cuda())
    assert got.device.type == "cuda" and got.dtype == dtype
    torch.testing.assert_close(got.cpu(), apply_rotary(x, positions), rtol=1e-2, atol=1e-2)
    assert_refuses(ValueError, "positions", apply_rotary, x.cuda(), positions, got="positions is on cpu but x is on cuda:0")


@pytest.mark.parametrize(("args", "kwargs", "arg", "got"), [
    ((2**40, 2), {}, "T * C", f"got T={2**40}, C=2"),  # was: blamed the device
    ((2**20, 2**20), {}, "T * C", f"got T={2**20}, C={2**20}"),  # was: a raw RuntimeError
    ((4, 4), dict(base=1e-50), "base", "base=1e-50 is out of range for torch.float32"),  # was: NaN
    ((4, 4), dict(base=1e-320, dtype=torch.float64), "base", "base=1e-320 is out of range for torch.float64"),
    ((4, 4), dict(base=1e300), "base", "base=1e+300 is out of range for torch.float32"),
    ((2**20, 2048), dict(base=1e-35), "base", "base=1e-35 is out of range"),  # the angles would overflow
])
def test_sinusoidal_positions_refuses_what_it_cannot_compute_naming_the_argument(args, kwargs, arg, got):
    assert_refuses(ValueError, arg, sinusoidal_positions, *args, got=got, **kwargs)


@pytest.mark.parametrize("base", [1e-30, 0.5, 1.0, 10000.0, 1e30])
def test_sinusoidal_positions_is_finite_for_every_base_it_accepts(base):
    assert sinusoidal_positions(16, 8, base=base).isfinite().all()


def test_a_small_base_that_float64_holds_is_accepted_there():
    assert sinusoidal_positions(4, 4, base=1e-50, dtype=torch.float64).isfinite().all()
