"""The input checks and the causal product that the shown definitions share.

Each helper is a section of its own (``# --8<-- [start:name]``), and a block on a
page is one definition followed by the sections of the helpers it calls, directly
or through another helper: so it still runs when copied alone, it carries no
helper it does not use (tests/test_pages.py checks both), and every function body
reads as its algorithm: its checks, mostly one call per argument, then the
computation.
Every error names the function, the argument, what it got and what it expects.

No check looks at the values in a tensor, only at types, shapes, dtypes and
devices. :func:`causal_matmul` computes on values (``isfinite``, masking) but
never brings a result back to Python, so nothing here synchronises with a GPU or
stops ``torch.compile``. Non-finite values are not refused; ``causal_matmul``
keeps them from reaching earlier positions instead (chapter 12, "Non-finite
inputs").
"""

__all__ = [
    "FLOATS",
    "check_float",
    "check_sequence",
    "check_qkv",
    "check_pairs",
    "check_positions",
    "check_sizes",
    "check_number",
    "check_dropout",
    "check_dtype_device",
    "check_generator",
    "check_input",
    "causal_matmul",
]

import torch


# --8<-- [start:FLOATS]
FLOATS = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
# --8<-- [end:FLOATS]


# --8<-- [start:check_float]
def check_float(where: str, name: str, a: object) -> None:
    if not isinstance(a, torch.Tensor):
        raise TypeError(f"{where}: {name} must be a torch.Tensor, got {type(a).__name__}")
    if a.dtype not in FLOATS:
        raise TypeError(
            f"{where}: {name} must be float16, bfloat16, float32 or float64, got {a.dtype}"
        )
    # --8<-- [end:check_float]


# --8<-- [start:check_sequence]
def check_sequence(where: str, x: object) -> None:
    """x is a float tensor of shape (B, T, C) or (T, C) with T >= 1."""
    check_float(where, "x", x)
    if x.dim() not in (2, 3) or x.shape[-2] == 0:
        raise ValueError(
            f"{where}: x must have shape (B, T, C) or (T, C) with T >= 1, "
            f"got shape {tuple(x.shape)}"
        )
    # --8<-- [end:check_sequence]


# --8<-- [start:check_qkv]
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
    # --8<-- [end:check_qkv]


# --8<-- [start:check_pairs]
def check_pairs(where: str, x: object) -> None:
    """x is a float tensor of shape (..., T, D) with T >= 1 and D even: D / 2 pairs of channels."""
    check_float(where, "x", x)
    if x.dim() < 2 or x.shape[-2] == 0 or x.shape[-1] == 0 or x.shape[-1] % 2:
        raise ValueError(
            f"{where}: x must have shape (..., T, D) with T >= 1 and an even D >= 2, "
            f"got shape {tuple(x.shape)}"
        )
    # --8<-- [end:check_pairs]


# --8<-- [start:check_positions]
def check_positions(where: str, positions: object, x: torch.Tensor) -> None:
    """positions is None or an integer tensor of shape (T,), on the device of x (..., T, D)."""
    if positions is None:
        return
    if not isinstance(positions, torch.Tensor):
        raise TypeError(
            f"{where}: positions must be a 1-D integer torch.Tensor or None, "
            f"got {type(positions).__name__}"
        )
    if positions.dtype == torch.bool or positions.is_floating_point() or positions.is_complex():
        raise TypeError(f"{where}: positions must be an integer tensor, got {positions.dtype}")
    T = x.shape[-2]
    if positions.shape != (T,):
        raise ValueError(
            f"{where}: positions must have shape (T,) = ({T},) for x of shape "
            f"{tuple(x.shape)}, got shape {tuple(positions.shape)}"
        )
    if positions.device != x.device:
        raise ValueError(
            f"{where}: positions is on {positions.device} but x is on {x.device}; move one of them"
        )
    # --8<-- [end:check_positions]


# --8<-- [start:check_sizes]
def check_sizes(where: str, **sizes: object) -> None:
    """Every size is an int >= 1."""
    for name, n in sizes.items():
        if isinstance(n, bool) or not isinstance(n, int):
            raise TypeError(f"{where}: {name} must be an int, got {type(n).__name__}")
        if n < 1:
            raise ValueError(f"{where}: {name} must be >= 1, got {n}")
    # --8<-- [end:check_sizes]


# --8<-- [start:check_number]
def check_number(where: str, name: str, a: object) -> None:
    """a is an int or float, finite and > 0."""
    if isinstance(a, bool) or not isinstance(a, (int, float)):
        raise TypeError(f"{where}: {name} must be a number, got {type(a).__name__}")
    if not 0 < a < float("inf"):
        raise ValueError(f"{where}: {name} must be a finite number > 0, got {a}")
    # --8<-- [end:check_number]


# --8<-- [start:check_dropout]
def check_dropout(where: str, p: object) -> None:
    if isinstance(p, bool) or not isinstance(p, (int, float)):
        raise TypeError(f"{where}: dropout must be a float, got {type(p).__name__}")
    if not 0 <= p < 1:
        raise ValueError(f"{where}: dropout must be in [0, 1), got {p}")
    # --8<-- [end:check_dropout]


# --8<-- [start:check_dtype_device]
def check_dtype_device(where: str, dtype: torch.dtype, device: torch.device | str | None) -> None:
    """dtype is a floating dtype, and device one that this torch can make tensors on."""
    if dtype not in FLOATS:
        raise TypeError(
            f"{where}: dtype must be float16, bfloat16, float32 or float64, got {dtype}"
        )
    try:
        torch.empty(0, dtype=dtype, device=device)
    except (RuntimeError, AssertionError, TypeError) as exc:  # not a device, or not in this build
        raise ValueError(f"{where}: device {device!r} is not usable here: {exc}") from None
    # --8<-- [end:check_dtype_device]


# --8<-- [start:check_generator]
def check_generator(where: str, generator: object) -> None:
    """generator is None or a torch.Generator on the CPU."""
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(
            f"{where}: generator must be a torch.Generator or None, got {type(generator).__name__}"
        )
    if generator is not None and generator.device.type != "cpu":
        raise ValueError(f"{where}: generator must be on the CPU, got {generator.device}")
    # --8<-- [end:check_generator]


# --8<-- [start:check_input]
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
    # --8<-- [end:check_input]


# --8<-- [start:causal_matmul]
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
    # --8<-- [end:causal_matmul]
