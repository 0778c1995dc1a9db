"""Chapters 4 and 5: self-attention, one head and several.

``causal_attention`` is the formula on tensors; ``Head`` is one attention head
as a module with its own query, key and value projections; ``MultiHeadAttention``
runs several heads at once with one fused projection. Both take an optional
``KVCache`` (``snippets/inference.py``, chapter 11) to decode a few tokens at a time.

Each definition checks its input with helpers of ``snippets/checks.py``; a page
shows the definition followed by the helpers it calls, so the block can be copied
alone into a project that has torch. No check looks at values: a later inf or nan
is kept out of earlier outputs by ``causal_matmul`` instead (chapter 12).
"""

__all__ = ["causal_attention", "Head", "MultiHeadAttention"]

# --8<-- [start:imports]
import torch
import torch.nn as nn
from torch.nn import functional as F

# --8<-- [end:imports]
from typing import TYPE_CHECKING

from snippets.checks import causal_matmul, check_dropout, check_input, check_qkv, check_sizes

if TYPE_CHECKING:
    from snippets.inference import KVCache


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

    Half-precision inputs are computed in float32 and rounded once at the end.
    A later inf or nan never changes an earlier output (see ``causal_matmul``).

    Raises:
        TypeError: an argument is not a floating-point tensor, or the dtypes differ.
        ValueError: the shapes are not (..., T, D), (..., T, D), (..., T, Dv) with
            T, D, Dv >= 1, or the tensors are on different devices.
    """
    check_qkv("causal_attention", q, k, v)
    T, D = q.shape[-2:]
    acc = torch.promote_types(q.dtype, torch.float32)  # scores of half inputs in float32
    future = torch.ones(T, T, dtype=torch.bool, device=q.device).triu(diagonal=1)
    scores = q.to(acc) @ k.to(acc).transpose(-2, -1)  # (..., T, T)
    scores.mul_(D**-0.5).masked_fill_(future, float("-inf"))  # in place: one (T, T) tensor
    wei = F.softmax(scores, dim=-1)  # rows sum to 1
    return causal_matmul(wei, v.to(acc)).to(v.dtype)  # wei @ v: (..., T, Dv)


# --8<-- [end:causal_attention]


# --8<-- [start:Head]
class Head(nn.Module):
    """One head of causal self-attention: (B, T, n_embd) -> (B, T, head_size).

    >>> head = Head(n_embd=4, head_size=2, block_size=8)
    >>> head(torch.randn(3, 5, 4)).shape
    torch.Size([3, 5, 2])

    The causal mask is built from T on each call, never stored: nothing in a
    ``state_dict`` can make the head see the future.

    With a ``cache`` (a ``KVCache``, chapter 11), ``x`` holds only the new tokens:
    their keys and values are appended to the cache, and each new token attends
    to every cached position up to its own. The outputs are the rows of those
    tokens in the forward over the whole sequence (in eval mode; see dropout).

    Raises:
        TypeError: an argument has the wrong type, ``x`` a dtype other than the
            weights' (outside ``torch.autocast``), or the cache another dtype.
        ValueError: a size is < 1, ``dropout`` is outside [0, 1), ``x`` is not
            (B, T, n_embd) with 1 <= T <= block_size on the module's device, or the
            cache would pass block_size, holds another module's keys, another
            batch size, or is on another device.
    """

    def __init__(self, n_embd: int, head_size: int, block_size: int, dropout: float = 0.0):
        super().__init__()
        check_sizes("Head", n_embd=n_embd, head_size=head_size, block_size=block_size)
        check_dropout("Head", dropout)
        self.n_embd, self.head_size, self.block_size = n_embd, head_size, block_size
        self.key = nn.Linear(n_embd, head_size, bias=False)
        self.query = nn.Linear(n_embd, head_size, bias=False)
        self.value = nn.Linear(n_embd, head_size, bias=False)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, cache: "KVCache | None" = None) -> torch.Tensor:
        check_input("Head", x, self.n_embd, self.block_size, self.key.weight)
        if not (cache is None or hasattr(cache, "reset")):
            raise TypeError(f"Head: cache must be a KVCache or None, got {type(cache).__name__}")
        B, T, C = x.shape
        k = self.key(x)  # (B, T, head_size)
        q = self.query(x)  # (B, T, head_size)
        v = self.value(x)  # (B, T, head_size)
        if cache is not None:  # the earlier tokens' keys and values, then these
            k, v = cache.update(self, k, v)  # (B, Tk, head_size), Tk = len(cache) + T
        Tk = k.shape[1]
        wei = q @ k.transpose(-2, -1) * self.head_size**-0.5  # (B, T, Tk)
        # Query i is position Tk - T + i: it sees keys 0 .. Tk - T + i (lower-right).
        past = torch.ones(T, Tk, dtype=torch.bool, device=x.device).tril(diagonal=Tk - T)
        wei = self.dropout(F.softmax(wei.masked_fill(~past, float("-inf")), dim=-1))
        out = causal_matmul(wei, v)  # wei @ v: (B, T, head_size)
        if cache is not None:
            cache.commit(self, k, v)  # only now: a call that failed leaves the cache as it was
        return out

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # Earlier versions of this code saved their mask as the buffer "tril". It is
        # not a weight, and loading it could make the head non-causal: skip it.
        state_dict.pop(prefix + "tril", None)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


# --8<-- [end:Head]


# --8<-- [start:MultiHeadAttention]
class MultiHeadAttention(nn.Module):
    """n_head causal heads of size n_embd // n_head side by side, then a projection.

    One ``nn.Linear`` makes the queries, keys and values of every head at once;
    the heads' outputs are concatenated and mixed by ``proj``.

    >>> mha = MultiHeadAttention(n_embd=6, n_head=3, block_size=8)
    >>> mha(torch.randn(2, 5, 6)).shape
    torch.Size([2, 5, 6])

    With a ``cache`` (a ``KVCache``), ``x`` holds only the new tokens, as for ``Head``;
    the cache holds keys and values of shape (B, n_head, T, n_embd // n_head).

    Raises:
        TypeError: an argument has the wrong type, ``x`` a dtype other than the
            weights' (outside ``torch.autocast``), or the cache another dtype.
        ValueError: a size is < 1, ``n_head`` does not divide ``n_embd``, ``dropout``
            is outside [0, 1), ``x`` is not (B, T, n_embd) with 1 <= T <= block_size
            on the module's device, or the cache would pass block_size, holds
            another module's keys, another batch size, or is on another device.
    """

    def __init__(self, n_embd: int, n_head: int, block_size: int, dropout: float = 0.0):
        super().__init__()
        check_sizes("MultiHeadAttention", n_embd=n_embd, n_head=n_head, block_size=block_size)
        if n_embd % n_head:
            raise ValueError(f"MultiHeadAttention: n_head={n_head} must divide n_embd={n_embd}")
        check_dropout("MultiHeadAttention", dropout)
        self.n_embd, self.n_head, self.block_size = n_embd, n_head, block_size
        self.qkv = nn.Linear(n_embd, 3 * n_embd, bias=False)  # rows: queries, keys, values
        self.proj = nn.Linear(n_embd, n_embd)
        self.attn_dropout = nn.Dropout(dropout)
        self.resid_dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, cache: "KVCache | None" = None) -> torch.Tensor:
        check_input("MultiHeadAttention", x, self.n_embd, self.block_size, self.qkv.weight)
        if not (cache is None or hasattr(cache, "reset")):
            raise TypeError(
                f"MultiHeadAttention: cache must be a KVCache or None, got {type(cache).__name__}"
            )
        B, T, C = x.shape
        nh, hs = self.n_head, C // self.n_head
        q, k, v = self.qkv(x).split(C, dim=2)  # 3 x (B, T, C)
        # (B, nh, T, hs): head h gets channels h * hs .. (h + 1) * hs - 1
        q = q.view(B, T, nh, hs).transpose(1, 2)
        k = k.view(B, T, nh, hs).transpose(1, 2)
        v = v.view(B, T, nh, hs).transpose(1, 2)
        if cache is not None:  # the earlier tokens' keys and values, then these
            k, v = cache.update(self, k, v)  # (B, nh, Tk, hs), Tk = len(cache) + T
        Tk = k.shape[2]
        wei = q @ k.transpose(-2, -1) * hs**-0.5  # (B, nh, T, Tk)
        past = torch.ones(T, Tk, dtype=torch.bool, device=x.device).tril(diagonal=Tk - T)
        wei = self.attn_dropout(F.softmax(wei.masked_fill(~past, float("-inf")), dim=-1))
        y = causal_matmul(wei, v)  # wei @ v: (B, nh, T, hs)
        y = y.transpose(1, 2).reshape(B, T, C)  # heads side by side again
        out = self.resid_dropout(self.proj(y))
        if cache is not None:
            cache.commit(self, k, v)  # only now, as in Head
        return out

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        state_dict.pop(prefix + "tril", None)  # an old mask buffer: skipped, as in Head
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


# --8<-- [end:MultiHeadAttention]
