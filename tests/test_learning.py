"""Chapter 6: the two-back task, the one-head model, and training it.

Training a model this small is many tiny operations; on a shared 2-core machine
OpenMP threads spend more time waiting for each other than working, so the
training tests run on one thread (and restore the setting).
"""

from __future__ import annotations

import inspect
import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from snippets.learning import IGNORE, OneHeadModel, lookback_batch, train
from tests.marks import needs_cuda
from tests.refusals import assert_refuses
from tests.strategies import attention_reference


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def two_back(model, n=500, back=2, seed=2):
    """Mean weight on position t - back over n fresh sequences, and the offsets of each row's top weight."""
    x, _ = lookback_batch(n, model.block_size, model.vocab, back=back, generator=gen(seed))
    wei = model.attention_weights(x)  # (B, T, T)
    t = torch.arange(back, model.block_size)
    mean = wei.diagonal(offset=-back, dim1=-2, dim2=-1).mean().item()
    return mean, set((t - wei[:, back:].argmax(dim=-1)).unique().tolist())


# ---- lookback_batch ----


@given(st.integers(1, 5), st.integers(2, 12), st.integers(1, 9), st.data())
def test_lookback_batch_targets_are_the_tokens_back_places_earlier(B, T, vocab, data):
    back = data.draw(st.integers(1, T - 1))
    x, y = lookback_batch(B, T, vocab, back=back, generator=gen(data.draw(st.integers(0, 2**16))))
    assert x.shape == y.shape == (B, T) and x.dtype == y.dtype == torch.int64
    assert x.device.type == "cpu" and ((0 <= x) & (x < vocab)).all()
    for b in range(B):  # one position at a time, by the definition
        for t in range(T):
            assert y[b, t].item() == (IGNORE if t < back else x[b, t - back].item())


def test_lookback_batch_is_uniform_and_repeats_with_its_generator():
    x, _ = lookback_batch(1000, 8, 4, generator=gen(0))
    counts = torch.bincount(x.flatten(), minlength=4) / x.numel()
    assert torch.allclose(counts, torch.full((4,), 0.25), atol=0.02)
    assert all(torch.equal(a, b) for a, b in zip(lookback_batch(3, 5, 7, generator=gen(1)),
                                                 lookback_batch(3, 5, 7, generator=gen(1))))
    assert not torch.equal(lookback_batch(3, 5, 7, generator=gen(1))[0], lookback_batch(3, 5, 7, generator=gen(2))[0])
    torch.manual_seed(4)  # without a generator: the global one
    a = lookback_batch(3, 5, 7)[0]
    torch.manual_seed(4)
    assert torch.equal(a, lookback_batch(3, 5, 7)[0])


def test_ignore_is_what_cross_entropy_skips():
    assert IGNORE == inspect.signature(F.cross_entropy).parameters["ignore_index"].default
    logits = torch.randn(4, 3)
    target = torch.tensor([0, IGNORE, 2, IGNORE])
    torch.testing.assert_close(F.cross_entropy(logits, target), F.cross_entropy(logits[[0, 2]], target[[0, 2]]))


@pytest.mark.parametrize(
    ("kwargs", "error", "arg", "got"),
    [
        (dict(B=0, T=4, vocab=3), ValueError, "B", "got 0"),
        (dict(B=2, T="4", vocab=3), TypeError, "T", "got str"),
        (dict(B=2, T=4, vocab=True), TypeError, "vocab", "got bool"),
        (dict(B=2, T=4, vocab=3, back=0), ValueError, "back", "got 0"),
        (dict(B=2, T=4, vocab=3, back=2.0), TypeError, "back", "got float"),
        (dict(B=2, T=4, vocab=3, back=4), ValueError, "back", "got 4"),
        (dict(B=2, T=4, vocab=3, generator=0), TypeError, "generator", "got int"),
    ],
)
def test_lookback_batch_refuses_bad_arguments_clearly(kwargs, error, arg, got):
    assert_refuses(error, arg, lookback_batch, **kwargs, got=got)


# ---- OneHeadModel ----


def model_reference(model, idx, targets=None):
    """Logits and loss by the definition, in float64: one-hot lookups, attention row by row."""
    d = torch.float64
    B, T = idx.shape
    x = F.one_hot(idx, model.vocab).to(d) @ model.token_embedding_table.weight.to(d)  # (B, T, C)
    if model.position_embedding_table is not None:
        x = x + model.position_embedding_table.weight[:T].to(d)
    h = model.sa_head
    q, k, v = (x @ lin.weight.to(d).T for lin in (h.query, h.key, h.value))
    logits = attention_reference(q, k, v) @ model.lm_head.weight.to(d).T + model.lm_head.bias.to(d)
    if targets is None:
        return logits, None
    keep = targets != IGNORE
    logp = logits.log_softmax(dim=-1)[keep]  # (N, vocab), the positions with a target
    return logits, -logp.gather(1, targets[keep].unsqueeze(1)).mean()


@given(st.integers(1, 4), st.integers(1, 9), st.integers(1, 8), st.integers(1, 10), st.booleans(), st.data())
def test_model_matches_its_definition(B, vocab, n_embd, block_size, positions, data):
    T = data.draw(st.integers(1, block_size))
    torch.manual_seed(data.draw(st.integers(0, 2**16)))
    model = OneHeadModel(vocab, n_embd, block_size, positions=positions)
    assert (model.position_embedding_table is not None) == positions
    idx = torch.randint(vocab, (B, T))
    targets = idx.roll(1, dims=1)
    targets[:, 0] = IGNORE
    logits, loss = model(idx, targets if T > 1 else None)
    want_logits, want_loss = model_reference(model, idx, targets if T > 1 else None)
    assert logits.shape == (B, T, vocab) and logits.dtype == torch.float32
    torch.testing.assert_close(logits.double(), want_logits, rtol=1e-5, atol=1e-5)
    if T > 1:
        torch.testing.assert_close(loss.double(), want_loss, rtol=1e-5, atol=1e-5)
    else:
        assert loss is None


def test_attention_weights_are_the_heads_and_chapter_3s_recipe():
    torch.manual_seed(0)
    model = OneHeadModel(6, 8, 10)
    idx = torch.randint(6, (3, 7))
    wei = model.attention_weights(idx)  # (B, T, T)
    assert wei.shape == (3, 7, 7) and not wei.requires_grad
    assert torch.equal(wei.triu(diagonal=1), torch.zeros_like(wei))
    torch.testing.assert_close(wei.sum(dim=-1), torch.ones(3, 7))
    scores = model.attention_scores(idx)
    assert torch.equal(torch.softmax(scores, dim=-1), wei)
    assert torch.isneginf(scores.triu(diagonal=1)[:, 0, 1:]).all()
    # the weights are the ones the head applies to its values
    x = model.embed(idx)
    with torch.no_grad():
        torch.testing.assert_close(wei @ model.sa_head.value(x), model.sa_head(x))


def test_without_positions_the_past_is_a_bag_with_positions_it_is_not():
    # The reason for the position table: permuting x[:, :t] leaves a blind model's output at t alone.
    torch.manual_seed(0)
    idx = torch.randint(8, (16, 8))
    perm = torch.randperm(7)
    permuted = torch.cat([idx[:, perm], idx[:, 7:]], dim=1)
    blind, seeing = OneHeadModel(8, 16, 8, positions=False), OneHeadModel(8, 16, 8)
    torch.testing.assert_close(blind(permuted)[0][:, -1], blind(idx)[0][:, -1])
    assert not torch.allclose(seeing(permuted)[0][:, -1], seeing(idx)[0][:, -1])


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "arg", "got"),
    [
        ((0, 4, 8), {}, ValueError, "vocab", "got 0"),
        ((5, 4.0, 8), {}, TypeError, "n_embd", "got float"),
        ((5, 4, None), {}, TypeError, "block_size", "got NoneType"),
        ((5, 4, 8), dict(positions=1), TypeError, "positions", "got int"),
    ],
)
def test_model_refuses_bad_sizes_clearly(args, kwargs, error, arg, got):
    assert_refuses(error, arg, OneHeadModel, *args, got=got, **kwargs)


@pytest.mark.parametrize(
    ("idx", "targets", "error", "arg", "got"),
    [
        ([[1, 2]], None, TypeError, "idx", "got list"),
        (torch.ones(1, 3), None, TypeError, "idx", "got torch.float32"),
        (torch.ones(1, 3, dtype=torch.int32), None, TypeError, "idx", "got torch.int32"),
        (torch.ones(3, dtype=torch.long), None, ValueError,
         "idx", "got shape (3,)"),
        (torch.ones(1, 7, dtype=torch.long), None, ValueError,
         "idx", "got shape (1, 7)"),
        (torch.ones(1, 0, dtype=torch.long), None, ValueError,
         "idx", "got shape (1, 0)"),
        (torch.ones(1, 3, dtype=torch.long, device="meta"), None, ValueError,
         "idx", "idx is on meta but the weights are on cpu"),
        (torch.ones(1, 3, dtype=torch.long), torch.ones(1, 3), TypeError,
         "targets", "got torch.float32"),
        (torch.ones(2, 3, dtype=torch.long), torch.ones(2, 2, dtype=torch.long), ValueError,
         "targets", "got (2, 2)"),
    ],
)
def test_model_refuses_bad_tokens_clearly(idx, targets, error, arg, got):
    assert_refuses(error, arg, OneHeadModel(5, 4, 6), idx, targets, got=got)


def test_a_batch_without_any_target_has_a_nan_loss():
    # As the docstring says: cross_entropy's mean over no targets is 0 / 0.
    idx = torch.tensor([[1, 2]])
    assert OneHeadModel(5, 4, 6)(idx, torch.full_like(idx, IGNORE))[1].isnan()


def test_a_token_outside_the_vocabulary_is_refused_by_the_embedding():
    # The docstring's promise: no value check of ours (it would sync a GPU), nn.Embedding's.
    with pytest.raises(IndexError):
        OneHeadModel(5, 4, 6)(torch.tensor([[1, 5]]))


# ---- train ----


def test_train_repeats_exactly_with_the_same_seeds():
    runs = []
    for _ in range(2):
        torch.manual_seed(3)
        model = OneHeadModel(8, 16, 8)
        runs.append((train(model, steps=20, generator=gen(5)), model.state_dict()))
    (h1, s1), (h2, s2) = runs
    assert h1.shape == (20,) and h1.dtype == torch.float32
    assert torch.equal(h1, h2) and all(torch.equal(s1[k], s2[k]) for k in s1)
    torch.manual_seed(3)
    assert not torch.equal(train(OneHeadModel(8, 16, 8), steps=20, generator=gen(6)), h1)


def test_train_is_the_plain_loop():
    # The loop written out as on the page, on a copy of the same model.
    torch.manual_seed(1)
    model = OneHeadModel(6, 8, 7)
    copy = OneHeadModel(6, 8, 7)
    copy.load_state_dict(model.state_dict())
    got = train(model, steps=15, back=3, batch_size=5, lr=3e-3, generator=gen(4))
    g, optimizer, want = gen(4), torch.optim.AdamW(copy.parameters(), lr=3e-3), []
    for _ in range(15):
        x, y = lookback_batch(5, 7, 6, back=3, generator=g)
        logits, _ = copy(x)
        loss = F.cross_entropy(logits.reshape(-1, 6), y.reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        want.append(loss.item())
    torch.testing.assert_close(got, torch.tensor(want), rtol=0, atol=0)
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), copy.parameters()))


def test_train_records_each_loss_before_its_update():
    torch.manual_seed(0)
    model = OneHeadModel(8, 16, 8)
    x, y = lookback_batch(32, 8, 8, generator=gen(0))
    with torch.no_grad():
        first = model(x, y)[1]
    losses = train(model, steps=2, generator=gen(0))
    assert losses[0] == first and losses[1] != first


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_training_learns_to_look_two_back(seed):
    torch.manual_seed(seed)
    model = OneHeadModel(8, 16, 8)
    before = two_back(model)[0]
    losses = train(model, generator=gen(seed))
    assert abs(losses[0] - math.log(8)) < 0.15  # an untrained guess
    assert losses[-10:].mean() < 0.02
    mean, offsets = two_back(model)
    assert before < 0.4 and mean > 0.95 and offsets == {2}


def test_training_learns_three_back():
    torch.manual_seed(0)
    model = OneHeadModel(8, 16, 8)
    losses = train(model, back=3, generator=gen(0))
    mean, offsets = two_back(model, back=3)
    assert losses[-1] < 0.01 and mean > 0.95 and offsets == {3}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_without_positions_the_loss_stays_above_the_order_blind_floor(seed):
    # The page's exercise, for more than the one seed it shows.
    torch.manual_seed(seed)
    model = OneHeadModel(8, 16, 8, positions=False)
    losses = train(model, generator=gen(seed))
    assert losses[-20:].mean() > 1.2
    mean, offsets = two_back(model)
    assert mean < 0.3 and offsets != {2}


def test_train_with_more_steps_keeps_the_first_ones():
    torch.manual_seed(0)
    short = train(OneHeadModel(8, 16, 8), steps=5, generator=gen(0))
    torch.manual_seed(0)
    long = train(OneHeadModel(8, 16, 8), steps=8, generator=gen(0))
    assert torch.equal(long[:5], short)


class NoSizes(torch.nn.Module):
    pass


@pytest.mark.parametrize(
    ("model", "kwargs", "error", "arg", "got"),
    [
        (torch.nn.Linear(2, 2), {}, TypeError, "model", "got Linear"),
        (NoSizes(), {}, TypeError, "model", "got NoSizes"),
        ("model", {}, TypeError, "model", "got str"),
        (None, dict(steps=0), ValueError, "steps", "got 0"),
        (None, dict(steps=2.0), TypeError, "steps", "got float"),
        (None, dict(batch_size=-1), ValueError, "batch_size", "got -1"),
        (None, dict(back=0), ValueError, "back", "got 0"),
        (None, dict(back=8), ValueError, "back", "got 8"),
        (None, dict(lr=0.0), ValueError, "lr", "got 0.0"),
        (None, dict(lr=float("nan")), ValueError, "lr", "got nan"),
        (None, dict(lr=float("inf")), ValueError, "lr", "got inf"),
        (None, dict(lr="1e-2"), TypeError, "lr", "got str"),
        (None, dict(lr=True), TypeError, "lr", "got bool"),
        (None, dict(generator=1), TypeError, "generator", "got int"),
    ],
)
def test_train_refuses_bad_arguments_clearly_before_training(model, kwargs, error, arg, got):
    if model is None:
        torch.manual_seed(0)
        model = OneHeadModel(8, 4, 8)
    before = {k: v.clone() for k, v in model.state_dict().items()} if isinstance(model, torch.nn.Module) else None
    assert_refuses(error, arg, train, model, **kwargs, got=got)
    if before is not None:
        assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())


# ---- CUDA ----


@needs_cuda
def test_trains_on_cuda_like_on_cpu():
    torch.manual_seed(0)
    cpu = OneHeadModel(8, 16, 8)
    torch.manual_seed(0)
    gpu = OneHeadModel(8, 16, 8).cuda()
    a = train(cpu, steps=5, generator=gen(0))
    b = train(gpu, steps=100, generator=gen(0))
    torch.testing.assert_close(b[:5], a, rtol=1e-4, atol=1e-4)  # the same run, up to rounding
    assert b[-10:].mean() < 0.05
    x, _ = lookback_batch(4, 8, 8, generator=gen(1))
    assert_refuses(ValueError, "idx", gpu, x, got="idx is on cpu but the weights are on cuda")


class NoParameters(torch.nn.Module):
    vocab, block_size = 8, 8

    def forward(self, idx, targets):
        raise AssertionError("not reached")


def _frozen() -> OneHeadModel:
    return OneHeadModel(8, 4, 8).requires_grad_(False)


def _bool_vocab() -> OneHeadModel:
    model = OneHeadModel(8, 4, 8)
    model.vocab = True
    return model


@pytest.mark.parametrize(("make", "kwargs", "error", "arg", "got"), [
    (NoParameters, {}, ValueError, "model", "no parameter that requires grad"),  # was StopIteration
    (_frozen, {}, ValueError, "model", "no parameter that requires grad"),
    (lambda: OneHeadModel(8, 4, 8), dict(steps=10**12), ValueError, "steps", f"got {10**12}"),
    (_bool_vocab, {}, TypeError, "model.vocab", "got bool"),  # was refused by lookback_batch
])
def test_train_refuses_what_it_cannot_train_naming_the_argument(make, kwargs, error, arg, got):
    assert_refuses(error, arg, train, make(), **kwargs, got=got)
