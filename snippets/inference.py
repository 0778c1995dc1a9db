"""Chapter 11: inference with a KV cache.

``KVCache`` keeps the keys and values that one ``Head`` or ``MultiHeadAttention``
has computed, so that decoding a new token costs one row of attention instead of
the whole forward again. ``decode_macs`` counts the multiply-adds of one decoding
step with and without the cache.

The modules do the attending (``Head.forward(x, cache)``); the cache only appends,
refuses what does not fit, and stores what a module commits once its output exists,
so that a call that fails leaves the cache as it was. A page shows each definition after the
imports, so the block can be copied alone into a project that has torch.

This module does not import ``snippets.attention`` (which names ``KVCache`` for its
type hints): the example imports it, as a reader would.

Examples:
    >>> import torch
    >>> from snippets.attention import Head
    >>> from snippets.inference import KVCache
    >>> head = Head(n_embd=4, head_size=2, block_size=8)
    >>> x = torch.randn(1, 5, 4)                       # (B, T, n_embd)
    >>> cache = KVCache()
    >>> out = torch.cat([head(x[:, :3], cache), head(x[:, 3:], cache)], dim=1)
    >>> len(cache), tuple(cache.k.shape)
    (5, (1, 5, 2))
    >>> torch.allclose(out, head(x), atol=1e-6)        # the full forward's rows
    True
"""

__all__ = ["KVCache", "decode_macs"]

# --8<-- [start:imports]
import torch

# --8<-- [end:imports]
from snippets.checks import check_sizes


# --8<-- [start:KVCache]
class KVCache:
    """The keys and values one attention module has computed, for decoding.

    Make one cache per attention module, so one per layer of a model, and pass it
    to every call of that module: ``module(x, cache)`` with ``x`` holding only the
    new tokens. A cache holds ``k`` and ``v`` of shape (B, T, head_size) for a
    ``Head`` and (B, n_head, T, head_size) for a ``MultiHeadAttention``; ``len``
    is T, the positions so far.

    The docstring of ``snippets/inference.py`` decodes with it.

    ``reset()`` empties it for a new sequence. The cache keeps a reference to its
    module, and the autograd history of what it holds: decode under
    ``torch.no_grad()`` unless you need gradients.

    A module calls ``update`` for all the keys and values so far, and ``commit``
    to store them once it has computed its output: a call that fails on the way
    (out of memory, say) leaves the cache as it was.

    Raises:
        ValueError: (when a module calls ``update``) the new tokens would take the
            cache past the module's block_size, the cache holds another module's
            keys, or another batch size, or is on another device.
        TypeError: the new keys have another dtype than the cached ones.
    """

    def __init__(self) -> None:
        self.k: torch.Tensor | None = None  # (B, [n_head,] T, head_size); None when empty
        self.v: torch.Tensor | None = None
        self.owner: torch.nn.Module | None = None  # the module whose keys these are

    def __len__(self) -> int:
        return 0 if self.k is None else self.k.shape[-2]

    def __repr__(self) -> str:
        shape = None if self.k is None else tuple(self.k.shape)
        return f"KVCache(len={len(self)}, k and v of shape {shape})"

    def reset(self) -> None:
        """Forget every position (and the module), for a new sequence."""
        self.k = self.v = self.owner = None

    def update(self, module: torch.nn.Module, k: torch.Tensor, v: torch.Tensor):
        """The cached k and v with the new tokens' (..., T, hs) appended: (..., len + T, hs).

        Stores nothing: ``commit`` does."""
        where, n, T = type(module).__name__, len(self), k.shape[-2]
        if self.owner is not None and self.owner is not module:
            raise ValueError(
                f"{where}: this KVCache holds the keys and values of another module "
                f"(a {type(self.owner).__name__}); give each module (each layer) its own"
            )
        if n + T > module.block_size:
            raise ValueError(
                f"{where}: the cache holds {n} positions and x adds T={T}: {n + T} in all, "
                f"more than block_size={module.block_size}"
            )
        if self.k is not None:
            if k.shape[0] != self.k.shape[0]:
                raise ValueError(
                    f"{where}: x has batch size {k.shape[0]} but the cache holds "
                    f"{self.k.shape[0]} sequences; reset() it or use a new KVCache"
                )
            if k.dtype != self.k.dtype:
                raise TypeError(
                    f"{where}: the new keys are {k.dtype} but the cache holds {self.k.dtype}; "
                    "reset() it after converting the module"
                )
            if k.device != self.k.device:
                raise ValueError(
                    f"{where}: the new keys are on {k.device} but the cache is on "
                    f"{self.k.device}; reset() it after moving the module"
                )
            k, v = torch.cat([self.k, k], dim=-2), torch.cat([self.v, v], dim=-2)
        return k, v

    def commit(self, module: torch.nn.Module, k: torch.Tensor, v: torch.Tensor) -> None:
        """Store what ``update`` returned, once the module has its output."""
        self.k, self.v, self.owner = k, v, module


# --8<-- [end:KVCache]


# --8<-- [start:decode_macs]
def decode_macs(T: int, n_embd: int, *, cached: bool) -> int:
    """Multiply-adds of one attention layer to produce the output of token T.

    Without a cache the layer runs its whole forward on the T tokens: the query,
    key and value projections and the output projection (4 * T * C * C), the
    scores q @ k^T and the product with v (2 * T * T * C, the full (T, T)
    matrices, as the code computes them). With a cache it runs them for the new
    token only, against T keys (T - 1 cached, and its own): 4 * C * C + 2 * T * C.
    Heads do not change the count: n_head heads of size C // n_head.

    Examples:
        >>> decode_macs(1, 8, cached=False), decode_macs(1, 8, cached=True)
        (272, 272)
        >>> decode_macs(8, 8, cached=False) // decode_macs(8, 8, cached=True)
        8

    Raises:
        TypeError: ``T`` or ``n_embd`` is not an int, or ``cached`` not a bool.
        ValueError: ``T`` or ``n_embd`` is < 1.
    """
    check_sizes("decode_macs", T=T, n_embd=n_embd)
    if not isinstance(cached, bool):
        raise TypeError(f"decode_macs: cached must be a bool, got {type(cached).__name__}")
    C = n_embd
    rows = 1 if cached else T  # the tokens that go through the projections
    return 4 * rows * C * C + 2 * rows * T * C


# --8<-- [end:decode_macs]
