"""One contract for every public function and module of `snippets` (the registry: tests/contracts.py).

The chapters' own tests check what each function computes; these check what every one of them
promises alike: gradients, untouched inputs, low precision, strided views, causality (the
non-finite policy of chapter 12 included) and the GPU.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import snippets
from tests.contracts import PROPERTIES, REGISTRY, cases, outputs
from tests.marks import needs_cuda
from tests.pages import ROOT


def test_the_registry_covers_every_public_name_and_property():
    assert set(REGISTRY) == set(snippets.__all__), "tests/contracts.py: REGISTRY must list exactly snippets.__all__"
    for name, entry in REGISTRY.items():
        assert set(entry.not_applicable) <= set(PROPERTIES), name
        assert all(reason.strip() for reason in entry.not_applicable.values()), name
        for prop in PROPERTIES:
            runs = any(param.values[0] == name for param in cases(prop))
            assert runs or prop in entry.not_applicable, f"{name}: {prop} is neither run by a case nor excused"


def test_the_reasons_that_cite_a_page_are_true():
    assert "chapter 6 says to compile the model" in REGISTRY["train"].not_applicable["compiles"]
    assert "torch.compile(model)" in (ROOT / "docs/06-learning.md").read_text(encoding="utf-8")


def _parameters(fn):
    return dict(fn.named_parameters()) if isinstance(fn, nn.Module) else {}


@pytest.mark.parametrize(("name", "case"), cases("gradcheck"))
def test_gradcheck(name, case):
    fn, args = case.make(torch.float64, "cpu")
    floats = [i for i, a in enumerate(args) if a.is_floating_point()]
    params = _parameters(fn)

    def f(*inputs):
        full = list(args)
        for i, a in zip(floats, inputs):
            full[i] = a
        if not params:
            return fn(*full)
        return torch.func.functional_call(fn, dict(zip(params, inputs[len(floats):])), tuple(full))

    inputs = [args[i].detach().clone().requires_grad_() for i in floats]
    inputs += [p.detach().clone().requires_grad_() for p in params.values()]
    assert torch.autograd.gradcheck(f, tuple(inputs))


@pytest.mark.parametrize(("name", "case"), cases("unmodified"))
def test_inputs_are_left_unmodified(name, case):
    fn, args = case.make(torch.float32, "cpu")
    before = [a.clone() for a in args]
    state = {k: v.clone() for k, v in fn.state_dict().items()} if isinstance(fn, nn.Module) else {}
    out = outputs(fn(*args))
    assert all(torch.equal(a, b) for a, b in zip(args, before)), "an input changed"
    if state:
        assert all(torch.equal(fn.state_dict()[k], v) for k, v in state.items()), "a parameter changed"
    assert not {o.data_ptr() for o in out} & {a.data_ptr() for a in args}, "the output shares an input's memory"


def _float32_twin(case, fn, args):
    """fn and args of float32 holding exactly the numbers of low-precision fn and args."""
    fn32 = copy.deepcopy(fn).float() if isinstance(fn, nn.Module) else case.make(torch.float32, "cpu")[0]
    return fn32, [a.float() if a.is_floating_point() else a for a in args]


@pytest.mark.parametrize(("name", "case"), cases("low_precision"))
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
def test_low_precision_keeps_the_dtype_and_stays_close_to_float32(name, case, dtype):
    fn, args = case.make(dtype, "cpu")
    got = outputs(fn(*args))
    fn32, args32 = _float32_twin(case, fn, args)
    want = outputs(fn32(*args32))
    tol = case.eps * torch.finfo(dtype).eps
    for g, w in zip(got, want, strict=True):
        assert g.dtype == dtype and g.isfinite().all()
        torch.testing.assert_close(g.float(), w, rtol=tol, atol=tol)


def _strided(a):
    """The values of a in memory that is not contiguous: every other element of a wider tensor."""
    view = torch.stack([a, torch.zeros_like(a)], dim=-1)[..., 0]
    assert torch.equal(view, a) and (not view.is_contiguous() or a.numel() <= 1)
    return view


@pytest.mark.parametrize(("name", "case"), cases("non_contiguous"))
def test_strided_views_give_the_result_of_contiguous_copies(name, case):
    fn, args = case.make(torch.float32, "cpu")
    for got, want in zip(outputs(fn(*map(_strided, args))), outputs(fn(*args)), strict=True):
        torch.testing.assert_close(got, want)


def _causal_params() -> list:
    return [pytest.param(*param.values, arg, id=f"{param.id}-{arg}", marks=param.marks)
            for param in cases("causal") for arg in param.values[1].time]


def _changed_from(a, dim, j):
    """a with every entry at positions j.. along dim changed (other numbers; other tokens)."""
    b = a.clone()
    tail = b.narrow(dim, j, a.shape[dim] - j)
    if a.is_floating_point():
        tail.copy_(torch.randn(tail.shape, generator=torch.Generator().manual_seed(1)))
    else:
        tail.copy_((tail == 0).to(a.dtype))  # 0 -> 1, anything else -> 0: each token changes
    return b


@pytest.mark.parametrize(("name", "case", "arg"), _causal_params())
def test_later_positions_never_change_earlier_outputs(name, case, arg):
    fn, args = case.make(torch.float32, "cpu")
    i, dim = case.names.index(arg), case.time[arg]
    clean = case.output(fn(*args))
    T = args[i].shape[dim]
    assert clean.shape[-2] == T > 2
    for j in (0, T // 2, T - 1):
        changed = list(args)
        changed[i] = _changed_from(args[i], dim, j)
        out = case.output(fn(*changed))
        assert torch.equal(out[..., :j, :], clean[..., :j, :]), f"a change at {j} of {arg} changed the past"
        assert not torch.equal(out[..., j:, :], clean[..., j:, :]), f"a change at {j} of {arg} reached nothing"
        if not args[i].is_floating_point():
            continue  # tokens and positions: integers cannot be nan or inf
        for bad in (float("nan"), float("inf"), float("-inf")):
            dirty = list(args)
            dirty[i] = args[i].clone()
            dirty[i].select(dim, j)[..., :3] = bad
            out = case.output(fn(*dirty))
            assert torch.equal(out[..., :j, :], clean[..., :j, :]), f"{bad} at {j} of {arg} changed the past"


@needs_cuda
@pytest.mark.parametrize(("name", "case"), cases("cuda"))
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_cuda_gives_the_result_of_the_cpu(name, case, dtype):
    fn, args = case.make(dtype, "cpu")
    fn_gpu, args_gpu = case.make(dtype, "cuda")
    got, want = outputs(fn_gpu(*args_gpu)), outputs(fn(*args))
    # bfloat16: each device within case.eps of float32 (the low-precision contract), so within twice that
    eps = 2 * case.eps * torch.finfo(dtype).eps
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == torch.float32 else dict(rtol=eps, atol=eps)
    for g, w in zip(got, want, strict=True):
        assert g.device.type == "cuda" and g.dtype == w.dtype
        torch.testing.assert_close(g.cpu(), w, **tol)


@pytest.mark.parametrize(("name", "case"), cases("compiles"))
def test_compiles_into_one_graph(name, case):
    torch._dynamo.reset()
    fn, args = case.make(torch.float32, "cpu")
    compiled = torch.compile(fn, fullgraph=True, backend="eager")
    torch.manual_seed(0)  # lookback_batch draws from the global generator: the same tokens twice
    got = outputs(compiled(*args))
    torch.manual_seed(0)
    for got, want in zip(got, outputs(fn(*args)), strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=0)


@pytest.mark.parametrize(("name", "case"), cases("meta"))
def test_runs_on_the_meta_device(name, case):
    fn, args = case.make(torch.float32, "meta")
    real_fn, real_args = case.make(torch.float32, "cpu")
    got, want = outputs(fn(*args)), outputs(real_fn(*real_args))
    assert [g.device.type for g in got] == ["meta"] * len(want)
    assert [g.shape for g in got] == [w.shape for w in want]
