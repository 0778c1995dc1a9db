"""Chapter 7: order and position.

Attention by itself cannot tell where a token is: permute the past and the
output at ``t`` stays the same. Two ways to give it positions are here:

``sinusoidal_positions`` is the fixed signal of Vaswani et al. (2017, section
3.5), a ``(T, C)`` table added to the token features before the first layer.

``apply_rotary`` is the rotary position embedding (RoPE) of Su et al. (2021,
"RoFormer", arXiv:2104.09864): it turns each pair of channels ``(x[2i],
x[2i+1])`` of a query or key by an angle proportional to its position, so that
the score of a query at position ``m`` and a key at position ``n`` depends on
the positions only through ``m - n``.

Each definition needs only the imports below and the helpers of
``snippets/checks.py`` that it calls; a page shows them together, so the block can
be copied alone into a project that has torch.
"""

__all__ = ["apply_rotary", "sinusoidal_positions"]

from snippets.checks import (
    check_dtype_device,
    check_number,
    check_pairs,
    check_positions,
    check_sizes,
)

# --8<-- [start:imports]
import math

import torch

# --8<-- [end:imports]


# --8<-- [start:apply_rotary]
def apply_rotary(
    x: torch.Tensor, positions: torch.Tensor | None = None, *, base: float = 10000.0
) -> torch.Tensor:
    """Rotary position embedding (RoPE) of ``x``, shape (..., T, D) with D even.

    Channels ``2i`` and ``2i + 1`` form pair ``i``, a point in the plane; at
    position ``m`` it is turned by the angle ``m * base**(-2i / D)``. So the first
    pair turns by ``m`` radians, and later pairs ever more slowly. ``positions``
    gives each of the T rows its position (any integers, negative ones too);
    by default ``0, 1, ..., T - 1``. float16 and bfloat16 inputs are rotated in
    float32 and rounded once at the end; the result has the dtype of ``x``.

    >>> x = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])  # (T, D) = (3, 2)
    >>> apply_rotary(x)                                   # row m is (cos m, sin m)
    tensor([[ 1.0000,  0.0000],
            [ 0.5403,  0.8415],
            [-0.4161,  0.9093]])
    >>> apply_rotary(x[:1], torch.tensor([2]))            # position 2 alone
    tensor([[-0.4161,  0.9093]])

    Raises:
        TypeError: ``x`` is not a floating-point tensor, ``positions`` is not an
            integer tensor, or ``base`` is not a number.
        ValueError: ``x`` is not (..., T, D) with T >= 1 and an even D >= 2,
            ``positions`` is not of shape (T,) on the device of ``x``, or ``base``
            is not a finite number > 0.
    """
    check_pairs("apply_rotary", x)
    check_positions("apply_rotary", positions, x)
    check_number("apply_rotary", "base", base)
    T, D = x.shape[-2:]
    if positions is None:
        positions = torch.arange(T, device=x.device)
    acc = torch.promote_types(x.dtype, torch.float32)  # angles in at least float32
    theta = base ** (-torch.arange(0, D, 2, dtype=acc, device=x.device) / D)  # (D/2,)
    angle = positions.to(acc).unsqueeze(-1) * theta  # (T, D/2): pair i at position m
    cos, sin = angle.cos(), angle.sin()
    x0, x1 = x[..., 0::2].to(acc), x[..., 1::2].to(acc)  # (..., T, D/2) each
    out = torch.stack([x0 * cos - x1 * sin, x0 * sin + x1 * cos], dim=-1)  # (..., T, D/2, 2)
    return out.flatten(-2).to(x.dtype)  # (..., T, D), pairs back side by side


# --8<-- [end:apply_rotary]


# --8<-- [start:sinusoidal_positions]
MAX_VALUES = 2**31  # a table of at most 8 GiB in float32


def sinusoidal_positions(
    T: int,
    C: int,
    *,
    base: float = 10000.0,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """The fixed position signal of "Attention Is All You Need", shape (T, C), C even.

    Row ``p`` holds ``sin(p * w_i)`` in column ``2i`` and ``cos(p * w_i)`` in
    column ``2i + 1``, with ``w_i = base**(-2i / C)``. It is added to the token
    features: ``x + sinusoidal_positions(T, C)``.

    >>> sinusoidal_positions(3, 4, base=100.0)   # w = 1 and 1/10
    tensor([[ 0.0000,  1.0000,  0.0000,  1.0000],
            [ 0.8415,  0.5403,  0.0998,  0.9950],
            [ 0.9093, -0.4161,  0.1987,  0.9801]])

    Raises:
        TypeError: ``T``, ``C`` are not ints, ``base`` is not a number, or
            ``dtype`` is not a floating dtype.
        ValueError: ``T`` or ``C`` is < 1, ``C`` is odd, ``T * C`` is more than
            ``MAX_VALUES``, ``base`` is not a finite number > 0 or so small that the
            largest angle overflows, or ``device`` is not available.
    """
    check_sizes("sinusoidal_positions", T=T, C=C)
    if C % 2:
        raise ValueError(f"sinusoidal_positions: C must be even, got {C}")
    if T * C > MAX_VALUES:
        raise ValueError(
            f"sinusoidal_positions: T * C must be at most {MAX_VALUES}, got T={T}, C={C}"
        )
    check_number("sinusoidal_positions", "base", base)
    check_dtype_device("sinusoidal_positions", dtype, device)
    acc = torch.promote_types(dtype, torch.float32)
    # base itself, and the largest angle (T - 1) * base**(-(C - 2) / C), must fit in acc
    big = torch.finfo(acc).max
    top = math.log(max(T - 1, 1)) + max(0.0, -math.log(base) * (C - 2) / C)
    if not torch.finfo(acc).tiny <= base <= big or top >= math.log(big):
        raise ValueError(
            f"sinusoidal_positions: base={base} is out of range for {acc}; use base >= 1"
        )
    p = torch.arange(T, dtype=acc, device=device)  # (T,)
    w = base ** (-torch.arange(0, C, 2, dtype=acc, device=device) / C)  # (C/2,)
    angle = p.unsqueeze(-1) * w  # (T, C/2)
    return torch.stack([angle.sin(), angle.cos()], dim=-1).flatten(-2).to(dtype)  # (T, C)


# --8<-- [end:sinusoidal_positions]
