"""Chapter 6: learning the weights, one head trained to look two places back.

``lookback_batch`` makes the toy task: random tokens, and as the target at each
position the token ``back`` places earlier. ``OneHeadModel`` is the smallest
model that can solve it: token and position embeddings, one ``Head`` of
chapter 4, and a linear readout. ``train`` runs AdamW on fresh batches and
returns the loss of every step.

Each definition needs only the imports below, ``Head`` (``snippets.attention``)
for the model, ``lookback_batch`` for ``train``, and the helpers of
``snippets/checks.py`` that it calls.
"""

__all__ = ["IGNORE", "lookback_batch", "OneHeadModel", "train"]

from snippets.attention import Head
from snippets.checks import check_generator, check_number, check_sizes

# --8<-- [start:imports]
import torch
import torch.nn as nn
from torch.nn import functional as F

# The target of a position with no answer; F.cross_entropy skips it (its ignore_index).
IGNORE = -100

# --8<-- [end:imports]


# --8<-- [start:lookback_batch]
def lookback_batch(
    B: int, T: int, vocab: int, *, back: int = 2, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """B random sequences of T tokens, and as targets the token ``back`` places earlier.

    ``x`` holds tokens drawn uniformly from ``0 .. vocab - 1``; ``y[:, t]`` is
    ``x[:, t - back]`` for ``t >= back``. The first ``back`` positions have no
    answer: their target is ``IGNORE`` (-100), which ``F.cross_entropy`` skips.
    Both are int64 tensors of shape (B, T) on the CPU.

    >>> x, y = lookback_batch(1, 6, 10, generator=torch.Generator().manual_seed(0))
    >>> x
    tensor([[4, 9, 3, 0, 3, 9]])
    >>> y
    tensor([[-100, -100,    4,    9,    3,    0]])

    Raises:
        TypeError: a size or ``back`` is not an int, or ``generator`` is not a
            ``torch.Generator``.
        ValueError: a size is < 1, ``back`` is not in 1 .. T - 1, or ``generator``
            is not on the CPU.
    """
    check_sizes("lookback_batch", B=B, T=T, vocab=vocab, back=back)
    if back >= T:
        raise ValueError(
            f"lookback_batch: back must be < T={T} so that some position has a target, got {back}"
        )
    check_generator("lookback_batch", generator)
    x = torch.randint(vocab, (B, T), generator=generator)  # (B, T)
    y = torch.full_like(x, IGNORE)
    y[:, back:] = x[:, :-back]  # y[:, t] = x[:, t - back]
    return x, y


# --8<-- [end:lookback_batch]


# --8<-- [start:OneHeadModel]
class OneHeadModel(nn.Module):
    """Token and position embeddings, one causal ``Head``, a linear readout to logits.

    ``forward(idx, targets=None)`` takes tokens of shape (B, T) and returns the
    logits, (B, T, vocab), and the cross-entropy loss against ``targets`` (``None``
    without targets; targets equal to ``IGNORE`` are skipped, and if all are,
    the loss is nan, 0 / 0). With
    ``positions=False`` there is no position embedding (chapter 6's exercise).

    >>> model = OneHeadModel(vocab=10, n_embd=16, block_size=8)
    >>> logits, loss = model(torch.tensor([[1, 2, 3]]))
    >>> logits.shape, loss
    (torch.Size([1, 3, 10]), None)
    >>> wei = model.attention_weights(torch.tensor([[1, 2, 3]]))    # (B, T, T)
    >>> wei[0, 0], torch.allclose(wei.sum(dim=-1), torch.ones(1, 3))
    (tensor([1., 0., 0.]), True)

    Raises:
        TypeError: a size is not an int, ``positions`` is not a bool, ``idx`` or
            ``targets`` is not an int64 tensor.
        ValueError: a size is < 1, ``idx`` is not (B, T) with 1 <= T <= block_size,
            ``targets`` has another shape than ``idx``, or they are on another device
            than the weights. A token outside ``0 .. vocab - 1`` is refused by
            ``nn.Embedding`` (an IndexError on the CPU).
    """

    def __init__(self, vocab: int, n_embd: int, block_size: int, *, positions: bool = True):
        super().__init__()
        check_sizes("OneHeadModel", vocab=vocab, n_embd=n_embd, block_size=block_size)
        if not isinstance(positions, bool):
            raise TypeError(
                f"OneHeadModel: positions must be a bool, got {type(positions).__name__}"
            )
        self.vocab, self.n_embd, self.block_size = vocab, n_embd, block_size
        self.token_embedding_table = nn.Embedding(vocab, n_embd)
        # Without it, position t has no way to tell which earlier token is t - 2.
        self.position_embedding_table = nn.Embedding(block_size, n_embd) if positions else None
        self.sa_head = Head(n_embd, n_embd, block_size)
        self.lm_head = nn.Linear(n_embd, vocab)

    def _check(self, name: str, a: object) -> None:
        where = "OneHeadModel"
        if not isinstance(a, torch.Tensor) or a.dtype != torch.int64:
            got = a.dtype if isinstance(a, torch.Tensor) else type(a).__name__
            raise TypeError(f"{where}: {name} must be an int64 tensor of tokens, got {got}")
        if a.dim() != 2 or not 1 <= a.shape[1] <= self.block_size:
            raise ValueError(
                f"{where}: {name} must have shape (B, T) with 1 <= T <= "
                f"block_size={self.block_size}, got shape {tuple(a.shape)}"
            )
        device = self.lm_head.weight.device
        if a.device != device:
            raise ValueError(f"{where}: {name} is on {a.device} but the weights are on {device}")

    def embed(self, idx: torch.Tensor) -> torch.Tensor:
        """The head's input: token embeddings plus position embeddings, (B, T, n_embd)."""
        self._check("idx", idx)
        x = self.token_embedding_table(idx)  # (B, T, n_embd)
        if self.position_embedding_table is not None:
            T = idx.shape[1]
            x = x + self.position_embedding_table(torch.arange(T, device=idx.device))  # (T, n_embd)
        return x

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        self._check("idx", idx)
        if targets is not None:
            self._check("targets", targets)
            if targets.shape != idx.shape:
                raise ValueError(
                    f"OneHeadModel: targets must have the shape of idx {tuple(idx.shape)}, "
                    f"got {tuple(targets.shape)}"
                )
        x = self.embed(idx)  # (B, T, n_embd)
        logits = self.lm_head(self.sa_head(x))  # (B, T, vocab)
        if targets is None:
            return logits, None
        loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=IGNORE)
        return logits, loss

    @torch.no_grad()
    def attention_scores(self, idx: torch.Tensor) -> torch.Tensor:
        """The head's scores q_t . k_s / sqrt(head_size), future set to -inf: (B, T, T)."""
        x = self.embed(idx)
        h, T = self.sa_head, idx.shape[1]
        scores = h.query(x) @ h.key(x).transpose(-2, -1) * h.head_size**-0.5  # (B, T, T)
        future = torch.ones(T, T, dtype=torch.bool, device=x.device).triu(diagonal=1)
        return scores.masked_fill(future, float("-inf"))

    @torch.no_grad()
    def attention_weights(self, idx: torch.Tensor) -> torch.Tensor:
        """The head's weights, the softmax of ``attention_scores``: (B, T, T), rows sum to 1."""
        return F.softmax(self.attention_scores(idx), dim=-1)


# --8<-- [end:OneHeadModel]


# --8<-- [start:train]
MAX_STEPS = 10**7  # 40 MB of losses


def train(
    model: nn.Module,
    *,
    steps: int = 100,
    back: int = 2,
    batch_size: int = 32,
    lr: float = 1e-2,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Train ``model`` with AdamW on ``steps`` fresh batches of ``lookback_batch``.

    ``model`` needs int attributes ``vocab`` and ``block_size`` (the batches are
    ``(batch_size, block_size)``) and a ``forward(idx, targets)`` that returns
    ``(logits, loss)``, as ``OneHeadModel`` has. The batches come from
    ``generator``; the model's initial weights come from wherever it was made, so
    seed both for a run that repeats exactly. Puts the model in training mode.
    Returns the loss of every step, a float32 tensor of shape (steps,) on the
    CPU, each computed before that step's update.

    >>> _ = torch.manual_seed(0)
    >>> model = OneHeadModel(vocab=8, n_embd=16, block_size=8)
    >>> losses = train(model, steps=30, generator=torch.Generator().manual_seed(0))
    >>> losses.shape, bool(losses[-1] < losses[0])
    (torch.Size([30]), True)

    Raises:
        TypeError: ``model`` is not an ``nn.Module`` with int ``vocab`` and
            ``block_size``, a count is not an int, ``lr`` is not a number, or
            ``generator`` is not a ``torch.Generator``.
        ValueError: a count is < 1, ``steps`` is more than ``MAX_STEPS``, ``back``
            is not in 1 .. block_size - 1, ``lr`` is not a positive finite number,
            ``generator`` is not on the CPU, or ``model`` has no parameter to train.
    """
    if not isinstance(model, nn.Module) or not all(
        isinstance(getattr(model, a, None), int) for a in ("vocab", "block_size")
    ):
        raise TypeError(
            "train: model must be an nn.Module with int attributes vocab and block_size "
            f"(like OneHeadModel), got {type(model).__name__}"
        )
    for name in ("vocab", "block_size"):
        if isinstance(getattr(model, name), bool):
            raise TypeError(f"train: model.{name} must be an int, got bool")
    check_sizes("train", steps=steps, batch_size=batch_size, back=back)
    if steps > MAX_STEPS:  # the losses are kept in one tensor
        raise ValueError(f"train: steps must be at most {MAX_STEPS}, got {steps}")
    if back >= model.block_size:
        raise ValueError(f"train: back must be < block_size={model.block_size}, got {back}")
    check_number("train", "lr", lr)
    check_generator("train", generator)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("train: model has no parameter that requires grad (none, or all frozen)")
    device = params[0].device
    optimizer = torch.optim.AdamW(params, lr=lr)
    losses = torch.empty(steps)
    model.train()
    for step in range(steps):
        x, y = lookback_batch(
            batch_size, model.block_size, model.vocab, back=back, generator=generator
        )  # (B, T) each
        _, loss = model(x.to(device), y.to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses[step] = loss.detach()
    return losses


# --8<-- [end:train]
