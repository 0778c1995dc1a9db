"""Chapter 4: self-attention, the prefix mean with data-dependent weights.

``causal_attention`` is the formula on tensors; ``Head`` is one attention head
as a module with its own query, key and value projections; ``MultiHeadAttention``
runs several heads at once with one fused projection.

Each definition is self-contained (it needs only the imports below), so the
section between its ``--8<--`` markers can be copied alone into a project.
"""

__all__ = ["causal_attention", "Head", "MultiHeadAttention"]

# --8<-- [start:imports]
import torch
import torch.nn as nn
from torch.nn import functional as F

# --8<-- [end:imports]


# --8<-- [start:causal_attention]
def causal_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T / sqrt(D), future masked) v for (..., T, D) queries and keys.

    Row ``t`` of the weights is a softmax over the scores of positions ``0..t``;
    the output is the weighted average of ``v[0..t]``.

    >>> q = k = torch.zeros(3, 2)                     # equal scores: the prefix mean
    >>> v = torch.tensor([[2.0], [4.0], [6.0]])
    >>> causal_attention(q, k, v)
    tensor([[2.],
            [3.],
            [4.]])

    Raises:
        TypeError: an argument is not a floating-point tensor, or the dtypes differ.
        ValueError: the shapes are not (..., T, D), (..., T, D), (..., T, Dv) with
            T, D, Dv >= 1, the tensors are on different devices, or the scores or
            ``v`` are not finite.
    """
    for name, a in (("q", q), ("k", k), ("v", v)):
        if not isinstance(a, torch.Tensor):
            raise TypeError(
                f"causal_attention: {name} must be a torch.Tensor, "
                f"got {type(a).__name__}"
            )
        if a.dtype not in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
            raise TypeError(
                f"causal_attention: {name} must be float16, bfloat16, float32 or float64, "
                f"got {a.dtype}"
            )
        if a.dim() < 2 or 0 in a.shape[-2:]:
            raise ValueError(
                f"causal_attention: {name} must have shape (..., T, D) with T, D >= 1, "
                f"got shape {tuple(a.shape)}"
            )
    if k.shape != q.shape or v.shape[:-1] != q.shape[:-1]:
        raise ValueError(
            f"causal_attention: expected q, k of shape (..., T, D) and v of shape (..., T, Dv), "
            f"got q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}"
        )
    if not q.dtype == k.dtype == v.dtype:
        raise TypeError(
            f"causal_attention: q, k, v must share a dtype, "
            f"got {q.dtype}, {k.dtype}, {v.dtype}"
        )
    if not q.device == k.device == v.device:
        raise ValueError(
            f"causal_attention: q, k, v must be on one device, "
            f"got {q.device}, {k.device}, {v.device}"
        )
    T, D = q.shape[-2:]
    scores = q @ k.transpose(-2, -1) * D**-0.5  # (..., T, T)
    future = torch.ones(T, T, dtype=torch.bool, device=q.device).triu(diagonal=1)
    # inf scores make softmax nan; an inf in v times a zero weight is nan at earlier t.
    if not torch.isfinite(scores.masked_fill(future, 0)).all() or not torch.isfinite(v).all():
        raise ValueError(
            f"causal_attention: q k^T / sqrt(D) and v must be finite in {q.dtype}, got inf or nan "
            f"(max |q| {q.abs().max().item():.3g}, max |k| {k.abs().max().item():.3g}); "
            "rescale the inputs or use a wider dtype"
        )
    wei = F.softmax(scores.masked_fill(future, float("-inf")), dim=-1)  # rows sum to 1
    return wei @ v  # (..., T, Dv)
# --8<-- [end:causal_attention]


# --8<-- [start:Head]
class Head(nn.Module):
    """One head of causal self-attention: (B, T, n_embd) -> (B, T, head_size).

    >>> head = Head(n_embd=4, head_size=2, block_size=8)
    >>> head(torch.randn(3, 5, 4)).shape
    torch.Size([3, 5, 2])

    Raises:
        TypeError: an argument has the wrong type, or ``x`` a dtype other than the
            weights' (outside ``torch.autocast``).
        ValueError: a size is < 1, ``dropout`` is outside [0, 1), or ``x`` is not
            (B, T, n_embd) with 1 <= T <= block_size on the module's device.
    """

    def __init__(self, n_embd: int, head_size: int, block_size: int, dropout: float = 0.0):
        super().__init__()
        for name, n in (("n_embd", n_embd), ("head_size", head_size), ("block_size", block_size)):
            if isinstance(n, bool) or not isinstance(n, int):
                raise TypeError(f"Head: {name} must be an int, got {type(n).__name__}")
            if n < 1:
                raise ValueError(f"Head: {name} must be >= 1, got {n}")
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)):
            raise TypeError(f"Head: dropout must be a float, got {type(dropout).__name__}")
        if not 0 <= dropout < 1:
            raise ValueError(f"Head: dropout must be in [0, 1), got {dropout}")
        self.n_embd, self.head_size, self.block_size = n_embd, head_size, block_size
        self.key = nn.Linear(n_embd, head_size, bias=False)
        self.query = nn.Linear(n_embd, head_size, bias=False)
        self.value = nn.Linear(n_embd, head_size, bias=False)
        # True where a position may look: itself and the past. forward slices it to (T, T).
        tril = torch.tril(torch.ones(block_size, block_size, dtype=torch.bool))
        self.register_buffer("tril", tril)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"Head: x must be a torch.Tensor, got {type(x).__name__}")
        if x.dim() != 3 or x.shape[-1] != self.n_embd or not 1 <= x.shape[1] <= self.block_size:
            raise ValueError(
                f"Head: x must have shape (B, T, n_embd={self.n_embd}) with 1 <= T <= "
                f"block_size={self.block_size}, got shape {tuple(x.shape)}"
            )
        w = self.key.weight
        # Under torch.autocast, nn.Linear casts x and its weights itself (not float64).
        autocast = torch.is_autocast_enabled(x.device.type) and x.dtype in (
            torch.float16, torch.bfloat16, torch.float32)
        if x.dtype != w.dtype and not autocast:
            raise TypeError(
                f"Head: x has dtype {x.dtype} but the weights have {w.dtype}; "
                "convert one of them"
            )
        if x.device != w.device:
            raise ValueError(
                f"Head: x is on {x.device} but the weights are on {w.device}; "
                "move one of them"
            )
        B, T, C = x.shape
        k = self.key(x)  # (B, T, head_size)
        q = self.query(x)  # (B, T, head_size)
        wei = q @ k.transpose(-2, -1) * self.head_size**-0.5  # (B, T, T)
        wei = wei.masked_fill(~self.tril[:T, :T], float("-inf"))
        wei = F.softmax(wei, dim=-1)
        wei = self.dropout(wei)
        v = self.value(x)  # (B, T, head_size)
        return wei @ v  # (B, T, head_size)
# --8<-- [end:Head]


# --8<-- [start:MultiHeadAttention]
class MultiHeadAttention(nn.Module):
    """n_head causal heads of size n_embd // n_head side by side, then a projection.

    One ``nn.Linear`` makes the queries, keys and values of every head at once;
    the heads' outputs are concatenated and mixed by ``proj``.

    >>> mha = MultiHeadAttention(n_embd=6, n_head=3, block_size=8)
    >>> mha(torch.randn(2, 5, 6)).shape
    torch.Size([2, 5, 6])

    Raises:
        TypeError: an argument has the wrong type, or ``x`` a dtype other than the
            weights' (outside ``torch.autocast``).
        ValueError: a size is < 1, ``n_head`` does not divide ``n_embd``, ``dropout``
            is outside [0, 1), or ``x`` is not (B, T, n_embd) with 1 <= T <= block_size
            on the module's device.
    """

    def __init__(self, n_embd: int, n_head: int, block_size: int, dropout: float = 0.0):
        super().__init__()
        for name, n in (("n_embd", n_embd), ("n_head", n_head), ("block_size", block_size)):
            if isinstance(n, bool) or not isinstance(n, int):
                raise TypeError(
                    f"MultiHeadAttention: {name} must be an int, "
                    f"got {type(n).__name__}"
                )
            if n < 1:
                raise ValueError(f"MultiHeadAttention: {name} must be >= 1, got {n}")
        if n_embd % n_head:
            raise ValueError(f"MultiHeadAttention: n_head={n_head} must divide n_embd={n_embd}")
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)):
            raise TypeError(
                f"MultiHeadAttention: dropout must be a float, "
                f"got {type(dropout).__name__}"
            )
        if not 0 <= dropout < 1:
            raise ValueError(f"MultiHeadAttention: dropout must be in [0, 1), got {dropout}")
        self.n_embd, self.n_head, self.block_size = n_embd, n_head, block_size
        self.qkv = nn.Linear(n_embd, 3 * n_embd, bias=False)  # rows: queries, keys, values
        self.proj = nn.Linear(n_embd, n_embd)
        tril = torch.tril(torch.ones(block_size, block_size, dtype=torch.bool))
        self.register_buffer("tril", tril)
        self.attn_dropout = nn.Dropout(dropout)
        self.resid_dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"MultiHeadAttention: x must be a torch.Tensor, got {type(x).__name__}")
        if x.dim() != 3 or x.shape[-1] != self.n_embd or not 1 <= x.shape[1] <= self.block_size:
            raise ValueError(
                f"MultiHeadAttention: x must have shape (B, T, n_embd={self.n_embd}) "
                f"with 1 <= T <= block_size={self.block_size}, got shape {tuple(x.shape)}"
            )
        w = self.qkv.weight
        # Under torch.autocast, nn.Linear casts x and its weights itself (not float64).
        autocast = torch.is_autocast_enabled(x.device.type) and x.dtype in (
            torch.float16, torch.bfloat16, torch.float32)
        if x.dtype != w.dtype and not autocast:
            raise TypeError(
                f"MultiHeadAttention: x has dtype {x.dtype} but the weights have {w.dtype}; "
                "convert one of them"
            )
        if x.device != w.device:
            raise ValueError(
                f"MultiHeadAttention: x is on {x.device} but the weights are on {w.device}; "
                "move one of them"
            )
        B, T, C = x.shape
        nh, hs = self.n_head, C // self.n_head
        q, k, v = self.qkv(x).split(C, dim=2)  # 3 x (B, T, C)
        # (B, nh, T, hs): head h gets channels h * hs .. (h + 1) * hs - 1
        q = q.view(B, T, nh, hs).transpose(1, 2)
        k = k.view(B, T, nh, hs).transpose(1, 2)
        v = v.view(B, T, nh, hs).transpose(1, 2)
        wei = q @ k.transpose(-2, -1) * hs**-0.5  # (B, nh, T, T)
        wei = wei.masked_fill(~self.tril[:T, :T], float("-inf"))
        wei = self.attn_dropout(F.softmax(wei, dim=-1))
        y = wei @ v  # (B, nh, T, hs)
        y = y.transpose(1, 2).reshape(B, T, C)  # heads side by side again
        return self.resid_dropout(self.proj(y))
# --8<-- [end:MultiHeadAttention]
