"""Runs what a reader copied from the pages: `python -m tests.run_copied` reads the path of a
page's job (JSON) from each line of its input, runs it, and writes its report beside it
(JOB.report.json). tests/test_browser.py starts it once, in a subprocess, and hands it each page
as soon as it has clicked the page's copy buttons: the pages run one after the other in this one
interpreter, as Sybil runs them in one test process, while the browser copies the next page.

The job holds the page's examples, in page order, and its definitions. An example copied from a
`>>>` session runs statement by statement, as a pasted session runs in Python's interactive
interpreter: where the page shows a statement raising (a doctest's expected traceback), it must
raise that exception, and the statements after it still run. The examples run one after the
other in one namespace, as Sybil runs the page (tests/sybil_pages.py: its setup, seed and
print options, before the first, its teardown after the last), so that each may use what the
ones before it defined. A docstring's examples (the API reference) run, like Sybil's, in their
module's namespace, one per module. The notebook's cells run in one namespace without Sybil's
setup: the first cell sets its own seed. Each definition runs alone, in a fresh namespace, and
must define its name. Each text is compiled under a file name that linecache knows, as if the
reader had saved it: @triton.jit reads its function's source.

Without a CUDA GPU, TRITON_INTERPRET=1 is set before anything imports triton (as the root
conftest.py does), so that chapter 10's kernel runs in Triton's interpreter.
"""

from __future__ import annotations

import doctest
import importlib
import json
import linecache
import os
import sys
import traceback
from pathlib import Path

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")
os.environ.setdefault("MPLBACKEND", "Agg")  # the notebook draws figures; no window here


def _run(code: str, where: str, namespace: dict) -> None:
    filename = f"<copied: {where}>"
    linecache.cache[filename] = (len(code), None, code.splitlines(keepends=True), filename)
    exec(compile(code, filename, "exec"), namespace)


def _statements(example: dict) -> list[tuple[str, str | None]]:
    """(source, the exception the page shows it raising or None) for each statement of a copied
    session, read from the session as shown; the copied text must be their sources."""
    if example.get("shown") is None:  # a notebook cell: copied whole, run whole
        return [(example["code"], None)]
    found = doctest.DocTestParser().get_examples(example["shown"])
    assert "".join(e.source for e in found).rstrip("\n") == example["code"], "copied text != the session's input"
    return [(e.source, e.exc_msg) for e in found]


def _run_example(example: dict, namespace: dict) -> None:
    for n, (source, raises) in enumerate(_statements(example)):
        where = f"{example['where']}, statement {n + 1}"
        if raises is None:
            _run(source, where, namespace)
            continue
        try:
            _run(source, where, namespace)
        except Exception as e:  # the page shows "Type: message"; the type (maybe qualified) must match
            shown = raises.split(":", 1)[0].strip().rsplit(".", 1)[-1]
            assert type(e).__name__ == shown, f"{where}: raised {type(e).__name__}, the page shows {shown}"
        else:
            raise AssertionError(f"{where}: the page shows it raising {raises.strip()}, it did not")


def _failure(where: str) -> dict:
    return {"where": where, "error": traceback.format_exc(limit=-3)}


def run(job: dict) -> dict:
    from tests.sybil_pages import _setup, _teardown

    report: dict = {"examples": 0, "definitions": 0, "failures": []}
    namespaces: dict[str | None, dict] = {}
    for example in job["examples"]:
        module = example.get("module")
        if module not in namespaces:
            namespaces[module] = dict(vars(importlib.import_module(module))) if module else {}
            if job["setup"] == "sybil":
                _setup(namespaces[module])
        try:
            _run_example(example, namespaces[module])
        except Exception:  # a failing example stops the page: what follows may need it
            report["failures"].append(_failure(example["where"]))
            break
        report["examples"] += 1
    if job["setup"] == "sybil":
        _teardown({})
    for definition in job["definitions"]:
        namespace = {"__name__": "copied"}
        try:
            _run(definition["code"], definition["where"], namespace)
            made = namespace.get(definition["name"])
            assert callable(made) and made.__name__ == definition["name"], (
                f"the block does not define {definition['name']}")
        except Exception:
            report["failures"].append(_failure(definition["where"]))
            continue
        report["definitions"] += 1
    return report


def report_path(job: Path) -> Path:
    return job.with_name(job.stem + ".report.json")


if __name__ == "__main__":
    for line in sys.stdin:
        job = Path(line.strip())
        report = run(json.loads(job.read_text(encoding="utf-8")))
        report_path(job).write_text(json.dumps(report), encoding="utf-8")
