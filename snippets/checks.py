"""The input checks and the causal product that every shown definition shares.

A block on a page is one definition followed by the ``checks`` section below, so
it still runs when copied alone, and every function body reads as its algorithm:
one call to a check, then the computation.

No check looks at the values in a tensor, only at types, shapes, dtypes and
devices. :func:`causal_matmul` computes on values (``isfinite``, masking) but
never brings a result back to Python, so nothing here synchronises with a GPU or
stops ``torch.compile``. Non-finite values are not refused; ``causal_matmul``
keeps them from reaching earlier positions instead (chapter 11, "Non-finite
inputs").
"""

__all__ = [
    "FLOATS",
    "check_float",
    "check_sequence",
    "check_qkv",
    "check_sizes",
    "check_dropout",
    "check_input",
    "causal_matmul",
]

# --8<-- [start:checks]
import torch

# Input checks shared by every definition on the site. Each error names the
# function, the argument, what it got and what it expects.
FLOATS = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def check_float(where: str, name: str, a: object) -> None:
    if not isinstance(a, torch.Tensor):
        raise TypeError(f"{where}: {name} must be a torch.Tensor, got {type(a).__name__}")
    if a.dtype not in FLOATS:
        raise TypeError(
            f"{where}: {name} must be float16, bfloat16, float32 or float64, got {a.dtype}"
        )


def check_sequence(where: str, x: object) -> None:
    """x is a float tensor of shape (B, T, C) or (T, C) with T >= 1."""
    check_float(where, "x", x)
    if x.dim() not in (2, 3) or x.shape[-2] == 0:
        raise ValueError(
            f"{where}: x must have shape (B, T, C) or (T, C) with T >= 1, "
            f"got shape {tuple(x.shape)}"
        )


def check_qkv(where: str, q: object, k: object, v: object) -> None:
    """q, k of shape (..., T, D) and v of shape (..., T, Dv), one dtype, one device."""
    for name, a in (("q", q), ("k", k), ("v", v)):
        check_float(where, name, a)
        if a.dim() < 2 or 0 in a.shape[-2:]:
            raise ValueError(
                f"{where}: {name} must have shape (..., T, D) with T, D >= 1, "
                f"got shape {tuple(a.shape)}"
            )
    if k.shape != q.shape or v.shape[:-1] != q.shape[:-1]:
        raise ValueError(
            f"{where}: expected q, k of shape (..., T, D) and v of shape (..., T, Dv), "
            f"got q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}"
        )
    if not q.dtype == k.dtype == v.dtype:
        raise TypeError(f"{where}: q, k, v must share a dtype, got {q.dtype}, {k.dtype}, {v.dtype}")
    if not q.device == k.device == v.device:
        raise ValueError(
            f"{where}: q, k, v must be on one device, got {q.device}, {k.device}, {v.device}"
        )


def check_sizes(where: str, **sizes: object) -> None:
    """Every size is an int >= 1."""
    for name, n in sizes.items():
        if isinstance(n, bool) or not isinstance(n, int):
            raise TypeError(f"{where}: {name} must be an int, got {type(n).__name__}")
        if n < 1:
            raise ValueError(f"{where}: {name} must be >= 1, got {n}")


def check_dropout(where: str, p: object) -> None:
    if isinstance(p, bool) or not isinstance(p, (int, float)):
        raise TypeError(f"{where}: dropout must be a float, got {type(p).__name__}")
    if not 0 <= p < 1:
        raise ValueError(f"{where}: dropout must be in [0, 1), got {p}")


def check_input(where: str, x: object, n_embd: int, block_size: int, weight: torch.Tensor) -> None:
    """x is (B, T, n_embd) with 1 <= T <= block_size, in the weights' dtype, on their device."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{where}: x must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 3 or x.shape[-1] != n_embd or not 1 <= x.shape[1] <= block_size:
        raise ValueError(
            f"{where}: x must have shape (B, T, n_embd={n_embd}) with 1 <= T <= "
            f"block_size={block_size}, "
            f"got shape {tuple(x.shape)}"
        )
    # Under torch.autocast, nn.Linear casts x and its weights itself (not float64).
    device = x.device.type
    autocast = (
        torch.amp.is_autocast_available(device)
        and torch.is_autocast_enabled(device)
        and x.dtype in FLOATS[:3]
    )
    if x.dtype != weight.dtype and not autocast:
        raise TypeError(
            f"{where}: x has dtype {x.dtype} but the weights have {weight.dtype}; "
            "convert one of them"
        )
    if x.device != weight.device:
        raise ValueError(
            f"{where}: x is on {x.device} but the weights are on {weight.device}; move one of them"
        )


def causal_matmul(wei: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """wei @ v for causal weights (..., Tq, Tk), queries aligned with the last Tq keys.

    In a plain product, a zero weight times a later inf or nan is nan, so one bad
    value would reach every earlier output. Here it reaches only its own position
    and later ones (as nan); earlier outputs are exactly what they are without it.
    """
    bad = ~torch.isfinite(v)  # (..., Tk, Dv)
    out = wei @ v.masked_fill(bad, 0)  # (..., Tq, Dv)
    seen = bad.cumsum(dim=-2)[..., v.shape[-2] - wei.shape[-2] :, :] > 0  # bad at or before
    return out.masked_fill(seen, float("nan"))


# --8<-- [end:checks]
