"""Chapter 8: the prefix mean and causal attention in time linear in T.

``prefix_mean_fast`` computes the same prefix mean as the chapter 2 functions
(same contract: ``(B, T, C)`` or ``(T, C)`` in, same shape, dtype and device
out, input untouched, differentiable), in a few operations per factor of 16 in T,
each over the whole batch (the appendix on it says why few operations matter on
a busy machine); the timing appendix measures it against ``x.clone()``. For small
inputs it falls back to the plain cumsum.

``causal_linear_attention`` replaces the softmax of causal attention by a
positive feature map, which turns the weighted average into two running sums;
``causal_linear_attention_quadratic`` is the same formula with a (T, T) matrix,
for checking.

Each definition checks its input with helpers of ``snippets/checks.py``; a page
shows the definition followed by the helpers it calls, so the block can be copied
alone into a project that has torch.
"""

__all__ = [
    "prefix_mean_fast",
    "causal_linear_attention",
    "causal_linear_attention_quadratic",
]

# --8<-- [start:imports]
import torch

# --8<-- [end:imports]
from snippets.checks import causal_matmul, check_qkv, check_sequence


# --8<-- [start:prefix_mean_fast]
def _blocked_means(x: torch.Tensor) -> torch.Tensor:
    """out[:, t] = (x[:, 0] + ... + x[:, t]) / (t + 1) for x of shape (B, T, C), in x's dtype."""
    B, T, C = x.shape
    L = 16  # block length
    n = T // L  # full blocks
    m = T if n < 2 else L  # fewer than 2 * L rows: one triangle over all of them
    W = torch.ones(m, m, dtype=x.dtype, device=x.device).tril()
    W = W / W.sum(dim=1, keepdim=True)  # (m, m): row i holds 1 / (i + 1) in columns 0..i
    if n < 2:
        return W @ x  # (B, T, C)
    own = torch.arange(1, L + 1, dtype=x.dtype, device=x.device)  # (L,) i + 1, rows 0..i of a block
    out = torch.empty_like(x, memory_format=torch.contiguous_format)  # (B, T, C)
    ob = out[:, : n * L].view(B, n, L, C)
    # 1. Each block's own running means, all blocks in one batched product.
    if torch.compiler.is_compiling():  # a graph cannot write into a slice with out=
        ob.copy_(W @ x[:, : n * L].reshape(B, n, L, C))
    else:
        torch.matmul(W, x[:, : n * L].reshape(B, n, L, C), out=ob)
    # 2. The last row of a block is its mean; the prefix means of those n block means, by this
    # same function on L times fewer rows, are the means of all the rows up to each block's end.
    upto = _blocked_means(ob[:, :, L - 1])  # (B, n, C)
    # 3. One pass over blocks 1 .. n - 1: row i of a block that starts at row s holds the mean
    # of its own i + 1 rows; the mean of all s + i + 1 rows is the mean of the s rows before,
    # moved (i + 1) / (s + i + 1) of the way toward the block's own mean (w <= 1/2: a weight
    # near 1 would lose digits in the 1 - w that lerp computes for it).
    start = torch.arange(L, n * L, L, dtype=x.dtype, device=x.device)[:, None]  # (n - 1, 1)
    rest, before = ob[:, 1:], upto[:, :-1].unsqueeze(2)  # (B, n - 1, L, C), (B, n - 1, 1, C)
    w = (own / (start + own)).unsqueeze(-1)  # (n - 1, L, 1)
    if torch.compiler.is_compiling():
        rest.copy_(torch.lerp(before, rest, w))
    else:
        torch.lerp(before, rest, w, out=rest)  # in place
    if n * L < T:  # the last rows: the same, with the mean of the n * L rows before them
        k = torch.arange(1, T - n * L + 1, dtype=x.dtype, device=x.device)[:, None]  # (T - nL, 1)
        out[:, n * L :] = torch.lerp(upto[:, -1:], _blocked_means(x[:, n * L :]), k / (n * L + k))
    return out


def _means(x: torch.Tensor) -> torch.Tensor:
    out = _blocked_means(x)
    # Every number of x is in the last mean with a weight > 0, so a nan or inf in x makes the
    # last mean, or the sum of all T rows, not finite; so does a total of x that overflows.
    finite = (out[:, -1] * x.shape[1]).isfinite().all()
    if not torch.compiler.is_compiling() and finite:
        return out
    # A nan or inf in x, or a total that overflows. The triangles spread a nan to earlier rows
    # (0 * nan is nan), within its block and, through the block means, to earlier blocks; and
    # lerp(inf, b, w) can be nan (inf - inf), not inf. So the blocks are averaged with 0 in
    # place of each bad value, and from it on (in its channel) the plain cumsum is taken.
    bad = ~x.isfinite()
    clean = _blocked_means(x.masked_fill(bad, 0))
    counts = torch.arange(1, x.shape[1] + 1, dtype=x.dtype, device=x.device).unsqueeze(-1)  # (T, 1)
    plain = x.cumsum(dim=1) / counts
    fixed = torch.where((bad.cumsum(dim=1) > 0) | ~bad.any(), plain, clean)
    return torch.where(finite, out, fixed)  # a graph (torch.compile) computes both


class _PrefixMean(torch.autograd.Function):
    # The blocked path writes into slices of one output (out=), which autograd cannot
    # differentiate, so the gradient is written out: out[t] = (x[0] + ... + x[t]) / (t + 1),
    # hence grad x[s] = g[s] / (s + 1) + ... + g[T - 1] / T, a running sum from the end.
    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        acc = torch.promote_types(x.dtype, torch.float32)
        ctx.counts = torch.arange(1, x.shape[1] + 1, dtype=acc, device=x.device)[:, None]  # (T, 1)
        return _means(x.to(acc)).to(x.dtype)

    @staticmethod
    def backward(ctx, g: torch.Tensor) -> torch.Tensor:
        counts = ctx.counts
        if torch.is_grad_enabled():  # create_graph=True: ordinary ops, differentiable again
            return (g / counts).flip(1).cumsum(1, dtype=counts.dtype).flip(1).to(g.dtype)
        sums = _means((g / counts).flip(1)) * counts  # (B, T, C), running sums from the end
        return sums.flip(1).to(g.dtype)


# Below this many numbers, one cumsum call instead of the blocked version's
# operations, whose fixed costs dominate on small inputs. A round number
# picked by hand, not a measured crossover, which moves with the shape and the machine.
_SMALL = 2**18


def prefix_mean_fast(x: torch.Tensor) -> torch.Tensor:
    """Prefix mean in O(T): a triangle per 16-row block, then the blocks before each.

    Built for large inputs (the timing appendix measures how close it gets to
    ``x.clone()``): it cuts time into blocks of 16 rows and gives every block its own
    running means in one batched product with a 16-by-16 triangle; the prefix means of
    the block means, taken by the same steps on 16 times fewer rows, give every block the
    mean of the rows before it, and one more pass over the output combines the two. For
    small inputs (fewer than ``_SMALL`` numbers) it is the plain cumsum, whose fixed costs
    are lower. It computes in at least float32. From a nan or inf of ``x`` on, in its
    channel, it takes the plain cumsum, so the result is nan or inf exactly where the
    definition's is, and what comes before a bad value is what it is without it; if
    every value is finite but the sum of all of them is not (a sum overflowed), the
    whole result is the plain cumsum. Reverse-mode derivatives of every order work;
    forward-mode AD and ``torch.func`` transforms are not supported on the blocked path.
    With TF32 matrix products enabled on a GPU, float32 inputs are rounded to TF32 in
    the products, so keep TF32 off where these means must be float32-accurate.

    Examples:
        >>> x = torch.tensor([[2.0, 0.0], [4.0, 6.0], [6.0, 3.0]])
        >>> prefix_mean_fast(x)
        tensor([[2., 0.],
                [3., 3.],
                [4., 3.]])

    Raises:
        TypeError: ``x`` is not a floating-point tensor.
        ValueError: ``x`` is not of shape (B, T, C) or (T, C), or T is 0.
    """
    check_sequence("prefix_mean_fast", x)
    if x.numel() < _SMALL:  # small: the plain cumsum, with ordinary autograd
        acc = torch.promote_types(x.dtype, torch.float32)
        counts = torch.arange(1, x.shape[-2] + 1, dtype=acc, device=x.device).unsqueeze(-1)
        return (x.cumsum(dim=-2, dtype=acc) / counts).to(x.dtype)
    out = _PrefixMean.apply(x if x.dim() == 3 else x.unsqueeze(0))  # (B, T, C)
    return out if x.dim() == 3 else out.squeeze(0)


# --8<-- [end:prefix_mean_fast]


# --8<-- [start:causal_linear_attention]
def causal_linear_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Causal attention with scores phi(q) . phi(k), phi = elu + 1, in O(T) time.

    Output ``t`` is the average of ``v[0..t]`` weighted by ``phi(q_t) . phi(k_s)``.
    Both sums over ``s <= t`` are running sums: of ``phi(k_s) v_s^T`` (a
    ``(D, Dv)`` matrix) and of ``phi(k_s)``. Accumulates in at least float32.
    The running sums are all kept, one ``(D, Dv)`` matrix per position, so memory
    grows as T * D * Dv; a loop over t would keep only the last one.

    Examples:
        >>> q = k = torch.zeros(3, 2)                     # phi = 1 everywhere: equal weights
        >>> v = torch.tensor([[2.0], [4.0], [6.0]])
        >>> causal_linear_attention(q, k, v)
        tensor([[2.],
                [3.],
                [4.]])

    If q and k are so negative that a denominator phi(q_t) . (phi(k_0) + ... +
    phi(k_t)) underflows to 0, that row is nan (0 / 0): rescale q and k, or pass
    float64. A later inf or nan never changes an earlier output.

    Raises:
        TypeError: an argument is not a floating-point tensor, or the dtypes differ.
        ValueError: the shapes are not (..., T, D), (..., T, D), (..., T, Dv) with
            T, D, Dv >= 1, or the tensors are on different devices.
    """
    check_qkv("causal_linear_attention", q, k, v)
    acc = torch.promote_types(q.dtype, torch.float32)

    def phi(a):  # elu(a) + 1, but exp(a) for a <= 0: elu(a) + 1 = exp(a) - 1 + 1 loses
        # digits, and is exactly 0 in float32 below a = -17.3. The clamp keeps exp's
        # gradient finite where a > 0 (torch.where differentiates both branches).
        return torch.where(a > 0, a + 1, a.clamp(max=0).exp())

    phi_q, phi_k = phi(q.to(acc)), phi(k.to(acc))  # (..., T, D), > 0 unless exp underflows
    # All T running sums are kept: (..., T, D, Dv) numbers, O(T * D * Dv) memory.
    S = torch.cumsum(phi_k.unsqueeze(-1) * v.to(acc).unsqueeze(-2), dim=-3)  # (..., T, D, Dv)
    z = torch.cumsum(phi_k, dim=-2)  # (..., T, D)
    num = (phi_q.unsqueeze(-2) @ S).squeeze(-2)  # (..., T, Dv)
    den = (phi_q * z).sum(dim=-1, keepdim=True)  # (..., T, 1)
    return (num / den).to(q.dtype)


# --8<-- [end:causal_linear_attention]


# --8<-- [start:causal_linear_attention_quadratic]
def causal_linear_attention_quadratic(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor
) -> torch.Tensor:
    """The same attention as ``causal_linear_attention``, written with a (T, T) weight matrix.

    Takes O(T * T * (D + Dv)) time and O(T * T) memory, against O(T * D * Dv) for
    the running sums.

    Examples:
        >>> q = k = torch.zeros(3, 2)
        >>> v = torch.tensor([[2.0], [4.0], [6.0]])
        >>> causal_linear_attention_quadratic(q, k, v)
        tensor([[2.],
                [3.],
                [4.]])

    A row whose weights all underflow to 0 is nan (0 / 0), as in
    ``causal_linear_attention``; a later inf or nan never changes an earlier output.

    Raises:
        TypeError: an argument is not a floating-point tensor, or the dtypes differ.
        ValueError: the shapes are not (..., T, D), (..., T, D), (..., T, Dv) with
            T, D, Dv >= 1, or the tensors are on different devices.
    """
    check_qkv("causal_linear_attention_quadratic", q, k, v)
    acc = torch.promote_types(q.dtype, torch.float32)

    def phi(a):  # elu(a) + 1, computed as exp(a) for a <= 0 (see causal_linear_attention)
        return torch.where(a > 0, a + 1, a.clamp(max=0).exp())

    phi_q, phi_k = phi(q.to(acc)), phi(k.to(acc))  # (..., T, D)
    A = (phi_q @ phi_k.transpose(-2, -1)).tril()  # (..., T, T) scores, 0 for the future
    den = A.sum(dim=-1, keepdim=True)  # (..., T, 1)
    return (causal_matmul(A, v.to(acc)) / den).to(q.dtype)  # A @ v / den


# --8<-- [end:causal_linear_attention_quadratic]
