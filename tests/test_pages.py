"""Guards around the executable pages: nothing silently skipped, every shown block copyable."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import linecache
import re

import pytest
import torch

from snippets.attention import MultiHeadAttention
from snippets.inference import KVCache
from snippets.learning import OneHeadModel
from tests.pages import CHECKS, DOCS, MINUTES, ROOT, checks_needed, expand, fences, pages, reading_minutes, section

sybil_pages = pytest.importorskip("tests.sybil_pages", reason="Sybil is not installed", exc_type=ImportError)

ALL_FENCES = [f for p in pages() for f in fences(p)]
INCLUDE_FENCES = [f for f in ALL_FENCES if f.includes]


def test_sybil_collects_every_page():
    # PurePath.match quirks have hidden top-level pages before; check each file.
    missing = [p for p in pages() if not sybil_pages.DOCS.should_parse(p)]
    assert not missing and pages(), f"Sybil would not collect: {missing}"


@pytest.mark.parametrize("page", pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_python_block_runs_or_is_skipped_on_purpose(page):
    """Sybil ignores ```pycon and fences with attributes without a word; we don't."""
    # A doctest block becomes one region per >>> example, so look for any region inside.
    starts = [region.start for region in sybil_pages.DOCS.parse(page)]
    silent = [
        str(f)
        for f in fences(page)
        if f.is_python and not f.includes and not any(f.start <= s < f.end for s in starts)
    ]
    assert not silent, (
        "Python blocks that Sybil would not run: use a plain ```python fence, "
        "or put <!-- skip: next --> before it with a reason:\n" + "\n".join(silent)
    )


# Every fence with a --8<-- line, chosen at collection, so that each case reaches its assertions.
FENCES_WITH_INCLUDES = [f for f in ALL_FENCES
                        if any(line.lstrip().startswith("--8<--") for line in f.body.splitlines())]


def test_there_are_include_blocks():
    assert len(FENCES_WITH_INCLUDES) >= 10 and {str(f) for f in INCLUDE_FENCES} <= {str(f) for f in FENCES_WITH_INCLUDES}


@pytest.mark.parametrize("fence", FENCES_WITH_INCLUDES, ids=str)
def test_include_blocks_are_never_run_by_sybil(fence):
    # A --8<-- line is not Python: such a block must carry a title (which Sybil skips).
    assert fence.includes, f"{fence}: mixes --8<-- includes with other lines"
    assert fence.info != "python", f"{fence}: Sybil would try to run the include line"


# For every function or class that a page shows, how to call it (after a fixed
# seed); the copied definition and the package's must give the same result.
CALLS = {
    "causal_mean_weights": lambda f: f(5, dtype=torch.float64),
    "prefix_mean_loop": lambda f: f(torch.randn(2, 7, 3, dtype=torch.float64)),
    "prefix_mean_matmul": lambda f: f(torch.randn(2, 7, 3, dtype=torch.float64)),
    "prefix_mean_softmax": lambda f: f(torch.randn(2, 7, 3, dtype=torch.float64)),
    "prefix_mean_cumsum": lambda f: f(torch.randn(2, 7, 3, dtype=torch.float64)),
    # Chapters 4-8. Modules are built after a fixed seed, so both get the same weights.
    "causal_attention": lambda f: f(*torch.randn(3, 2, 5, 4, dtype=torch.float64).unbind(0)),
    "Head": lambda f: (f(4, 3, 8)(torch.randn(2, 6, 4)), _decode(f(4, 3, 8), KVCache(), torch.randn(2, 7, 4))),
    "MultiHeadAttention": lambda f: (f(6, 2, 8)(torch.randn(2, 5, 6)),
                                     _decode(f(6, 2, 8), KVCache(), torch.randn(2, 7, 6))),
    "lookback_batch": lambda f: f(3, 7, 5, back=3, generator=torch.Generator().manual_seed(0)),
    "OneHeadModel": lambda f: (lambda m, x: (m(x, x.roll(2, 1)), m.attention_weights(x)))(
        f(5, 6, 8), torch.randint(5, (2, 7))),
    # train is given the package's model (made after the seed), so both train the same weights.
    "train": lambda f: f(OneHeadModel(5, 6, 8), steps=3, generator=torch.Generator().manual_seed(0)),
    # A small input and one large enough for the blocked path, each with a tail block.
    "prefix_mean_fast": lambda f: (f(torch.randn(2, 37, 3, dtype=torch.float64)), f(torch.randn(8, 1001, 160))),
    "causal_linear_attention": lambda f: f(*torch.randn(3, 2, 9, 4, dtype=torch.float64).unbind(0)),
    "causal_linear_attention_quadratic": lambda f: f(*torch.randn(3, 2, 9, 4, dtype=torch.float64).unbind(0)),
    # Chapter 7: positions that are not 0..T-1, and a float64 table.
    "apply_rotary": lambda f: f(torch.randn(2, 5, 6, dtype=torch.float64), torch.arange(-2, 3)),
    "sinusoidal_positions": lambda f: f(7, 6, base=100.0, dtype=torch.float64),
    # Chapter 11: the copied cache serves the package's modules, the copied modules the package's cache.
    "KVCache": lambda f: _decode(MultiHeadAttention(6, 2, 8), f(), torch.randn(2, 7, 6)),
    "decode_macs": lambda f: [f(T, 8, cached=c) for T in range(1, 9) for c in (False, True)],
    # Chapter 10: long enough for several tiles, on the device where the kernel runs (a GPU, or
    # the interpreter on a CPU).
    "prefix_mean_triton": lambda f: f(torch.randn(2, 70, 3, dtype=torch.float64, device=_KERNEL_DEVICE)),
    # Chapter 9: a block that does not divide T.
    "online_causal_attention": lambda f: f(*torch.randn(3, 2, 9, 4, dtype=torch.float64).unbind(0), block=4),
}


_KERNEL_DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def _decode(module, cache, x, sizes=(3, 1, 2, 1)):
    """module over x in chunks through cache, side by side, and what the cache then holds."""
    bounds = [0, *torch.tensor(sizes).cumsum(0).tolist()]
    out = torch.cat([module(x[:, a:b], cache) for a, b in zip(bounds, bounds[1:])], dim=1)
    return out, cache.k, cache.v


def _shown_definitions():
    for fence in INCLUDE_FENCES:
        for path, name in fence.includes:
            if name not in (None, "imports") and path != CHECKS:  # a check helper is no definition
                yield pytest.param(fence, path, name, id=f"{fence.page.name}:{name}")


@pytest.mark.parametrize(("fence", "path", "name"), list(_shown_definitions()))
def test_shown_block_works_alone(fence, path, name):
    """Exec exactly the text of the block, in a fresh namespace, as a reader who copies it."""
    if path == "snippets/kernels.py" and importlib.util.find_spec("triton") is None:
        pytest.skip("needs triton, which cannot be imported here")
    code = expand(fence)
    assert "snippets" not in code.replace("snippets/", ""), f"{fence}: shown code imports the package"
    namespace = {"__name__": "copied"}
    # As from a file the reader saved: @triton.jit reads its function's source.
    filename = f"<copied {fence}>"
    linecache.cache[filename] = (len(code), None, code.splitlines(keepends=True), filename)
    exec(compile(code, filename, "exec"), namespace)
    copied = namespace[name]
    module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
    original = getattr(module, name)
    assert name in CALLS, f"add a call for {name} to CALLS so its copied form is checked"
    torch.manual_seed(0)
    expected = CALLS[name](original)
    torch.manual_seed(0)
    got = CALLS[name](copied)
    torch.testing.assert_close(got, expected, rtol=0, atol=0)
    # The shown text is the package's own source, not a look-alike.
    assert inspect.getsource(original).strip() in section(path, name)


@pytest.mark.parametrize("fence", [f for f in INCLUDE_FENCES if any(p != CHECKS for p, _ in f.includes)], ids=str)
def test_a_block_carries_exactly_the_check_helpers_its_definitions_call(fence):
    """All that the code calls, through other helpers too, so that it runs alone; nothing more,
    so that a copy stays short. After the definitions, in the order of snippets/checks.py."""
    shown = [(p, s) for p, s in fence.includes if p != CHECKS]
    included = [s for p, s in fence.includes if p == CHECKS]
    assert fence.includes == shown + [(CHECKS, s) for s in included], f"{fence}: checks go last"
    need = checks_needed("".join(section(p, s) for p, s in shown))
    assert included == need, f"{fence}: includes {included} from {CHECKS}, needs {need}"


def test_every_check_helper_is_a_section_of_its_own():
    import snippets.checks

    for name in snippets.checks.__all__:
        assert checks_needed(name)[-1:] == [name], name


def test_every_public_function_is_shown_on_a_page():
    import snippets

    shown = {name for f in INCLUDE_FENCES for _, name in f.includes}
    assert set(snippets.__all__) <= shown, set(snippets.__all__) - shown


CHAPTERS = sorted(DOCS.glob("[0-9][0-9]-*.md"))


def test_each_chapter_title_carries_its_file_number_and_its_nav_entry():
    """The page's heading, its file name and mkdocs.yml's nav agree: "# 5. Multi-head attention"
    is docs/05-*.md and the nav's "5. Multi-head attention" (a renumbering once missed two)."""
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    for page in CHAPTERS:
        title = page.read_text(encoding="utf-8").splitlines()[0]
        m = re.fullmatch(r"# (\d+)\. (.+)", title)
        assert m and int(m[1]) == int(page.name[:2]), f"{page.name}: its heading is {title!r}"
        assert f"  - {m[1]}. {m[2]}: {page.name}\n" in nav, f"{page.name}: the nav has no entry {m[1]}. {m[2]}"


@pytest.mark.parametrize("page", CHAPTERS, ids=lambda p: p.name)
def test_a_chapter_opens_with_what_it_teaches_and_its_time_and_ends_with_a_recap(page):
    text = page.read_text(encoding="utf-8")
    lines = text.splitlines()
    assert lines[0].startswith("# ") and lines[2] == '!!! abstract "In this chapter"', page.name
    assert lines[3].startswith("    You will learn "), page.name
    stated = MINUTES.search(lines[3])
    assert stated and int(stated[1]) == reading_minutes(page), (
        f"{page.name}: the box says {stated and stated[1]} minutes, its length gives {reading_minutes(page)}"
    )
    recap = text.rsplit("\n## ", 1)[-1].splitlines()
    assert recap[0] == "Recap", f"{page.name}: the last section is not the recap"
    items = [ln for ln in recap[1:] if ln.strip()]
    assert len(items) == 3 and all(ln.startswith("- ") for ln in items), f"{page.name}: a recap has three lines"


@pytest.mark.parametrize("page", CHAPTERS, ids=lambda p: p.name)
def test_each_exercise_has_its_own_solution(page):
    text = page.read_text(encoding="utf-8")
    exercises = text.split("\n## Exercises\n", 1)[1].split("\n## ", 1)[0]
    asked = re.findall(r"^(\d+)\. ", exercises, re.M)
    answered = re.findall(r'^\?\?\? success "Solution (\d+)"$', exercises, re.M)
    assert asked and asked == answered, f"{page.name}: exercises {asked}, solutions {answered}"
