"""What a function runs, seen through torch's profiler: for tests of what a page says a function
does ("one batched product with a 16-by-16 triangle"), without naming its internals."""

from __future__ import annotations

def aten_calls(fn, *args) -> list[tuple[str, list]]:
    """(name, input shapes) of every ATen operator `fn(*args)` runs, from torch's profiler: it sees
    inside custom autograd Functions, where a TorchFunctionMode does not."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        fn(*args)
    return [(e.name, e.input_shapes) for e in prof.events() if e.name.startswith("aten::")]


def block_products(fn, x) -> list[list]:
    """The input shapes of each batched matrix product (aten::bmm) that fn(x) makes."""
    return [shapes for name, shapes in aten_calls(fn, x) if name == "aten::bmm"]
