"""The timing harness runs end to end on tiny sizes, records every failure, and its results render."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import torch

from snippets import figures, report, timing
from tests.pages import DOCS, ROOT

TINY = ["--T", "8", "16", "-B", "2", "-C", "8", "--heads", "2", "--repeats", "2", "--warmup", "1",
        "--matmul-size", "64", "--bandwidth", "2", "64", "8"]
RESULTS = sorted((DOCS / "appendix" / "results").glob("*.json"))
CUDA = torch.cuda.is_available()


def _run(tmp_path, *extra, name="out.json") -> tuple[dict, str]:
    out = tmp_path / name
    assert timing.main([*TINY, "--device", "cpu", *extra, "--out", str(out)]) == 0
    return json.loads(out.read_text()), out


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict:
    """One whole default-method run on the CPU at tiny sizes, memory included."""
    doc, _ = _run(tmp_path_factory.mktemp("timing"))
    return doc


def test_every_method_is_measured_or_skipped_with_a_reason(tiny):
    cfg = tiny["config"]
    assert cfg["methods"] == timing.method_names(False)
    got = [(r["dtype"], r["T"], r["method"]) for r in tiny["results"]]
    assert got == [(d, T, m) for d in cfg["dtypes"] for T in cfg["Ts"] for m in cfg["methods"]]
    for r in tiny["results"]:
        assert r["status"] in timing.STATUSES, r
        if r["status"] == "ok":
            assert r["ms"] > 0 and len(r["samples_ms"]) >= 1 and r["calls_per_sample"] >= 1, r
            assert r["gbps"] > 0 and r["bytes"] > 0, r
        else:
            assert r["status"] == "skipped" and r["reason"], r
    # Everything the tutorial defines runs on a CPU; only SDPA backends may be missing here.
    measured = {r["method"] for r in tiny["results"] if r["status"] == "ok"}
    assert measured >= {"clone", "prefix_mean_loop", "prefix_mean_matmul", "prefix_mean_softmax",
                        "prefix_mean_cumsum", "prefix_mean_fast", "causal_attention", "Head",
                        "MultiHeadAttention", "sdpa-math"}


def test_the_bandwidth_point_times_the_linear_prefix_means_at_its_own_shape(tiny, tmp_path):
    assert tiny["config"]["bandwidth"] == [2, 64, 8]
    rows = tiny["bandwidth"]
    assert [r["method"] for r in rows] == list(timing.BANDWIDTH_METHODS)
    for r in rows:
        assert (r["status"], r["B"], r["T"], r["C"], r["bytes"]) == ("ok", 2, 64, 8, 2 * 2 * 64 * 8 * 4), r
        assert r["frac_clone"] == pytest.approx(r["gbps"] / rows[0]["gbps"]), r
    # the default shape, and a way to leave the point out
    assert timing.parse_config([])[0].bandwidth == timing.BANDWIDTH_SHAPE == (16, 2048, 512)
    doc, _ = _run(tmp_path, "--no-bandwidth", "--methods", "clone", "--no-memory")
    assert doc["config"]["bandwidth"] is None and doc["bandwidth"] == []


def test_the_file_records_its_environment(tiny):
    env = tiny["env"]
    assert env["device_type"] == "cpu" and env["device_name"] and env["cpu_model"]
    assert env["threads"] == torch.get_num_threads() and env["torch"] == torch.__version__
    assert env["command"].startswith("python -m snippets.timing --T 8 16")
    assert env["date"].endswith("+00:00") and env["loadavg_start"] is not None
    # Values that need /proc or a git checkout may be None, but the keys are always there.
    assert {"other_processes_cores", "git_commit", "git_dirty", "loadavg_end"} <= set(env)
    ref = tiny["matmul_reference"][0]
    assert ref["status"] == "ok" and ref["N"] == 64 and ref["tflops"] > 0
    assert report.load(Path(env["command"].split("--out ")[1]))["results"] == tiny["results"]


def test_derived_figures_are_consistent(tiny):
    for r in tiny["results"]:
        if r["status"] == "ok":
            assert r["gbps"] == pytest.approx(r["bytes"] / (r["ms"] * 1e6))
            if r["method"] == "clone":
                assert r["frac_clone"] == pytest.approx(1.0)
            if r["method"] == "prefix_mean_matmul":
                assert r["flops"] == 2 * 2 * r["T"] ** 2 * 8 and r["frac_matmul"] > 0


def test_the_report_has_the_table(tiny):
    text = report.text(tiny)
    for name in timing.method_names(False):
        assert f"| `{name}`" in text
    assert re.search(r"\| method +\| +T = 8 \| +T = 16 \|", text)
    assert "Bandwidth point" in text and "(B, T, C) = (2, 64, 8)" in text


@pytest.mark.skipif(timing.cpu_memory_reason() is not None, reason="CPU peak memory needs Linux, glibc and /proc")
def test_cpu_peak_memory_sees_a_clone(tmp_path):
    # x is (2, 4096, 64) float32 = 2 MiB: a clone allocates exactly that. Linux reads the resident set
    # from per-CPU counters that may each hold back up to 32 pages, so allow that much besides the floor.
    doc, _ = _run(tmp_path, "--T", "4096", "-C", "64", "--methods", "clone", "prefix_mean_matmul")
    clone, matmul = (next(r for r in doc["results"] if r["method"] == m) for m in ("clone", "prefix_mean_matmul"))
    size, slack = 2 * 4096 * 64 * 4, timing.MMAP_THRESHOLD + 32 * 4096 * os.cpu_count()
    assert abs(clone["peak_bytes"] - size) <= slack, clone
    # The (T, T) weights: at least one float32 matrix of 4096 x 4096 lives during the call.
    assert matmul["peak_bytes"] >= 4096 * 4096 * 4, matmul


def test_loop_is_skipped_above_its_limit(tmp_path, capsys):
    doc, _ = _run(tmp_path, "-B", "8", "--T", "512", "1024", "--methods", "prefix_mean_loop")
    out, err = capsys.readouterr()
    assert "`prefix_mean_loop` |" in out and "T = 1024" in out and "skipped" in out  # the table
    assert "[3/3] float32 T=1024 prefix_mean_loop: skipped" in err  # the progress
    small, big = doc["results"]
    assert small["status"] == "ok" and small["T"] == 512
    assert big["status"] == "skipped" and "8192 > 4096" in big["reason"]


def test_an_impossible_budget_is_recorded_not_fatal(tmp_path):
    doc, _ = _run(tmp_path, "--time-budget", "1e-9", "--methods", "clone", "prefix_mean_cumsum", "--no-memory")
    first = [r for r in doc["results"] if r["T"] == 8]
    later = [r for r in doc["results"] if r["T"] == 16]
    assert all(r["status"] == "over_budget" and "budget" in r["reason"] for r in first), first
    assert all(r["status"] == "skipped" and "stopped after T=8" in r["reason"] for r in later), later


def test_out_of_memory_is_recorded_not_fatal(monkeypatch, tmp_path):
    def huge(cfg, inp):
        return lambda: torch.empty(1 << 62, dtype=torch.uint8)  # no machine has 4 EiB

    monkeypatch.setitem(timing.METHODS, "clone", timing.Method("clone", "reference", huge, timing._bytes_btc,
                                                               timing._none, compilable=False))
    doc, _ = _run(tmp_path, "--methods", "clone", "--no-memory")
    first, later = doc["results"]
    assert first["status"] == "oom" and "allocate" in first["reason"], first
    assert later["status"] == "skipped" and "stopped after T=8: oom" in later["reason"], later


def test_an_error_in_a_method_is_recorded_not_fatal(monkeypatch, tmp_path):
    def broken(cfg, inp):
        return lambda: torch.ones(2) @ torch.ones(3)  # a shape error

    monkeypatch.setitem(timing.METHODS, "clone", timing.Method("clone", "reference", broken, timing._bytes_btc,
                                                               timing._none, compilable=False))
    doc, _ = _run(tmp_path, "--methods", "clone", "--no-memory")
    assert [r["status"] for r in doc["results"]] == ["error", "error"]
    assert all("RuntimeError" in r["reason"] for r in doc["results"])


def test_help_documents_every_option():
    out = subprocess.run([sys.executable, "-m", "snippets.timing", "--help"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    for action in timing.build_parser()._actions:
        for flag in action.option_strings:
            assert flag in out.stdout, flag
        assert action.help, action
    for name in timing.method_names(True):
        assert name in " ".join(out.stdout.split()), name


BAD = {
    "T not a power of two": (["--T", "100"], "power of two"),
    "T not a number": (["--T", "many"], "power of two"),
    "unknown dtype": (["--dtype", "float16"], "invalid choice"),
    "unknown method": (["--methods", "nope*"], "matches no method"),
    "compiled method without --compile": (["--methods", "prefix_mean_fast+compile"], "need --compile"),
    "heads not dividing C": (["-C", "10", "--heads", "4"], "must divide -C 10"),
    "negative batch": (["-B", "-1"], "expected a positive int"),
    "zero budget": (["--time-budget", "0"], "expected a positive float"),
    "infinite budget": (["--time-budget", "inf"], "expected a positive float"),
    "negative warm-up": (["--warmup", "-1"], "expected an integer >= 0"),
    "unknown device": (["--device", "tpu"], "expected cpu, cuda or cuda:N"),
    "tf32 on a CPU": (["--device", "cpu", "--tf32", "on"], "TF32 is a CUDA setting"),
}


@pytest.mark.parametrize("what", BAD)
def test_bad_options_are_rejected_clearly(what, capsys):
    argv, needle = BAD[what]
    with pytest.raises(SystemExit) as exc:
        timing.parse_config(argv)
    assert exc.value.code == 2
    assert needle in capsys.readouterr().err


@pytest.mark.skipif(CUDA, reason="checks the message given where there is no GPU")
def test_cuda_is_rejected_where_there_is_none(capsys):
    with pytest.raises(SystemExit):
        timing.parse_config(["--device", "cuda"])
    assert "CUDA is not available here" in capsys.readouterr().err


def test_defaults_follow_the_device():
    cfg, out = timing.parse_config(["--device", "cpu"])
    assert cfg.Ts == timing.CPU_TS and cfg.dtypes == ("float32",) and not cfg.tf32
    assert cfg.methods == tuple(timing.method_names(False))
    assert out.parent == timing.RESULTS_DIR and out.name.startswith("cpu-")


def test_headline_figures_are_computed_from_the_file():
    def row(method, T, ms, peak):
        return {"method": method, "dtype": "float32", "T": T, "B": 4, "C": 64, "status": "ok", "ms": ms,
                "peak_bytes": peak}

    doc = {"env": {"memory_resolution_bytes": 1}, "config": {"Ts": [256, 2048, 4096]}, "results": [
        row("prefix_mean_loop", 256, 30.0, 1), row("prefix_mean_matmul", 256, 0.5, 100),
        row("prefix_mean_fast", 256, 0.6, 10), row("prefix_mean_matmul", 2048, 4.0, 400),
        row("prefix_mean_fast", 2048, 2.0, 80), row("prefix_mean_matmul", 4096, 12.0, 1600),
        row("prefix_mean_fast", 4096, 3.0, 160),
    ]}
    got = dict(report.headline(doc, "float32"))
    assert got["prefix_mean_loop / prefix_mean_matmul at (B, T, C) = (4, 256, 64)"] == "60x"
    assert got["prefix_mean_loop / prefix_mean_fast at (B, T, C) = (4, 256, 64)"] == "50x"
    assert got["prefix_mean_matmul / prefix_mean_fast at T = 4096"] == "4x"
    assert got["prefix_mean_fast faster than prefix_mean_matmul"] == "from T = 2048 on"
    assert report.growth(doc, "prefix_mean_matmul", "float32", "ms") == (4096, 3.0)
    assert report.growth(doc, "prefix_mean_matmul", "float32", "peak_bytes") == (4096, 4.0)
    assert report.growth(doc, "prefix_mean_fast", "float32", "peak_bytes") == (4096, 2.0)
    growth = report.growth_table(doc, "float32")
    assert "| `prefix_mean_matmul` |   quadratic | 2048 -> 4096 |   x3 |          x4 |" in growth
    assert "| `prefix_mean_fast`   |      linear | 2048 -> 4096 | x1.5 |          x2 |" in growth
    # The bandwidth fraction comes from the bandwidth point when the file has one.
    doc["bandwidth"] = [dict(row("clone", 2048, 8.0, None), B=16, C=512, gbps=16.0, frac_clone=1.0),
                        dict(row("prefix_mean_fast", 2048, 10.0, None), B=16, C=512, gbps=12.8, frac_clone=0.8)]
    got = dict(report.headline(doc, "float32"))
    assert got["prefix_mean_fast bandwidth as a fraction of clone at (B, T, C) = (16, 2048, 512)"] == (
        "80 % (12.8 of 16 GB/s)")


def test_plots_and_tables_render(tiny, tmp_path):
    for name in ("cpu-tiny.json", "cuda-tiny.json"):
        doc = json.loads(json.dumps(tiny))
        if name.startswith("cuda"):
            doc["env"] |= {"device_type": "cuda", "device_name": "Some GPU"}
        (tmp_path / name).write_text(json.dumps(doc))
    rendered = report.render(tmp_path)
    assert set(rendered.plots) == {f"appendix/plots/{d}-tiny-float32-{w}.svg" for d in ("cpu", "cuda")
                                   for w in ("time", "memory")}
    for path, svg in rendered.plots.items():
        root = ET.fromstring(svg.encode())
        assert root.tag == "{http://www.w3.org/2000/svg}svg", path
        assert not re.search(r"(?:href|src)=[\"']?(?:https?:)?//|@import", svg), path
    assert "prefix_mean_cumsum" in rendered.plots["appendix/plots/cpu-tiny-float32-time.svg"]
    cpu, gpu = rendered.markdown["cpu"], rendered.markdown["gpu"]
    assert "![Log-log line chart of the median time" in cpu and "(plots/cpu-tiny-float32-time.svg)" in cpu
    assert "| `prefix_mean_matmul`  |" in cpu and "[cpu-tiny.json](results/cpu-tiny.json)" in cpu
    assert "Some GPU" in gpu and "Some GPU" not in cpu
    assert "Bandwidth point" in cpu and "| `prefix_mean_fast`" in cpu.split("Bandwidth point")[1]
    # One palette with the figures: text outside the lines is the figures' grey.
    for svg in rendered.plots.values():
        assert set(re.findall(r"<text\b[^>]*style=\"[^\"]*fill:\s*(#[0-9a-f]{6})", svg)) == {figures.GREY}


def test_no_gpu_file_means_no_gpu_numbers(tiny, tmp_path):
    (tmp_path / "cpu-tiny.json").write_text(json.dumps(tiny))
    gpu = report.render(tmp_path).markdown["gpu"]
    assert "No GPU results committed yet" in gpu and "python -m snippets.timing" in gpu
    assert "|" not in gpu and "plots/" not in gpu


def test_a_broken_results_file_fails_the_build(tiny, tmp_path):
    doc = json.loads(json.dumps(tiny))
    doc["results"][0] |= {"status": "skipped", "reason": ""}
    (tmp_path / "x.json").write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="needs a reason"):
        report.render(tmp_path)


def test_the_hook_fills_the_appendix_page():
    """Run hooks/timing.py the way MkDocs does, on the committed results."""
    from mkdocs.config.defaults import MkDocsConfig
    from mkdocs.structure.files import Files

    config = MkDocsConfig(config_file_path=str(ROOT / "mkdocs.yml"))
    config.load_dict({"site_name": "test", "docs_dir": str(DOCS), "hooks": [str(ROOT / "hooks" / "timing.py")]})
    failed, _ = config.validate()
    assert not failed, failed
    files = config.plugins.on_files(Files([]), config=config)
    page = type("Page", (), {"file": type("F", (), {"src_uri": "appendix/timing.md"})()})()
    source = (DOCS / "appendix" / "timing.md").read_text()
    text = config.plugins.on_page_markdown(source, page=page, config=config, files=files)
    assert "<!-- timing:" not in text
    for path in RESULTS:
        assert f"(results/{path.name})" in text
        assert f"(plots/{path.stem}-float32-time.svg)" in text
        assert files.get_file_from_path(f"appendix/plots/{path.stem}-float32-time.svg") is not None
    if not any(json.loads(p.read_text())["env"]["device_type"] == "cuda" for p in RESULTS):
        assert "No GPU results committed yet" in text


@pytest.mark.parametrize("path", RESULTS, ids=lambda p: p.name)
def test_committed_results_come_from_the_default_command(path):
    doc = report.load(path)
    env = doc["env"]
    assert path.name.startswith(env["device_type"] + "-")
    argv = env["command"].removeprefix("python -m snippets.timing").split()
    cfg = doc["config"]
    default, _ = timing.parse_config(["--device", env["device_type"]])
    assert argv in ([], ["--device", env["device_type"]]), env["command"]
    assert (cfg["B"], cfg["C"], cfg["heads"], tuple(cfg["Ts"])) == (default.B, default.C, default.heads, default.Ts)
    assert tuple(cfg.get("bandwidth") or ()) == default.bandwidth, "measured before the bandwidth point existed"
    assert [r["method"] for r in doc["bandwidth"]] == list(timing.BANDWIDTH_METHODS)
    assert cfg["methods"] == list(default.methods)


@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU: CUDA events, the L2 flush and max_memory_allocated")
def test_cuda_run(tmp_path):
    out = tmp_path / "cuda.json"
    timing.main(["--device", "cuda", "--T", "64", "128", "--repeats", "3", "--dtype", "float32", "bfloat16",
                 "--out", str(out)])
    doc = report.load(out)
    assert doc["env"]["l2_cache_bytes"] > 0
    ok = [r for r in doc["results"] if r["status"] == "ok"]
    assert ok and all(r["peak_bytes"] is not None for r in ok)
    assert any(r["method"] == "sdpa-flash" and r["dtype"] == "bfloat16" for r in ok)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None,
                    reason="torch.compile on a CPU needs a C compiler")
def test_compiled_variant(tmp_path):
    doc, _ = _run(tmp_path, "--compile", "--T", "8", "--methods", "prefix_mean_cumsum+compile")
    (r,) = doc["results"]
    assert r["status"] == "ok" and r["compile_s"] > 0 and r["ms"] > 0, r
    assert r["peak_bytes"] is None and "compiled" in r["memory_note"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["results"][0].update(method="OldHead"), "each point needs a method of"),
        (lambda d: d["env"].update(device_type="tpu"), "env.device_type must be 'cpu' or 'cuda'"),
        (lambda d: d.update(schema=0), "schema must be"),
        (lambda d: d["results"][0].update(status="ok", ms=0), "a measured point needs ms > 0"),
    ],
)
def test_a_malformed_results_file_fails_loudly(tmp_path, change, message):
    path = RESULTS[0]
    doc = json.loads(path.read_text())
    change(doc)
    bad = tmp_path / path.name
    bad.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match=re.escape(message)):
        report.load(bad)
