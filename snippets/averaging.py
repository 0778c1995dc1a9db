"""Chapters 1-3: the average of every token with the tokens before it.

Four ways to compute the same thing, a *prefix mean* (also called a causal or
running mean) over the time dimension of ``x``::

    out[..., t, :] == x[..., : t + 1, :].mean(dim=-2)

Every function accepts ``x`` of shape ``(B, T, C)`` (batch, time, channels) or
``(T, C)``, returns a new tensor of the same shape, dtype and device, never
modifies ``x`` and is differentiable.

Each function is self-contained (it needs ``import torch`` and nothing else), so
the section between its ``--8<--`` markers can be copied alone into a project.
That is also why the input checks are written out in each of them.
"""

__all__ = [
    "causal_mean_weights",
    "prefix_mean_loop",
    "prefix_mean_matmul",
    "prefix_mean_softmax",
    "prefix_mean_cumsum",
]

# --8<-- [start:imports]
import torch

# --8<-- [end:imports]


# --8<-- [start:causal_mean_weights]
def causal_mean_weights(
    T: int, *, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None
) -> torch.Tensor:
    """The (T, T) matrix whose row t averages positions 0..t.

    Row ``t`` holds ``1 / (t + 1)`` in columns ``0..t`` and ``0`` after them,
    so ``causal_mean_weights(T) @ x`` is the prefix mean of ``x``.

    >>> causal_mean_weights(3)
    tensor([[1.0000, 0.0000, 0.0000],
            [0.5000, 0.5000, 0.0000],
            [0.3333, 0.3333, 0.3333]])

    Raises:
        TypeError: ``T`` is not an int, or ``dtype`` is not a floating dtype.
        ValueError: ``T`` is smaller than 1, or ``device`` is not available.
    """
    if isinstance(T, bool) or not isinstance(T, int):
        raise TypeError(f"causal_mean_weights: T must be an int, got {type(T).__name__}")
    if T < 1:
        raise ValueError(f"causal_mean_weights: T must be >= 1, got {T}")
    if dtype not in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
        raise TypeError(
            f"causal_mean_weights: dtype must be float16, bfloat16, float32 or float64, got {dtype}"
        )
    try:
        ones = torch.ones(T, T, dtype=dtype, device=device)
    except (RuntimeError, AssertionError, TypeError) as exc:  # not a device, or not in this build
        raise ValueError(
            f"causal_mean_weights: device {device!r} is not usable here: {exc}"
        ) from None
    tril = torch.tril(ones)  # 1 on and below the diagonal
    return tril / tril.sum(dim=1, keepdim=True)  # each row sums to 1
# --8<-- [end:causal_mean_weights]


# --8<-- [start:prefix_mean_loop]
def prefix_mean_loop(x: torch.Tensor) -> torch.Tensor:
    """Prefix mean with explicit loops over batch and time: slow, but obvious.

    >>> x = torch.tensor([[2.0, 0.0], [4.0, 6.0], [6.0, 3.0]])  # (T, C) = (3, 2)
    >>> prefix_mean_loop(x)
    tensor([[2., 0.],
            [3., 3.],
            [4., 3.]])

    Raises:
        TypeError: ``x`` is not a floating-point tensor.
        ValueError: ``x`` is not of shape (B, T, C) or (T, C), or T is 0.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"prefix_mean_loop: x must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() not in (2, 3) or x.shape[-2] == 0:
        raise ValueError(
            f"prefix_mean_loop: x must have shape (B, T, C) or (T, C) with T >= 1, "
            f"got shape {tuple(x.shape)}"
        )
    if x.dtype not in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
        raise TypeError(
            f"prefix_mean_loop: x must be float16, bfloat16, float32 or float64, got {x.dtype}"
        )
    xb = x if x.dim() == 3 else x.unsqueeze(0)  # (B, T, C)
    B, T, C = xb.shape
    out = torch.empty_like(xb)
    for b in range(B):
        for t in range(T):
            out[b, t] = xb[b, : t + 1].mean(dim=0)  # (C,)
    return out if x.dim() == 3 else out.squeeze(0)
# --8<-- [end:prefix_mean_loop]


# --8<-- [start:prefix_mean_matmul]
def prefix_mean_matmul(x: torch.Tensor) -> torch.Tensor:
    """Prefix mean as one matrix product with normalised lower-triangular weights.

    >>> x = torch.tensor([[2.0, 0.0], [4.0, 6.0], [6.0, 3.0]])
    >>> prefix_mean_matmul(x)
    tensor([[2., 0.],
            [3., 3.],
            [4., 3.]])

    Raises:
        TypeError: ``x`` is not a floating-point tensor.
        ValueError: ``x`` is not of shape (B, T, C) or (T, C), T is 0, or ``x``
            holds inf or nan (the product would spread them to earlier positions).
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"prefix_mean_matmul: x must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() not in (2, 3) or x.shape[-2] == 0:
        raise ValueError(
            f"prefix_mean_matmul: x must have shape (B, T, C) or (T, C) with T >= 1, "
            f"got shape {tuple(x.shape)}"
        )
    if x.dtype not in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
        raise TypeError(
            f"prefix_mean_matmul: x must be float16, bfloat16, float32 or float64, got {x.dtype}"
        )
    if not torch.isfinite(x).all():  # a zero weight times inf is nan: it would reach the past
        raise ValueError(f"prefix_mean_matmul: x must be finite, got inf or nan values")
    T = x.shape[-2]
    wei = torch.tril(torch.ones(T, T, dtype=x.dtype, device=x.device))  # (T, T)
    wei = wei / wei.sum(dim=1, keepdim=True)
    return wei @ x  # (T, T) @ (B, T, C) -> (B, T, C): broadcast over B
# --8<-- [end:prefix_mean_matmul]


# --8<-- [start:prefix_mean_softmax]
def prefix_mean_softmax(x: torch.Tensor) -> torch.Tensor:
    """Prefix mean from equal scores: mask the future with -inf, then softmax.

    >>> x = torch.tensor([[2.0, 0.0], [4.0, 6.0], [6.0, 3.0]])
    >>> prefix_mean_softmax(x)
    tensor([[2., 0.],
            [3., 3.],
            [4., 3.]])

    Raises:
        TypeError: ``x`` is not a floating-point tensor.
        ValueError: ``x`` is not of shape (B, T, C) or (T, C), T is 0, or ``x``
            holds inf or nan (the product would spread them to earlier positions).
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"prefix_mean_softmax: x must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() not in (2, 3) or x.shape[-2] == 0:
        raise ValueError(
            f"prefix_mean_softmax: x must have shape (B, T, C) or (T, C) with T >= 1, "
            f"got shape {tuple(x.shape)}"
        )
    if x.dtype not in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
        raise TypeError(
            f"prefix_mean_softmax: x must be float16, bfloat16, float32 or float64, got {x.dtype}"
        )
    if not torch.isfinite(x).all():  # a zero weight times inf is nan: it would reach the past
        raise ValueError(f"prefix_mean_softmax: x must be finite, got inf or nan values")
    T = x.shape[-2]
    future = torch.triu(torch.ones(T, T, dtype=torch.bool, device=x.device), diagonal=1)
    scores = torch.zeros(T, T, dtype=x.dtype, device=x.device)  # every token equally relevant
    scores = scores.masked_fill(future, float("-inf"))  # ...except the future: exp(-inf) = 0
    wei = torch.softmax(scores, dim=-1)  # (T, T), rows sum to 1
    return wei @ x  # (B, T, C)
# --8<-- [end:prefix_mean_softmax]


# --8<-- [start:prefix_mean_cumsum]
def prefix_mean_cumsum(x: torch.Tensor) -> torch.Tensor:
    """Prefix mean in O(T): a running sum divided by the number of terms.

    The sum is accumulated in at least float32, so bfloat16 and float16 inputs
    do not lose their running totals to rounding.

    >>> x = torch.tensor([[2.0, 0.0], [4.0, 6.0], [6.0, 3.0]])
    >>> prefix_mean_cumsum(x)
    tensor([[2., 0.],
            [3., 3.],
            [4., 3.]])

    Raises:
        TypeError: ``x`` is not a floating-point tensor.
        ValueError: ``x`` is not of shape (B, T, C) or (T, C), or T is 0.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"prefix_mean_cumsum: x must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() not in (2, 3) or x.shape[-2] == 0:
        raise ValueError(
            f"prefix_mean_cumsum: x must have shape (B, T, C) or (T, C) with T >= 1, "
            f"got shape {tuple(x.shape)}"
        )
    if x.dtype not in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
        raise TypeError(
            f"prefix_mean_cumsum: x must be float16, bfloat16, float32 or float64, got {x.dtype}"
        )
    T = x.shape[-2]
    acc = torch.promote_types(x.dtype, torch.float32)
    sums = x.cumsum(dim=-2, dtype=acc)  # (B, T, C) running totals
    counts = torch.arange(1, T + 1, dtype=acc, device=x.device).unsqueeze(-1)  # (T, 1)
    return (sums / counts).to(x.dtype)
# --8<-- [end:prefix_mean_cumsum]
