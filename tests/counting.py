"""Counting the torch calls a function makes, through torch's public function-override mode:
for tests of what a page says a function does ("15 additions"), without naming its internals."""

from __future__ import annotations

from torch.overrides import TorchFunctionMode


class CallCount(TorchFunctionMode):
    """`with CallCount(torch.Tensor.add_) as count: f(x)`, then `count.n`."""

    def __init__(self, func):
        super().__init__()
        self.func, self.n = func, 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.n += func is self.func
        return func(*args, **(kwargs or {}))
