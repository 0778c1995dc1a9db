"""Chapters 1-3: the average of every token with the tokens before it.

Four ways to compute the same thing, a *prefix mean* (also called a causal or
running mean) over the time dimension of ``x``::

    out[..., t, :] == x[..., : t + 1, :].mean(dim=-2)

Every function accepts ``x`` of shape ``(B, T, C)`` (batch, time, channels) or
``(T, C)``, returns a new tensor of the same shape, dtype and device, never
modifies ``x`` and is differentiable.

Each definition checks its input with helpers of ``snippets/checks.py``; a page
shows the definition followed by the helpers it calls, so the block can be copied
alone into a project that has torch.
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
from snippets.checks import causal_matmul, check_dtype_device, check_sequence, check_sizes


# --8<-- [start:causal_mean_weights]
def causal_mean_weights(
    T: int, *, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None
) -> torch.Tensor:
    """The (T, T) matrix whose row t averages positions 0..t.

    Row ``t`` holds ``1 / (t + 1)`` in columns ``0..t`` and ``0`` after them,
    so ``causal_mean_weights(T) @ x`` is the prefix mean of ``x``.

    Examples:
        >>> causal_mean_weights(3)
        tensor([[1.0000, 0.0000, 0.0000],
                [0.5000, 0.5000, 0.0000],
                [0.3333, 0.3333, 0.3333]])

    Raises:
        TypeError: ``T`` is not an int, or ``dtype`` is not a floating dtype.
        ValueError: ``T`` is smaller than 1, or ``device`` is not available.
        MemoryError: the (T, T) matrix does not fit in memory.
    """
    check_sizes("causal_mean_weights", T=T)
    check_dtype_device("causal_mean_weights", dtype, device)
    try:
        tril = torch.ones(T, T, dtype=dtype, device=device).tril_()  # 1 on and below the diagonal
        return tril.div_(tril.sum(dim=1, keepdim=True))  # each row sums to 1
    except RuntimeError as exc:  # torch.OutOfMemoryError on a GPU, a RuntimeError on a CPU
        size = T * T * torch.finfo(dtype).bits // 8
        raise MemoryError(
            f"causal_mean_weights: a ({T}, {T}) {dtype} matrix needs {size / 2**30:.3g} GiB "
            f"and could not be allocated: {exc}"
        ) from None


# --8<-- [end:causal_mean_weights]


# --8<-- [start:prefix_mean_loop]
def prefix_mean_loop(x: torch.Tensor) -> torch.Tensor:
    """Prefix mean with explicit loops over batch and time: slow, but obvious.

    Examples:
        >>> x = torch.tensor([[2.0, 0.0], [4.0, 6.0], [6.0, 3.0]])  # (T, C) = (3, 2)
        >>> prefix_mean_loop(x)
        tensor([[2., 0.],
                [3., 3.],
                [4., 3.]])

    Raises:
        TypeError: ``x`` is not a floating-point tensor.
        ValueError: ``x`` is not of shape (B, T, C) or (T, C), or T is 0.
    """
    check_sequence("prefix_mean_loop", x)
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

    Examples:
        >>> x = torch.tensor([[2.0, 0.0], [4.0, 6.0], [6.0, 3.0]])
        >>> prefix_mean_matmul(x)
        tensor([[2., 0.],
                [3., 3.],
                [4., 3.]])

    Raises:
        TypeError: ``x`` is not a floating-point tensor.
        ValueError: ``x`` is not of shape (B, T, C) or (T, C), or T is 0.
    """
    check_sequence("prefix_mean_matmul", x)
    T = x.shape[-2]
    wei = torch.tril(torch.ones(T, T, dtype=x.dtype, device=x.device))  # (T, T)
    wei = wei / wei.sum(dim=1, keepdim=True)
    return causal_matmul(wei, x)  # wei @ x: (T, T) @ (B, T, C) -> (B, T, C)


# --8<-- [end:prefix_mean_matmul]


# --8<-- [start:prefix_mean_softmax]
def prefix_mean_softmax(x: torch.Tensor) -> torch.Tensor:
    """Prefix mean from equal scores: mask the future with -inf, then softmax.

    Examples:
        >>> x = torch.tensor([[2.0, 0.0], [4.0, 6.0], [6.0, 3.0]])
        >>> prefix_mean_softmax(x)
        tensor([[2., 0.],
                [3., 3.],
                [4., 3.]])

    Raises:
        TypeError: ``x`` is not a floating-point tensor.
        ValueError: ``x`` is not of shape (B, T, C) or (T, C), or T is 0.
    """
    check_sequence("prefix_mean_softmax", x)
    T = x.shape[-2]
    future = torch.triu(torch.ones(T, T, dtype=torch.bool, device=x.device), diagonal=1)
    scores = torch.zeros(T, T, dtype=x.dtype, device=x.device)  # every token equally relevant
    scores = scores.masked_fill(future, float("-inf"))  # ...except the future: exp(-inf) = 0
    wei = torch.softmax(scores, dim=-1)  # (T, T), rows sum to 1
    return causal_matmul(wei, x)  # wei @ x: (B, T, C)


# --8<-- [end:prefix_mean_softmax]


# --8<-- [start:prefix_mean_cumsum]
def prefix_mean_cumsum(x: torch.Tensor) -> torch.Tensor:
    """Prefix mean in O(T): a running sum divided by the number of terms.

    Examples:
        >>> x = torch.tensor([[2.0, 0.0], [4.0, 6.0], [6.0, 3.0]])
        >>> prefix_mean_cumsum(x)
        tensor([[2., 0.],
                [3., 3.],
                [4., 3.]])

    Raises:
        TypeError: ``x`` is not a floating-point tensor.
        ValueError: ``x`` is not of shape (B, T, C) or (T, C), or T is 0.
    """
    check_sequence("prefix_mean_cumsum", x)
    T = x.shape[-2]
    acc = torch.promote_types(x.dtype, torch.float32)  # half inputs: totals kept in float32
    sums = x.cumsum(dim=-2, dtype=acc)  # (B, T, C) running totals
    counts = torch.arange(1, T + 1, dtype=acc, device=x.device).unsqueeze(-1)  # (T, 1)
    return (sums / counts).to(x.dtype)


# --8<-- [end:prefix_mean_cumsum]
