"""The claims ledger: sentences in prose that no example beside them prints.

Each entry quotes a fragment of a page and a function that checks the claim in
code against the installed torch (or, for history and sources, names the
citation the page gives). The fragment must still be on the page, so the ledger
cannot outlive its sentence.

A second test finds every measured quantity in prose (a percentage, a ratio
written with "×" or "x", a time, a size in bytes, an error in eps, ulp or units,
or any decimal number) and fails unless it also appears in the output of an
example on the same page or in a ledger fragment. Integers without a unit
("T = 4", "chapter 2") describe examples and are not measured quantities. Code
(fences and inline code), HTML comments, link targets and section numbers
("section 3.2.1") are not prose. Numbers
a page renders from the results files at build time are not in its Markdown.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest
import torch
import torch.nn.functional as F

from tests.pages import DOCS, ROOT, fences, pages


@dataclass(frozen=True)
class Claim:
    page: str
    fragment: str
    check: Callable[[], None] | None = None
    source: str | None = None  # history and sources: what the page cites

    def __str__(self) -> str:
        return f"{self.page}: {self.fragment[:50]}"


def _version() -> tuple[int, int]:
    major, minor = torch.__version__.split(".")[:2]
    return int(major), int(minor)


def _fully_masked_row(**kwargs) -> torch.Tensor:
    torch.manual_seed(0)
    q, k, v = torch.randn(3, 1, 4, 8).unbind(0)
    mask = torch.tril(torch.ones(4, 4, dtype=torch.bool)) & torch.tensor([False, True, True, True])
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)[0, 0]


def sdpa_zeroes_fully_masked_rows_since_2_5():
    row = _fully_masked_row()
    assert (row == 0).all() if _version() >= (2, 5) else row.isnan().all()


def sdpa_zeroes_a_query_whose_only_key_is_minus_inf_since_2_5():
    q, v = torch.ones(4, 1), torch.arange(4.0).unsqueeze(-1)
    k = torch.tensor([[float("-inf")], [0.0], [1.0], [2.0]])
    row = F.scaled_dot_product_attention(q, k, v, is_causal=True)[0]
    assert (row == 0).all() if _version() >= (2, 5) else row.isnan().all()


def mha_nan_with_weights_zero_without():
    torch.manual_seed(0)
    layer = torch.nn.MultiheadAttention(8, 2, batch_first=True)
    x = torch.randn(1, 4, 8)
    masked = ~(torch.tril(torch.ones(4, 4, dtype=torch.bool)) & torch.tensor([False, True, True, True]))
    with_weights, _ = layer(x, x, x, attn_mask=masked)
    without, _ = layer(x, x, x, attn_mask=masked, need_weights=False)
    assert with_weights[0, 0].isnan().all()
    if _version() >= (2, 5):  # training mode: through F.scaled_dot_product_attention, zeros
        assert torch.equal(without[0, 0], layer.out_proj.bias)
    layer.eval()
    with torch.no_grad():  # the fused fast path
        fast, _ = layer(x, x, x, attn_mask=masked, need_weights=False)
    assert fast[0, 0].isnan().all()


def linear_init_is_uniform_in_one_over_sqrt_n():
    torch.manual_seed(0)
    n = 64
    w = torch.nn.Linear(n, 4096, bias=False).weight
    bound = n**-0.5
    assert w.abs().max() <= bound and w.abs().max() > 0.99 * bound
    assert abs(w.var().item() - bound**2 / 3) < 0.02 * bound**2  # variance of U(-b, b): b^2 / 3


def cpu_cumsum_accumulates_in_a_wider_dtype():
    # A float32 running total would drop each 1 added to 2**24; a float64 one keeps them.
    x = torch.tensor([2.0**24, 1.0, 1.0])
    assert x.cumsum(0)[-1] == 2.0**24 + 2
    # The same in bfloat16 above 256, with float32 totals inside.
    y = torch.tensor([256.0, 1.0, 1.0], dtype=torch.bfloat16)
    assert y.cumsum(0)[-1] == 258


def cpu_bandwidth_point_output_is_64_mib():
    import json

    (path,) = (DOCS / "appendix" / "results").glob("cpu-*.json")  # the committed CPU file
    data = json.loads(path.read_text(encoding="utf-8"))
    B, T, C = data["config"]["bandwidth"]
    assert B * T * C * 4 == 64 * 2**20  # float32


def cpu_cumsum_takes_many_copies_at_every_bandwidth_point():
    from bench import validate

    files = sorted((DOCS / "appendix/results").glob("cpu-*.json"))
    assert files
    for path in files:
        ms = {r.method: r.ms for r in validate.load(path).bandwidth if r.dtype == "float32"}
        assert ms["prefix_mean_cumsum"] > 4 * ms["clone"], path.name  # "many times" 


def clone_rates_in_the_sweep_and_at_the_bandwidth_point():
    from bench import validate

    files = sorted((DOCS / "appendix/results").glob("*.json"))
    assert files
    for path in files:
        res = validate.load(path)
        for dtype in res.config.dtypes:
            sweep = sorted((r.T, r.bytes / r.ms) for r in res.results
                           if r.method == "clone" and r.dtype == dtype and r.status == "ok")
            point = [r.bytes / r.ms for r in res.bandwidth if r.method == "clone" and r.dtype == dtype]
            assert sweep and len(point) == 1, path.name
            rates = [rate for _, rate in sweep]
            if res.env.device_type == "cpu":
                assert min(rates) > point[0], path.name
            else:
                assert rates[-1] >= 10 * rates[0] and rates[-1] < point[0], (path.name, dtype)


def gpu_cumsum_many_copies_at_the_bandwidth_point_more_in_most_of_the_sweep():
    from bench import validate

    files = sorted((DOCS / "appendix/results").glob("cuda-*.json"))
    assert files
    for path in files:
        res = validate.load(path)
        for dtype in res.config.dtypes:
            point = {r.method: r.ms for r in res.bandwidth if r.dtype == dtype}
            at_point = point["prefix_mean_cumsum"] / point["clone"]
            sweep: dict[int, dict[str, float]] = {}
            for r in res.results:
                if r.dtype == dtype and r.status == "ok" and r.method in ("clone", "prefix_mean_cumsum"):
                    sweep.setdefault(r.T, {})[r.method] = r.ms
            ratios = [m["prefix_mean_cumsum"] / m["clone"] for m in sweep.values() if len(m) == 2]
            assert at_point > 4, (path.name, dtype, at_point)  # "many times"
            assert 2 * sum(q > at_point for q in ratios) > len(ratios), (path.name, dtype)


def causal_lower_right_is_there_in_every_supported_version():
    from torch.nn.attention.bias import causal_lower_right  # the page runs it too

    assert causal_lower_right(2, 5).seq_len_q == 2
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    floor = re.fullmatch(r"torch>=([\d.]+)", project["dependencies"][0]).group(1)
    assert tuple(map(int, floor.split("."))) >= (2, 3), floor  # the lowest torch supported has it


def python_version_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["requires-python"] == ">=3.11"


LEDGER = [
    Claim("appendix/engineering.md", "For query 0, PyTorch on the CPU returns 0 instead of `nan`\nfrom version 2.5 on, and `nan` in 2.4",
          sdpa_zeroes_a_query_whose_only_key_is_minus_inf_since_2_5),
    Claim("appendix/engineering.md", "On the CPU, since PyTorch 2.5,", sdpa_zeroes_fully_masked_rows_since_2_5,
          source="https://github.com/pytorch/pytorch/pull/133882"),
    Claim("appendix/engineering.md", "[pull request 133882](https://github.com/pytorch/pytorch/pull/133882)); 2.4",
          sdpa_zeroes_fully_masked_rows_since_2_5),
    Claim("appendix/engineering.md", "`nn.MultiheadAttention` returns NaN with its default `need_weights=True`",
          mha_nan_with_weights_zero_without),
    Claim("appendix/engineering.md", "but in evaluation mode without autograd its fused fast path\nreturns NaN again",
          mha_nan_with_weights_zero_without),
    Claim("appendix/engineering.md", "from `n_embd` inputs with weights drawn uniformly between",
          linear_init_is_uniform_in_one_over_sqrt_n),
    Claim("08-linear-time.md", "accumulate internally in higher\nprecision (float64 for float32 input, float32 for bfloat16)",
          cpu_cumsum_accumulates_in_a_wider_dtype),
    Claim("appendix/timing.md", "starts at 128 KiB and rises as such\nblocks are freed, but never above 32 MiB",
          source="glibc mallopt(3), M_MMAP_THRESHOLD; malloc.c: DEFAULT_MMAP_THRESHOLD_MIN = 128 * 1024, "
                 "DEFAULT_MMAP_THRESHOLD_MAX = 4 * 1024 * 1024 * sizeof(long)"),
    Claim("appendix/fast-prefix-mean.md", "still it takes many times as long\nas copying `x`",
          cpu_cumsum_takes_many_copies_at_every_bandwidth_point),
    Claim("appendix/timing.md", "`clone` copies faster at\n  every $T$ of the sweep than at the bandwidth point", clone_rates_in_the_sweep_and_at_the_bandwidth_point),
    Claim("appendix/timing.md", "rate at the largest $T$ of the sweep is many times its rate at the smallest, the mark\n  of fixed costs per call, and still below its rate at the bandwidth point", clone_rates_in_the_sweep_and_at_the_bandwidth_point),
    Claim("appendix/timing.md", "yet many times `clone`'s time at the bandwidth point, and more still at\nmost of the sweep's shapes",
          gpu_cumsum_many_copies_at_the_bandwidth_point_more_in_most_of_the_sweep),
    Claim("appendix/timing.md", "So a 64 MiB output, as at the CPU's\nbandwidth point", cpu_bandwidth_point_output_is_64_mib),
    Claim("appendix/timing.md", "FlashAttention-2, Dao, 2023, since PyTorch 2.2",
          source="PyTorch 2.2 release notes: FlashAttention-2 in scaled_dot_product_attention"),
    Claim("index.md", "With Python 3.11 or newer", python_version_matches_pyproject),
    Claim("index.md", "each time links to that moment of the lecture, as its own chapter\nlist gives it",
          source="the chapter list in the description of youtube.com/watch?v=kCc8FmEb1nY (00:42:13 version 1, "
                 "00:47:11 the trick, 00:51:54 version 2, 00:54:42 version 3, 01:00:18 positional encoding, "
                 "01:02:00 version 4, 01:11:38 note 1, 01:14:14 note 4, 01:15:39 note 5, 01:16:56 note 6, "
                 "01:19:11 a single self-attention block, 01:21:59 multi-headed self-attention, 01:24:25 "
                 "feedforward, 01:26:48 residual connections, 01:32:51 layernorm); checked against a transcript "
                 "that carries the same chapter markers"),
    Claim("appendix/engineering.md", "2.3](https://docs.pytorch.org/docs/2.3/nn.attention.bias.html), a release older\nthan any this site supports",
          causal_lower_right_is_there_in_every_supported_version,
          source="https://docs.pytorch.org/docs/2.3/nn.attention.bias.html"),
]



def _reading_time_claims() -> list[Claim]:
    """Each chapter's stated reading time, an estimate the formula in tests/pages.py gives."""
    from tests.pages import MINUTES, reading_minutes

    out = []
    for page in sorted(DOCS.glob("[0-9][0-9]-*.md")):
        stated = MINUTES.search(page.read_text(encoding="utf-8"))
        if stated:
            def check(page=page, n=int(stated[1])):
                assert n == reading_minutes(page), (page.name, n, reading_minutes(page))
            out.append(Claim(page.name, stated[0], check))
    return out


LEDGER += _reading_time_claims()


def _normal(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("claim", LEDGER, ids=str)
def test_the_claim_is_still_on_its_page(claim):
    text = (DOCS / claim.page).read_text(encoding="utf-8")
    assert _normal(claim.fragment) in _normal(text), f"{claim}: sentence gone; update the ledger"
    assert claim.check or claim.source, f"{claim}: neither checked nor cited"


@pytest.mark.parametrize("claim", [c for c in LEDGER if c.check], ids=str)
def test_the_claim_holds(claim):
    claim.check()


QUANTITY = re.compile(
    r"""(?<![\w.])(
        \d+(?:[.,]\d+)*\s*(?:%|percent\b)
      | \d+(?:\.\d+)?\s*(?:×|x(?=[\s,.;)]|$))
      | \d+(?:\.\d+)?\s*(?:ns|µs|us|ms|s|seconds?|minutes?|hours?)\b
      | \d+(?:\.\d+)?\s*(?:[KMGT]i?B|bytes?)\b
      | \d+(?:\.\d+)?\s*(?:eps|ulps?|units?)\b
      | \d+\.\d+
    )""",
    re.X,
)


def prose(page: Path, text: str | None = None) -> str:
    """The page with code, comments and link targets blanked out, line breaks kept."""
    text = page.read_text(encoding="utf-8") if text is None else text
    chars = list(text)
    for fence in fences(page) if text is None else []:
        end = text.find("\n", fence.end)
        for i in range(fence.start, len(text) if end < 0 else end):
            if chars[i] != "\n":
                chars[i] = " "
    out = "".join(chars)
    blank = lambda m: re.sub(r"[^\n]", " ", m.group(0))  # noqa: E731
    out = re.sub(r"<!--.*?-->", blank, out, flags=re.S)
    out = re.sub(r"`[^`\n]*`", blank, out)
    out = re.sub(r"\]\([^)\s]*\)", blank, out)  # link targets
    out = re.sub(r"\bsection \d+(?:\.\d+)*", blank, out)  # a paper's section number
    return out


def unregistered(page: Path, text: str | None = None) -> list[str]:
    source = page.read_text(encoding="utf-8") if text is None else text
    outputs = "\n".join(f.body for f in fences(page)) if text is None else ""
    name = page.relative_to(DOCS).as_posix()
    ledger = " ".join(_normal(c.fragment) for c in LEDGER if c.page == name)
    found = []
    for m in QUANTITY.finditer(prose(page, text)):
        number = re.match(r"\d+(?:[.,]\d+)*", m.group(1)).group(0)
        if number in outputs or _normal(m.group(1)) in ledger:
            continue
        line = source.count("\n", 0, m.start()) + 1
        found.append(f"{name}:{line}: {m.group(1)!r}")
    return found


@pytest.mark.parametrize("page", pages(), ids=lambda p: p.relative_to(DOCS).as_posix())
def test_every_measured_quantity_in_prose_is_printed_or_in_the_ledger(page):
    found = unregistered(page)
    assert not found, ("numbers in prose that no example prints and the ledger does not check:\n"
                       + "\n".join(found))


@pytest.mark.parametrize("planted", ["It runs 2.2× faster.", "about 37% of the time", "It takes 12 ms.",
                                     "a 3 GiB buffer", "within 4 ulp", "a score of 0.731"])
def test_a_planted_number_is_caught(planted, tmp_path):
    page = DOCS / "01-by-hand.md"
    text = page.read_text(encoding="utf-8") + f"\n{planted}\n"
    assert unregistered(page, text), planted
