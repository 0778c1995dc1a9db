"""The timing harness runs end to end on tiny sizes, records every failure, and its results render."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import torch

from snippets import plotting
from bench import cli, escape, memory, methods, missing, noise, plots, report, schema, summary, validate
from bench.fingerprint import fingerprint
from tests.hostile import HOSTILE, hostile
from tests.marks import needs_cuda
from tests.pages import DOCS, ROOT

TINY = ["--T", "8", "16", "-B", "2", "-C", "8", "--heads", "2", "--repeats", "2", "--warmup", "1",
        "--matmul-size", "64", "--bandwidth", "2", "64", "8", "--allow-busy"]  # tests run beside others
RESULTS = sorted((DOCS / "appendix" / "results").glob("*.json"))
CUDA = torch.cuda.is_available()


def _run(tmp_path, *extra, name="out.json") -> tuple[dict, Path]:
    out = tmp_path / name
    assert cli.main([*TINY, "--device", "cpu", *extra, "--out", str(out)]) == 0
    return json.loads(out.read_text()), out


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> tuple[dict, Path]:
    """One whole default-method run on the CPU at tiny sizes, memory included: (the JSON, its path)."""
    return _run(tmp_path_factory.mktemp("timing"))


@pytest.fixture
def tiny(tiny_run) -> dict:
    return json.loads(json.dumps(tiny_run[0]))  # a copy each test may change


def test_every_method_is_measured_or_skipped_with_a_reason(tiny_run):
    tiny, path = tiny_run
    res = validate.load(path)
    cfg = tiny["config"]
    assert cfg["methods"] == schema.method_names(False)
    got = [(r["dtype"], r["T"], r["method"]) for r in tiny["results"]]
    assert got == [(d, T, m) for d in cfg["dtypes"] for T in cfg["Ts"] for m in cfg["methods"]]
    for r in res.results:
        assert r.status in schema.STATUSES, r
        if r.status == "ok":
            assert r.ms > 0 and len(r.samples_ms) >= 1 and r.calls_per_sample >= 1, r
            assert res.gbps(r) > 0 and r.bytes > 0, r
        else:
            assert r.status == "skipped" and r.reason, r
    # Everything the tutorial defines runs on a CPU; only SDPA backends may be missing here.
    measured = {r.method for r in res.results if r.status == "ok"}
    assert measured >= {"clone", "prefix_mean_loop", "prefix_mean_matmul", "prefix_mean_softmax",
                        "prefix_mean_cumsum", "prefix_mean_fast", "causal_attention", "Head",
                        "MultiHeadAttention", "sdpa-math", "online_causal_attention"}


def test_the_bandwidth_point_times_the_linear_prefix_means_at_its_own_shape(tiny_run, tmp_path):
    res = validate.load(tiny_run[1])
    assert res.config.bandwidth == [2, 64, 8]
    rows = res.bandwidth
    assert [r.method for r in rows] == list(schema.BANDWIDTH_METHODS)
    for r in rows:
        # a CUDA-only method (the Triton kernel) is listed there too, skipped with its reason
        status = "skipped" if r.method in schema.CUDA_ONLY and not CUDA else "ok"
        assert (r.status, r.B, r.T, r.C, r.bytes) == (status, 2, 64, 8, 2 * 2 * 64 * 8 * 4), r
        if status == "ok":
            assert res.frac_clone(r, rows) == pytest.approx(res.gbps(r) / res.gbps(rows[0])), r
        else:
            assert "CUDA GPUs only" in r.reason
    # the default shape, and a way to leave the point out
    cfg, _ = cli.parse_config(["--device", "cpu", "--out", str(tmp_path / "x.json")])
    assert cfg.bandwidth == cli.BANDWIDTH_SHAPES["cpu"] == (16, 2048, 512)
    assert cli.BANDWIDTH_SHAPES["cuda"] == (64, 4096, 512)  # 256 MiB in bfloat16: far above a GPU's L2
    doc, _ = _run(tmp_path, "--no-bandwidth", "--methods", "clone", "--no-memory")
    assert doc["config"]["bandwidth"] is None and doc["bandwidth"] == []


def test_the_file_records_its_environment_and_the_code_it_measured(tiny_run):
    tiny, path = tiny_run
    env = tiny["env"]
    assert env["device_type"] == "cpu" and env["device_name"] and env["cpu_model"]
    assert env["threads"] == torch.get_num_threads() and env["torch"] == torch.__version__
    assert env["command"].startswith("python -m bench --T 8 16")
    assert env["date"].endswith("+00:00") and env["loadavg_start"] is not None
    # Values that need /proc or a git checkout may be None, but the keys are always there.
    assert {"other_processes_cores", "git_commit", "git_dirty", "loadavg_end"} <= set(env)
    ref = tiny["matmul_reference"][0]
    assert ref["status"] == "ok" and ref["N"] == 64 and validate.load(path).matmul_reference[0].tflops > 0
    fps = tiny["fingerprints"]
    assert set(fps) == set(tiny["config"]["methods"])
    assert fps["clone"] is None and fps["sdpa-math"] is None  # PyTorch's own code
    assert re.fullmatch(r"[0-9a-f]{64}", fps["prefix_mean_fast"]) and fps["Head"] != fps["MultiHeadAttention"]
    assert report.stale_methods(validate.load(path)) == {}


def test_derived_figures_are_computed_not_stored(tiny_run):
    tiny, path = tiny_run
    assert not {"gbps", "frac_clone", "tflops", "frac_matmul"} & set(tiny["results"][0])
    res = validate.load(path)
    for r in res.results:
        if r.status == "ok":
            assert res.gbps(r) == pytest.approx(r.bytes / (r.ms * 1e6))
            if r.method == "clone":
                assert res.frac_clone(r) == pytest.approx(1.0)
            if r.method == "prefix_mean_matmul":
                assert r.flops == 2 * 2 * r.T ** 2 * 8 and res.frac_matmul(r) > 0


def test_the_report_has_the_table(tiny_run):
    text = summary.text(validate.load(tiny_run[1]))
    for name in schema.method_names(False):
        assert f"| `{name}`" in text
    assert re.search(r"\| method +\| +T = 8 \| +T = 16 \|", text)
    assert "Bandwidth point" in text and "(B, T, C) = (2, 64, 8)" in text


@pytest.mark.skipif(memory.unavailable() is not None, reason="CPU peak memory needs Linux, glibc and /proc")
def test_cpu_peak_memory_sees_a_clone(tmp_path):
    # x is (2, 4096, 64) float32 = 2 MiB: a clone allocates exactly that. Linux reads the resident set
    # from per-CPU counters that may each hold back up to 32 pages, so allow that much besides the floor.
    doc, _ = _run(tmp_path, "--T", "4096", "-C", "64", "--methods", "clone", "prefix_mean_matmul")
    clone, matmul = (next(r for r in doc["results"] if r["method"] == m) for m in ("clone", "prefix_mean_matmul"))
    size, slack = 2 * 4096 * 64 * 4, memory.MMAP_THRESHOLD + 32 * 4096 * os.cpu_count()
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
    monkeypatch.setitem(methods.MAKERS, "clone", lambda cfg, inp: lambda: torch.empty(1 << 62, dtype=torch.uint8))
    doc, _ = _run(tmp_path, "--methods", "clone", "--no-memory")  # no machine has 4 EiB
    first, later = doc["results"]
    assert first["status"] == "oom" and "allocate" in first["reason"], first
    assert later["status"] == "skipped" and "stopped after T=8: oom" in later["reason"], later


def test_an_error_in_a_method_is_recorded_not_fatal(monkeypatch, tmp_path):
    monkeypatch.setitem(methods.MAKERS, "clone", lambda cfg, inp: lambda: torch.ones(2) @ torch.ones(3))
    doc, _ = _run(tmp_path, "--methods", "clone", "--no-memory")
    assert [r["status"] for r in doc["results"]] == ["error", "error"]
    assert all("RuntimeError" in r["reason"] for r in doc["results"])


def test_an_sdpa_backend_is_skipped_with_its_own_reason_only():
    warned = ["Memory efficient kernel not used because: (Triggered internally at /a/sdp_utils.cpp:986.)",
              "Memory Efficient attention has been runtime disabled. (Triggered internally at /a/x.h:552.)",
              "Flash attention kernel not used because: (Triggered internally at /a/sdp_utils.cpp:988.)",
              "Expected query, key and value to all be of dtype: {Half, BFloat16}. Got Query dtype: float, "
              "Key dtype: float, and Value dtype: float instead. (Triggered internally at /a/x.h:111.)",
              "CuDNN attention kernel not used because: (Triggered internally at /a/sdp_utils.cpp:990.)",
              "CuDNN attention has been runtime disabled. (Triggered internally at /a/x.h:3.)"]
    got = methods.backend_reason("flash", warned, "No available kernel. Aborting execution.")
    assert got == ("Flash attention kernel not used because: Expected query, key and value to all be of dtype: "
                   "{Half, BFloat16}. Got Query dtype: float, Key dtype: float, and Value dtype: float instead. "
                   "No available kernel. Aborting execution.")
    assert methods.backend_reason("efficient", [], "No viable backend.") == "No viable backend."


def test_help_documents_every_option():
    out = subprocess.run([sys.executable, "-m", "bench", "--help"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    for action in cli.build_parser()._actions:
        for flag in action.option_strings:
            assert flag in out.stdout, flag
        assert action.help, action
    for name in schema.method_names(True):
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
    "out is a folder": (["--out", "/tmp"], "is a folder"),
    "out is not a regular file": (["--out", "/dev/null"], "is not a regular file"),
    "out in a missing folder": (["--out", "/nonexistent-folder/x.json"], "does not exist"),
}


def test_a_bad_commit_variable_is_refused_before_measuring(monkeypatch, capsys):
    monkeypatch.setenv("TIMING_GIT_COMMIT", "not-a-commit")
    with pytest.raises(SystemExit) as exc:
        cli.parse_config(["--device", "cpu", "--out", "/tmp/x.json"])
    assert exc.value.code == 2 and "$TIMING_GIT_COMMIT: expected a hexadecimal commit id" in capsys.readouterr().err


@pytest.mark.parametrize("what", BAD)
def test_bad_options_are_rejected_clearly(what, capsys):
    argv, needle = BAD[what]
    with pytest.raises(SystemExit) as exc:
        cli.parse_config(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()[-1]) < 400


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write to a read-only folder")
def test_an_unwritable_out_folder_is_refused_before_measuring(tmp_path, capsys):
    folder = tmp_path / "ro"
    folder.mkdir(mode=0o500)
    with pytest.raises(SystemExit):
        cli.parse_config(["--out", str(folder / "x.json")])
    assert "cannot take a results file" in capsys.readouterr().err


def test_an_unwritable_out_is_refused_in_seconds_by_the_command(tmp_path):
    target = tmp_path / "taken"
    target.mkdir()
    out = subprocess.run([sys.executable, "-m", "bench", "--out", str(target)], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "is a folder" in out.stderr and "Traceback" not in out.stderr
    assert out.stdout == ""  # nothing was measured


@needs_cuda
def test_cuda_is_available_for_the_command():
    cfg, _ = cli.parse_config(["--out", "/tmp/x.json"])
    assert cfg.device == "cuda" and cfg.dtypes == ("float32", "bfloat16") and cfg.Ts == cli.CUDA_TS


@pytest.mark.skipif(CUDA, reason="checks the message given where there is no GPU")
def test_cuda_is_rejected_where_there_is_none(capsys):
    with pytest.raises(SystemExit):
        cli.parse_config(["--device", "cuda"])
    assert "CUDA is not available here" in capsys.readouterr().err


def test_defaults_follow_the_device_and_the_checkout_not_the_current_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg, out = cli.parse_config(["--device", "cpu"])
    assert cfg.Ts == cli.CPU_TS and cfg.dtypes == ("float32",) and not cfg.tf32
    assert cfg.methods == tuple(schema.method_names(False))
    assert out.parent == cli.RESULTS_DIR == ROOT / "docs" / "appendix" / "results" and out.name.startswith("cpu-")
    assert re.fullmatch(r"cpu-[a-z0-9-]+\.json", out.name)


def test_a_failed_write_leaves_the_old_file_byte_identical(tmp_path, monkeypatch):
    old = tmp_path / "cpu-x.json"
    old.write_bytes(b'{"old": true}\n')

    class DiskFull(OSError):
        pass

    def fail(fd):  # the data is written but cannot reach the disk
        raise DiskFull(28, "No space left on device")

    with monkeypatch.context() as m:
        m.setattr(schema.os, "fsync", fail)
        with pytest.raises(DiskFull):
            schema.write_atomic(old, "new text")
    assert old.read_bytes() == b'{"old": true}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cpu-x.json"]  # no temporary file left


def test_a_failed_write_of_the_command_leaves_the_old_file(tmp_path):
    """A file-size limit hit while writing, as a real process sees it: the old file stays, whole."""
    old = tmp_path / "cpu-x.json"
    old.write_text('{"old": true}\n')
    script = ("import resource, signal, sys; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
              "resource.setrlimit(resource.RLIMIT_FSIZE, (2000, 2000)); from bench.cli import main; "
              f"sys.exit(main({[*TINY, '--methods', 'clone', '--no-memory', '--out', str(old)]!r}))")
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode != 0 and "File too large" in out.stderr, out.stderr[-2000:]
    assert old.read_text() == '{"old": true}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cpu-x.json"]


def _sigint_as_in_a_terminal() -> None:
    """In the child: SIGINT at its default, as a program run from a terminal has it. A shell's
    background job (`cmd &`, nohup) starts with SIGINT ignored, and its children inherit that."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize(("sig", "code"), [("SIGINT", 130), ("SIGTERM", 143)])
def test_an_interrupted_run_exits_cleanly_leaving_no_file_and_no_process(tmp_path, sig, code):
    """Interrupted while the memory worker is busy: the worker and the resource tracker end with the run."""
    import signal
    import time

    out = tmp_path / "x.json"
    proc = subprocess.Popen([sys.executable, "-m", "bench", "--device", "cpu", "--T", "8", "16", "32",
                             "64", "128", "256", "512", "1024", "2048", "4096", "--repeats", "1", "--warmup", "0",
                             "--matmul-size", "64", "--no-bandwidth", "--methods", "clone", "--out", str(out)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, preexec_fn=_sigint_as_in_a_terminal)
    deadline = time.monotonic() + 120
    line = ""
    while "peak memory" not in line:  # the worker is up
        line = proc.stderr.readline()
        assert line or proc.poll() is None, "the run ended before its memory phase"
        assert time.monotonic() < deadline
    # Hold the run where it is, so that on a loaded machine it cannot finish before the signal:
    # a stopped process gets the signal the moment it continues.
    proc.send_signal(signal.SIGSTOP)
    assert proc.poll() is None, "the run ended before the signal"
    children = subprocess.run(["ps", "-o", "pid=", "--ppid", str(proc.pid)], capture_output=True,
                              text=True).stdout.split()
    assert children, "no worker process found"
    proc.send_signal(getattr(signal, sig))
    proc.send_signal(signal.SIGCONT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err[-2000:]
    assert "nothing written" in err and "Traceback" not in err
    assert not out.exists() and list(tmp_path.iterdir()) == []
    time.sleep(0.5)
    alive = [pid for pid in children if Path(f"/proc/{pid}").exists()
             and "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()]
    assert alive == [], f"left running: {alive}"


# ----------------------------------------------------------------------------- the format

def _results(base: dict, rows: list[dict], bandwidth: list[dict] = ()) -> schema.Results:
    """A results document around hand-written rows, through the same validation as a file."""
    def point(r):
        return {"B": 4, "C": 64, "heads": 4, "bytes": 2 * 4 * r["T"] * 64 * 4, "flops": None, "dtype": "float32",
                "status": "ok", "samples_ms": [r["ms"]], "calls_per_sample": 1} | r
    rows = [point(r) for r in rows]
    Ts = sorted({r["T"] for r in rows})
    doc = json.loads(json.dumps(base))
    doc["config"] |= {"Ts": Ts, "dtypes": ["float32"]}
    doc["results"], doc["bandwidth"] = rows, [point(r) for r in bandwidth]
    return validate.parse(doc, "test")


def test_headline_figures_are_computed_from_the_file(tiny):
    res = _results(tiny, [
        dict(method="prefix_mean_loop", T=256, ms=30.0, peak_bytes=1), dict(method="prefix_mean_matmul", T=256, ms=0.5, peak_bytes=100),
        dict(method="prefix_mean_fast", T=256, ms=0.6, peak_bytes=10), dict(method="prefix_mean_matmul", T=2048, ms=4.0, peak_bytes=400),
        dict(method="prefix_mean_fast", T=2048, ms=2.0, peak_bytes=80), dict(method="prefix_mean_matmul", T=4096, ms=12.0, peak_bytes=1600),
        dict(method="prefix_mean_fast", T=4096, ms=3.0, peak_bytes=160),
    ])
    res.env.memory_resolution_bytes = 1
    got = dict(summary.headline(res, "float32"))
    assert got["prefix_mean_loop / prefix_mean_matmul at (B, T, C) = (4, 256, 64)"] == "60x"
    assert got["prefix_mean_loop / prefix_mean_fast at (B, T, C) = (4, 256, 64)"] == "50x"
    assert got["prefix_mean_matmul / prefix_mean_fast at T = 4096"] == "4x"
    assert got["prefix_mean_fast against prefix_mean_matmul"] == "faster at T = 2048, 4096; slower at T = 256"
    assert summary.growth(res, "prefix_mean_matmul", "float32", "ms") == (4096, 3.0)
    assert summary.growth(res, "prefix_mean_matmul", "float32", "peak_bytes") == (4096, 4.0)
    assert summary.growth(res, "prefix_mean_fast", "float32", "peak_bytes") == (4096, 2.0)
    growth = summary.growth_table(res, "float32")
    assert "| `prefix_mean_matmul` |   quadratic | 2048 -> 4096 |   x3 |          x4 |" in growth
    assert "| `prefix_mean_fast`   |      linear | 2048 -> 4096 | x1.5 |          x2 |" in growth
    # When the linear version wins everywhere, that is said as such.
    res.results[2].ms = 0.4
    assert dict(summary.headline(res, "float32"))["prefix_mean_fast against prefix_mean_matmul"] == (
        "faster at every T measured (256, 2048, 4096)")
    # The bandwidth fraction comes from the bandwidth point when the file has one.
    res = _results(tiny, [dict(method="prefix_mean_fast", T=256, ms=1.0)],
                   [dict(method="clone", T=2048, ms=8.0, B=16, C=512, bytes=128_000_000),
                    dict(method="prefix_mean_fast", T=2048, ms=10.0, B=16, C=512, bytes=128_000_000)])
    got = dict(summary.headline(res, "float32"))
    assert got["prefix_mean_fast bandwidth as a fraction of clone at (B, T, C) = (16, 2048, 512)"] == (
        "80 % (12.8 of 16 GB/s)")


def test_plots_and_tables_render(tiny, tmp_path):
    for name in ("cpu-tiny.json", "cuda-tiny.json"):
        doc = json.loads(json.dumps(tiny))
        if name.startswith("cuda"):
            doc["env"] |= {"device_type": "cuda", "device_name": "Some GPU", "l2_cache_bytes": 2**20}
        (tmp_path / name).write_text(json.dumps(doc))
    rendered = report.render(tmp_path)
    assert set(rendered.plots) == {f"appendix/plots/{d}-tiny-float32-{w}.svg" for d in ("cpu", "cuda")
                                   for w in ("time", "memory")}
    for path, svg in rendered.plots.items():
        root = ET.fromstring(svg.encode())
        assert root.tag == "{http://www.w3.org/2000/svg}svg", path
        assert not re.search(r"(?:href|src)=[\"']?(?:https?:)?//|@import", svg), path
        sizes = [float(v) for v in re.findall(r"font-size:\s*([\d.]+)px", svg)]
        assert sizes and min(sizes) >= plots.PLOT_FONT_PT, (path, min(sizes))  # user units: points
    assert "prefix_mean_cumsum" in rendered.plots["appendix/plots/cpu-tiny-float32-time.svg"]
    cpu, gpu = rendered.markdown["cpu"], rendered.markdown["gpu"]
    assert "![Log-log line chart of the median time" in cpu and "(plots/cpu-tiny-float32-time.svg)" in cpu
    assert re.search(r"\| `prefix_mean_matmul` +\|", cpu) and "[cpu-tiny.json](results/cpu-tiny.json)" in cpu
    assert "Some GPU" in gpu and "Some GPU" not in cpu
    assert "Bandwidth point" in cpu and "| `prefix_mean_fast`" in cpu.split("Bandwidth point")[1]
    assert rendered.stale == []
    # One palette with the figures: text outside the lines is the figures' grey.
    for svg in rendered.plots.values():
        assert set(re.findall(r"<text\b[^>]*style=\"[^\"]*fill:\s*(#[0-9a-f]{6})", svg)) == {plotting.GREY}


def test_no_gpu_file_means_no_gpu_numbers(tiny, tmp_path):
    (tmp_path / "cpu-tiny.json").write_text(json.dumps(tiny))
    gpu = report.render(tmp_path).markdown["gpu"]
    assert "No GPU results committed yet" in gpu and "python3 -m bench.gpu" in gpu
    assert "|" not in gpu and "plots/" not in gpu


def test_a_changed_method_is_flagged_stale_and_measuring_again_clears_it(tiny, tmp_path):
    tiny["fingerprints"]["prefix_mean_cumsum"] = "0" * 64  # as if measured on other code
    (tmp_path / "cpu-tiny.json").write_text(json.dumps(tiny))
    rendered = report.render(tmp_path)
    commit = (tiny["env"]["git_commit"] or "an unrecorded commit")[:12]
    assert rendered.stale == [f"cpu-tiny.json: prefix_mean_cumsum was measured at {commit}; the code of "
                              "snippets.averaging.prefix_mean_cumsum has changed since it was measured"]
    cpu = rendered.markdown["cpu"]
    assert '!!! warning "Stale numbers"' in cpu and "`prefix_mean_cumsum` (stale) |" in cpu
    assert "`prefix_mean_fast` (stale)" not in cpu
    said = [line for line in cpu.splitlines() if line.startswith("| ") and "prefix_mean_cumsum" in line]
    assert said and all("(stale)" in line for line in said), [x for x in said if "(stale)" not in x]


@pytest.mark.parametrize("path", RESULTS, ids=lambda p: p.name)
def test_every_figure_and_row_of_a_stale_method_says_so(path):
    """Not only the grids: the headline figures, growth, bandwidth and busy rows too (on a
    committed file, whose figures do not depend on this machine's noise)."""
    res = validate.load(path)
    for dtype in res.config.dtypes:
        lines = summary.summary(res, dtype, stale=frozenset({"prefix_mean_fast"}))
        said = [x for x in "\n".join(lines).splitlines() if x.startswith(("| ", "- ")) and "prefix_mean_fast" in x]
        assert {x[0] for x in said} == {"-", "|"}, said  # headline figures and table rows
        assert all("(stale)" in x for x in said), [x for x in said if "(stale)" not in x]
        assert not [x for x in "\n".join(summary.summary(res, dtype)).splitlines() if "(stale)" in x]


def test_the_timing_step_fills_the_appendix_page():
    """sitegen/timing.py on the committed results: the Markdown the appendix page includes, and its plots."""
    from sitegen.timing import generate, include_line

    markdown, plots, _ = generate(DOCS)
    page = (DOCS / "appendix" / "timing.md").read_text()
    assert all(include_line(name) in page for name in ("cpu", "gpu"))
    text = markdown["cpu"] + markdown["gpu"]
    for path in RESULTS:
        assert f"(results/{path.name})" in text
        assert f"(plots/{path.stem}-float32-time.svg)" in text
        assert f"appendix/plots/{path.stem}-float32-time.svg" in plots
    if not any(json.loads(p.read_text())["env"]["device_type"] == "cuda" for p in RESULTS):
        assert "No GPU results committed yet" in text
    waiting = [p for p in RESULTS if _awaits_a_gpu(p)]
    if waiting:  # flagged on the page until a GPU measures them again
        assert '!!! warning "Stale numbers"' in text
    else:
        assert '!!! warning "Stale numbers"' not in text, "a committed results file is stale: measure it again"


def _awaits_a_gpu(path) -> bool:
    """A GPU file measured on code that has changed since, on a machine with no GPU to measure it again."""
    res = validate.load(path)
    return res.env.device_type == "cuda" and not CUDA and bool(report.stale_methods(res))


@pytest.mark.parametrize("path", RESULTS, ids=lambda p: p.name)
def test_committed_results_come_from_the_default_command_and_current_code(path):
    res = validate.load(path)
    env, cfg = res.env, res.config
    assert path.name.startswith(env.device_type + "-")
    # The harness was `python -m snippets.timing` until it moved to bench/: the same command.
    argv = env.command.removeprefix("python -m bench").removeprefix("python -m snippets.timing").split()
    if "--out" in argv:  # where it was written does not change what was measured
        i = argv.index("--out")
        argv = argv[:i] + argv[i + 2:]
    # nor whether a busy machine may write it (the file then says it was busy: env.busy), nor
    # --busy, which adds the bandwidth point beside busy processes to the default sweep
    argv = [a for a in argv if a not in ("--allow-busy", "--busy")]
    default, _ = cli.parse_config(["--device", env.device_type if env.device_type == "cpu" or CUDA else "cpu",
                                   "--out", "/tmp/x.json"])
    assert argv in ([], ["--device", env.device_type]), env.command
    Ts = cli.CUDA_TS if env.device_type == "cuda" else cli.CPU_TS
    assert (cfg.B, cfg.C, cfg.heads, tuple(cfg.Ts)) == (default.B, default.C, default.heads, Ts)
    assert tuple(cfg.bandwidth or ()) == cli.BANDWIDTH_SHAPES[env.device_type], "not the default bandwidth point"
    assert [r.method for r in res.bandwidth] == [
        m for d in cfg.dtypes for m in schema.BANDWIDTH_METHODS if m in cfg.methods
    ]
    if env.device_type == "cuda" and not CUDA:
        # Only a GPU can measure it again. Until then the appendix flags each stale method
        # (test_the_hook_fills_the_appendix_page), and says that methods added since were not measured.
        assert set(cfg.methods) <= set(default.methods)
    else:
        # A CPU file measured before a CUDA-only method was added lacks it: a CPU run would
        # only record it as skipped. The appendix says it was not measured.
        lacking = set(default.methods) - set(cfg.methods)
        assert lacking <= (set(schema.CUDA_ONLY) if env.device_type == "cpu" else set()), lacking
        assert cfg.methods == [m for m in default.methods if m in cfg.methods]
        assert report.stale_methods(res) == {}, "measured on other code: run the command again"
    assert env.git_commit and not env.git_dirty


@needs_cuda
def test_cuda_run(tmp_path):
    out = tmp_path / "cuda.json"
    assert cli.main(["--device", "cuda", "--T", "64", "128", "--repeats", "3", "--dtype", "float32", "bfloat16",
                     "--out", str(out)]) == 0
    res = validate.load(out)
    assert res.env.l2_cache_bytes > 0
    ok = [r for r in res.results if r.status == "ok"]
    assert ok and all(r.peak_bytes is not None for r in ok)
    assert any(r.method == "sdpa-flash" and r.dtype == "bfloat16" for r in ok)
    clone = next(r for r in ok if r.method == "clone")
    assert clone.peak_bytes >= clone.bytes // 2  # the copy it returns


@pytest.mark.slow
@pytest.mark.skipif(__import__("shutil").which("cc") is None and __import__("shutil").which("gcc") is None,
                    reason="torch.compile on a CPU needs a C compiler")
def test_compiled_variant(tmp_path):
    doc, _ = _run(tmp_path, "--compile", "--T", "8", "--methods", "prefix_mean_cumsum+compile")
    (r,) = doc["results"]
    assert r["status"] == "ok" and r["compile_s"] > 0 and r["ms"] > 0, r
    assert r["peak_bytes"] is None and "compiled" in r["memory_note"]


def _set(path: str, value):
    """A change to a document: set the value at a JSON path like "results.0.ms"."""
    def change(doc):
        *parents, last = path.split(".")
        for p in parents:
            doc = doc[int(p)] if isinstance(doc, list) else doc[p]
        if isinstance(doc, list):
            doc[int(last)] = value
        else:
            doc[last] = value
    return change


def _drop(path: str):
    def change(doc):
        *parents, last = path.split(".")
        for p in parents:
            doc = doc[int(p)] if isinstance(doc, list) else doc[p]
        del doc[last]
    return change


MALFORMED = {
    "not JSON": (lambda d: "{", "$: not valid JSON"),
    "empty file": (lambda d: "", "$: not valid JSON"),
    "null": (lambda d: None, "$: expected an object, got null"),
    "a list": (lambda d: [], "$: expected an object, got a list"),
    "Infinity": (lambda d: json.dumps(d).replace('"wall_s": ', '"wall_s": Infinity, "x": '), "Infinity is not a number"),
    "duplicate key": (lambda d: json.dumps(d).replace('"wall_s": ', '"wall_s": 1, "wall_s": '), "duplicate key"),
    "old schema": (_set("schema", 1), "$.schema: expected the integer 3, got 1"),
    "missing section": (_drop("env"), "$: missing key 'env'"),
    "missing key in a point": (_drop("results.0.T"), "$.results[0]: missing key 'T'"),
    "unknown key": (_set("results.0.colour", "red"), "$.results[0].colour: unknown key"),
    "string for a number": (_set("results.0.ms", "fast"), "$.results[0].ms: expected a number, got a string"),
    "negative time": (_set("results.0.ms", -1.0), "$.results[0].ms: expected a finite number > 0"),
    "zero time": (_set("results.0.ms", 0), "$.results[0].ms: expected a finite number > 0"),
    "huge time": (_set("results.0.ms", 1e999), "$: not valid JSON: Infinity"),
    "negative T": (_set("results.0.T", -8), "$.results[0].T: expected an integer >= 1, got -8"),
    "fractional T": (_set("results.0.T", 8.5), "$.results[0].T: expected an integer, got float 8.5"),
    "bool T": (_set("results.0.T", True), "$.results[0].T: expected an integer, got true/false"),
    "negative peak": (_set("results.0.peak_bytes", -1), "$.results[0].peak_bytes: expected an integer >= 0"),
    "unknown method": (_set("results.0.method", "OldHead"), "$.results[0].method: unknown method 'OldHead'"),
    "unknown status": (_set("results.0.status", "fine"), "$.results[0].status: expected one of"),
    "unknown dtype": (_set("results.0.dtype", "float8"), "$.results[0].dtype: expected one of"),
    "unknown device": (_set("env.device_type", "tpu"), "$.env.device_type: expected one of ['cpu', 'cuda']"),
    "skipped without a reason": (_set("results.1.reason", ""), "$.results[1].reason: expected a non-empty string"),
    "not-ok with a time": (lambda d: _set("results.0.status", "error")(d) or _set("results.0.reason", "x")(d),
                           "$.results[0].ms: a point with status 'error' was not measured"),
    "newline in a string": (_set("env.device_name", "a\n| b"), "$.env.device_name: expected one line"),
    "bidi override": (_set("env.device_name", "a\u202eb"), "$.env.device_name: expected one line"),
    "bad commit": (_set("env.git_commit", "<b>"), "$.env.git_commit: expected a hexadecimal commit id"),
    "bad fingerprint": (_set("fingerprints.clone", "x"), "$.fingerprints.clone: expected a sha256"),
    "point outside the config": (_set("results.0.T", 3), "$.results[0]: (clone, float32, T=3) is outside"),
    "loadavg of the wrong length": (_set("env.loadavg_start", [1.0]), "$.env.loadavg_start: expected 3 items"),
    "head size not C / heads": (_set("config.head_size", 3), "$.config.head_size: expected C / heads"),
}


@pytest.mark.parametrize("what", MALFORMED)
def test_a_malformed_results_file_is_refused_naming_the_file_and_the_json_path(tiny_run, tmp_path, what):
    doc = json.loads(json.dumps(tiny_run[0]))
    if doc["results"][1]["status"] == "ok":  # "skipped without a reason" needs a skipped point second
        doc["results"][1] |= {"status": "skipped", "reason": "x", "ms": None, "samples_ms": [],
                              "calls_per_sample": None}
    change, message = MALFORMED[what]
    new = change(doc)
    bad = tmp_path / "cpu-bad.json"
    bad.write_text(new if isinstance(new, str) else json.dumps(doc if new is None and what != "null" else new))
    with pytest.raises(schema.ResultsError) as exc:
        report.render(tmp_path)
    assert str(exc.value).startswith(f"{bad}: "), exc.value
    assert message in str(exc.value), exc.value


def test_a_badly_named_results_file_is_refused(tiny, tmp_path):
    (tmp_path / "cpu-<x>.json").write_text(json.dumps(tiny))
    with pytest.raises(schema.ResultsError, match="name must be cpu-<name>.json"):
        report.render(tmp_path)


def test_every_string_from_a_hostile_file_is_escaped_in_the_markdown(tiny, tmp_path):
    (tmp_path / "cpu-hostile.json").write_text(json.dumps(hostile(tiny)))
    md = report.render(tmp_path).markdown["cpu"]
    for needle in ("<img", "<iframe", "<meta", "javascript:", "](", "{:", "$x$", "--8<--", "`code`", "| cell"):
        assert needle not in md.replace("](results/", "").replace("](plots/", ""), needle
    assert md.count(escape.esc(HOSTILE)) >= 5
    # the plots: matplotlib writes text escaped (so it stays text), and a $ is not mathtext
    for svg in report.render(tmp_path).plots.values():
        elements = list(ET.fromstring(svg.encode()).iter())
        assert not {e.tag.rsplit("}", 1)[-1] for e in elements} & {"img", "iframe", "meta", "script",
                                                                    "foreignObject", "a"}
        assert not [a for e in elements for a in e.attrib if a.lower().startswith("on")]
        assert any(HOSTILE in (e.text or "") for e in elements)


def test_fingerprints_are_the_same_on_every_python_here():
    """A GPU machine's Python may be newer than this one: a fingerprint must not depend on the version."""
    import shutil

    script = ("import importlib.util, json, sys; s = importlib.util.spec_from_file_location('fp', sys.argv[1]); "
              "m = importlib.util.module_from_spec(s); s.loader.exec_module(m); "
              "print(json.dumps({n: m.fingerprint(c) for n, c in json.loads(sys.argv[2]).items()}))")
    codes = {n: i.code for n, i in schema.METHODS.items() if i.code}
    ours = {n: fingerprint(c) for n, c in codes.items()}
    others = {v: p for v in ("3.11", "3.12", "3.13", "3.14") if (p := shutil.which(f"python{v}"))}
    checked = 0
    for version, python in others.items():
        out = subprocess.run([python, "-c", script, str(ROOT / "snippets" / "timing" / "fingerprint.py"),
                              json.dumps(codes)], capture_output=True, text=True, timeout=60)
        if out.returncode != 0:  # a pyenv shim without that version installed, say
            continue
        assert json.loads(out.stdout) == ours, version
        checked += 1
    if not checked:
        pytest.skip("no other python3.x on PATH to compare with")


def test_the_checks_of_the_gpu_command_render_and_are_validated(tiny, tmp_path):
    tiny["checks"] = {"do_bench": [{"method": "clone", "dtype": "float32", "B": 2, "T": 64, "C": 8,
                                    "harness_ms": 1.02, "do_bench_ms": 1.0}],
                      "profiles": [{"method": "prefix_mean_fast", "dtype": "float32", "B": 2, "T": 64, "C": 8,
                                    "kernels": 22.0, "kernel_ms": 1.5, "wall_ms": 2.0}]}
    (tmp_path / "cpu-tiny.json").write_text(json.dumps(tiny))
    md = report.render(tmp_path).markdown["cpu"]
    assert "the timing method checked" in md
    assert re.search(r"\| `clone` +\| float32 \| \(2, 64, 8\) \| +1\.02 \| +1 \| 1\.020 \|", md)
    timed = next(r["ms"] for r in tiny["bandwidth"] if r["method"] == "prefix_mean_fast")  # the same shape
    row = f"| `prefix_mean_fast` | float32 | (2, 64, 8) | 22 | 1.5 | {summary.num(timed)} | {summary.pct(1.5 / timed)} |"
    assert row in re.sub(r" +", " ", md), row
    tiny["checks"]["do_bench"][0]["do_bench_ms"] = -1
    (tmp_path / "cpu-tiny.json").write_text(json.dumps(tiny))
    with pytest.raises(schema.ResultsError, match=r"\$\.checks\.do_bench\[0\]\.do_bench_ms: expected a finite"):
        report.render(tmp_path)


def test_the_results_format_and_its_text_need_no_torch(tmp_path):
    """schema, validate, summary: standard library only, so a results file can be checked anywhere.

    (report draws its plots in the site's style, snippets.plotting, which comes with the
    snippets package and so with torch.)"""
    blocked = tmp_path / "torch"
    blocked.mkdir()
    (blocked / "__init__.py").write_text("raise ImportError('torch is blocked for this test')\n")
    code = ("import bench.summary as t, bench.validate as s, bench.fingerprint as f, sys; "
            f"res = s.load({str(RESULTS[0])!r}); t.text(res); f.fingerprint('snippets.averaging:prefix_mean_cumsum'); "
            "assert 'torch' not in sys.modules or sys.modules['torch'] is None")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])})
    assert out.returncode == 0, out.stderr[-2000:]
    for path in (ROOT / "bench").glob("*.py"):  # lines as ruff formats them, at 100 characters
        assert len(path.read_text().splitlines()) <= 360, f"{path.name} does more than one job"


def test_the_appendix_says_where_prefix_mean_fast_is_the_plain_cumsum():
    """The page: blocked only from 2**18 numbers on, so up to T = 512 at the sweep's B = 4 and C = 64."""
    from snippets.linear import _SMALL

    page = (DOCS / "appendix" / "timing.md").read_text(encoding="utf-8")
    assert "from 2¹⁸ numbers on" in page and "$B = 4$" in page and "$C = 64$" in page and "up to 512" in page
    cfg, _ = cli.parse_config(["--device", "cpu", "--out", "/tmp/x.json"])
    assert _SMALL == 2**18 and (cfg.B, cfg.C) == (4, 64)
    assert cfg.B * 512 * cfg.C < _SMALL <= cfg.B * 1024 * cfg.C
    # "one batched product of the 16-row blocks with a 16-by-16 triangle": the blocked path's
    # first product multiplies the n full 16-row blocks by one 16 x 16 matrix, whatever T is;
    # seen in what it runs (torch's profiler), not read from its source.
    from snippets.linear import prefix_mean_fast
    from tests.counting import block_products

    said = " ".join(page.split())
    assert "one batched product of the 16-row blocks with a 16-by-16 triangle" in said
    assert "on 16 times fewer rows" in said
    C = _SMALL // 32
    for T in (32, 35, 48):
        n = T // 16
        first = block_products(prefix_mean_fast, torch.randn(1, T, C))[0]
        assert first[0][0] == n and first[0][1:] == [16, 16] and first[1] == [n, 16, C], (T, first)


@pytest.mark.skipif(memory.unavailable() is not None, reason="needs Linux with glibc")
def test_the_command_reuses_freed_memory_on_a_cpu_and_says_so(tmp_path):
    out = tmp_path / "cpu-x.json"
    script = ("import sys; from bench.cli import main; "
              f"sys.exit(main({[*TINY, '--device', 'cpu', '--methods', 'clone', '--no-memory', '--out', str(out)]!r}, "
              "reuse_freed_memory=True))")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert validate.load(out).env.allocator == memory.REUSE
    for path in RESULTS:  # the committed CPU files come from the command, which does this
        res = validate.load(path)
        assert res.env.allocator == (memory.REUSE if res.env.device_type == "cpu" else None), path.name


def test_a_method_a_file_lacks_is_said_to_be_not_measured():
    # The committed files predate chapter 10's kernel: the appendix says so instead of showing
    # nothing, and names no number for it.
    for path in RESULTS:
        res = validate.load(path)
        held = {schema.base_name(r.method) for r in res.results + res.bandwidth}
        notes = missing.not_measured(res)
        for m in schema.METHODS:
            line = f"- `{m}`: not measured: this file holds no point of it"
            assert any(n.startswith(line) for n in notes) == (m not in held), (path.name, m)


def test_the_triton_kernel_is_timed_on_cuda_only():
    cfg, _ = cli.parse_config(["--device", "cpu", "--out", "/tmp/x.json"])
    assert "prefix_mean_triton" in cfg.methods and "prefix_mean_triton" in schema.CUDA_ONLY
    reason = methods.skip_reason(cfg, "prefix_mean_triton", "float32", 64)
    assert reason and "CUDA GPUs only" in reason
    assert schema.METHODS["prefix_mean_triton"].code == "snippets.kernels:prefix_mean_triton"
    assert len(fingerprint("snippets.kernels:prefix_mean_triton")) == 64


def test_chapter_10_states_the_kernels_speed_from_the_results_files(tmp_path):
    """The sentence that chapter 10 includes: each file's fractions of clone's speed, as
    computed here from the file; or "not measured yet" where no file has the kernel."""
    from tests.scripts import load_file

    hook = load_file("sitegen/timing.py")
    assert any(hook.include_line("kernel") in p.read_text(encoding="utf-8") for p in DOCS.glob("*.md"))
    said = hook.kernel_sentence(RESULTS[0].parent)
    timed = False
    for path in RESULTS:
        res = validate.load(path)
        bw = {(r.method, r.dtype): r.ms for r in res.bandwidth if r.status == "ok"}
        for d in res.config.dtypes:
            if ("prefix_mean_triton", d) in bw:
                timed = True
                fraction = summary.pct(bw[("clone", d)] / bw[("prefix_mean_triton", d)])
                assert f"{fraction} of `clone`'s speed in {d}" in said, (path.name, d, said)
    assert (said == hook.UNMEASURED) == (not timed), said
    empty = tmp_path / "results"
    empty.mkdir()
    assert hook.kernel_sentence(empty) == hook.UNMEASURED


def test_the_fast_prefix_mean_appendix_states_its_times_from_the_cpu_files(tmp_path):
    """The paragraph the appendix on prefix_mean_fast includes: each CPU file's float32 times at
    the bandwidth point and their ratios, as computed here from the file, quiet and busy."""
    from tests.scripts import load_file

    hook = load_file("sitegen/timing.py")
    assert hook.include_line("fast") in (DOCS / "appendix/fast-prefix-mean.md").read_text(encoding="utf-8")
    said = hook.fast_sentence(RESULTS[0].parent)
    cpu = [p for p in RESULTS if p.name.startswith("cpu-")]
    assert cpu and said != hook.NO_CPU_FILE
    for path in cpu:
        res = validate.load(path)
        quiet = {r.method: r.ms for r in res.bandwidth if r.dtype == "float32" and r.status == "ok"}
        marks = noise.flags(res)
        said_plain = said.replace(" (noisy)", "")
        for r in (*res.bandwidth, *res.bandwidth_busy):  # a flagged time says so
            if r.dtype == "float32" and r.status == "ok" and id(r) in marks:
                assert f"{summary.num(r.ms)} ms (noisy)" in said, (path.name, r.method)
        clone, cumsum, fast = quiet["clone"], quiet["prefix_mean_cumsum"], quiet["prefix_mean_fast"]
        for part in (f"`x.clone()` took {summary.num(clone)} ms", f"({summary.num(cumsum / clone)} times as long)",
                     f"({summary.num(fast / clone)} times as long: {summary.pct(clone / fast)} of `clone`'s speed)"):
            assert part in said_plain, (path.name, part, said)
        busy = {r.method: r.ms for r in res.bandwidth_busy if r.dtype == "float32" and r.status == "ok"}
        if busy:
            lead = busy["prefix_mean_cumsum"] / busy["prefix_mean_fast"]
            n, cores = res.env.busy_processes, res.env.cpu_count
            where = "" if cores is None else " (one per core)" if n == cores else f" (on {cores} cores)"
            assert f"With {n} busy processes{where} beside it" in said
            assert f"was {summary.num(lead)} times as fast as `prefix_mean_cumsum`, against " \
                   f"{summary.num(cumsum / fast)} times on the quiet machine" in said_plain, (path.name, said)
            for m in ("clone", "prefix_mean_cumsum", "prefix_mean_fast"):
                assert f"{summary.num(busy[m])} ms ({summary.num(busy[m] / quiet[m])} times its quiet time)" in said_plain
    empty = tmp_path / "results"
    empty.mkdir()
    assert hook.fast_sentence(empty) == hook.NO_CPU_FILE
    # A valid file may not know its cores: the sentence then says nothing of them.
    doc = json.loads(cpu[0].read_text(encoding="utf-8"))
    doc["env"]["cpu_count"] = None
    (empty / cpu[0].name).write_text(json.dumps(doc), encoding="utf-8")
    unknown = hook.fast_sentence(empty)
    assert f"With {doc['env']['busy_processes']} busy processes beside it" in unknown and "None" not in unknown


# ---- a harness that refuses noise: each kind of noise planted, and caught ----

def _noisy_sweep(tiny):
    """A sweep of prefix_mean_fast at T = 256, 512, 1024, 2048: 512 noisy, 1024 slower than 2048."""
    return _results(tiny, [
        dict(method="prefix_mean_fast", T=256, ms=1.0, samples_ms=[0.99, 1.0, 1.01]),
        dict(method="prefix_mean_fast", T=512, ms=2.0, samples_ms=[1.5, 1.8, 2.0, 2.2, 2.9]),
        dict(method="prefix_mean_fast", T=1024, ms=9.0, samples_ms=[8.9, 9.0, 9.1]),
        dict(method="prefix_mean_fast", T=2048, ms=4.0, samples_ms=[3.9, 4.0, 4.1]),
        *(dict(method="prefix_mean_matmul", T=T, ms=T / 100, samples_ms=[T / 100] * 3) for T in (256, 512, 1024, 2048)),
    ])


def test_a_noisy_point_and_a_non_monotonic_point_are_flagged_and_marked(tiny):
    res = _noisy_sweep(tiny)
    at = {(r.method, r.T): r for r in res.results}
    marks = noise.flags(res)
    assert marks[id(at["prefix_mean_fast", 512])] == "noisy: interquartile range 20 % of the median"
    assert marks[id(at["prefix_mean_fast", 1024])] == "non-monotonic: slower than at T = 2048"
    assert len(marks) == 2  # 256 and 2048 are clean; so is every matmul point
    table = summary.grid(res, "float32", "ms", marks=marks)
    assert "2 (noisy)" in table and "9 (non-monotonic)" in table and "4 |" in table
    notes = "\n".join(noise.page_notes(res, str, marks))
    assert "`prefix_mean_fast`, float32, T = 1024: non-monotonic: slower than at T = 2048" in notes


def test_headline_ratios_use_only_clean_points(tiny):
    res = _noisy_sweep(tiny)
    got = dict(summary.headline(res, "float32"))
    # matmul / fast at the largest T (2048) is clean: 20.48 / 4; the flagged 512 and 1024 are left out
    assert got["prefix_mean_matmul / prefix_mean_fast at T = 2048"] == "5.12x"
    assert got["prefix_mean_fast against prefix_mean_matmul"] == "faster at every T measured (256, 2048)"
    assert "not flagged" in "\n".join(summary.summary(res, "float32"))


def test_a_median_that_is_not_the_median_of_the_samples_is_refused(tiny):
    doc = json.loads(json.dumps(tiny))
    ok = next(r for r in doc["results"] if r["status"] == "ok")
    ok["ms"] = max(ok["samples_ms"]) * 2
    with pytest.raises(schema.ResultsError, match=r"samples_ms: their median is .*, but ms is .*: ms must be the median"):
        validate.parse(doc, "test")
    ok["ms"], ok["samples_ms"] = 2.0, [1.0, 2.0, 100.0]  # the median, whatever the spread
    validate.parse(doc, "test")


def test_files_of_the_older_format_load_as_legacy_and_the_page_says_so(tiny):
    doc = json.loads(json.dumps(tiny))
    doc["schema"] = 2
    for key in ("steal_cores", "loadavg_max", "busy_processes", "busy"):
        doc["env"].pop(key)
    for r in doc["results"] + doc["bandwidth"]:
        r.pop("remeasured")
        if r["status"] == "ok":  # format 2 stored the median of the unrounded samples
            r["ms"] *= 1 + 3e-6
    doc.pop("bandwidth_busy")
    res = validate.parse(doc, "test")
    assert res.schema == 2 and "An older results format" in "\n".join(noise.page_notes(res, str, {}))
    ok = next(r for r in doc["results"] if r["status"] == "ok")
    ok["ms"] *= 1.001  # beyond the rounding of 6 significant digits: refused
    with pytest.raises(schema.ResultsError, match="ms must be the median"):
        validate.parse(doc, "test")


def test_a_busy_machine_is_refused_unless_allowed_and_then_the_page_says_so(tmp_path, monkeypatch):
    from bench import runner

    ticks = iter([(100.0, 1.0), (1e9, 1.0)])  # the machine busy, this process idle: others busy
    monkeypatch.setattr(runner, "cpu_seconds", lambda: next(ticks))
    out = tmp_path / "cpu-busy.json"
    args = [*[a for a in TINY if a != "--allow-busy"], "--device", "cpu", "--methods", "clone",
            "--no-memory", "--no-bandwidth", "--out", str(out)]
    assert cli.main(args) == 3 and not out.exists()
    ticks = iter([(100.0, 1.0), (1e9, 1.0)])
    monkeypatch.setattr(runner, "cpu_seconds", lambda: next(ticks))
    assert cli.main([*args, "--allow-busy"]) == 0
    res = validate.load(out)
    assert res.env.busy.startswith("other processes kept")
    page = "\n".join(noise.page_notes(res, str, {}))
    assert "Measured on a busy machine" in page and "--allow-busy" in page


def test_busy_rules():
    env = validate.load(RESULTS[0]).env
    quiet = dataclasses.replace(env, cpu_count=2, threads=2, other_processes_cores=0.1, loadavg_end=[2.5, 2, 2])
    assert noise.busy(quiet) is None
    assert "cores busy" in noise.busy(dataclasses.replace(quiet, other_processes_cores=0.6))
    assert "load average" in noise.busy(dataclasses.replace(quiet, loadavg_end=[3.5, 2, 2]))


def test_samples_of_the_methods_at_a_point_alternate():
    import time

    from bench.measure import interleaved

    calls = []

    def method(name):
        calls.append(name)
        time.sleep(0.002)  # over a millisecond: one call per sample

    got = interleaved({n: (lambda n=n: method(n)) for n in "abc"}, device="cpu", repeats=6, warmup=0,
                      budget=10.0)
    assert all(got[n]["status"] == "ok" and len(got[n]["samples_ms"]) == 6 for n in "abc"), got
    warm, rounds = calls[:3], [calls[3 + 3 * i: 6 + 3 * i] for i in range(6)]
    assert warm == list("abc") and len(calls) == 3 + 18  # one warm-up call each, then the rounds
    assert all(sorted(r) == list("abc") for r in rounds), rounds  # one sample of each per round
    # and not always in one order: no method always runs right after the same other one
    before = {n: {calls[i - 1] for i in range(4, len(calls)) if calls[i] == n} for n in "abc"}
    assert all(len(b) > 1 for b in before.values()), (rounds, before)


def test_flagged_points_are_measured_once_more(tiny):
    from bench import runner

    cfg, _ = cli.parse_config([*TINY, "--device", "cpu", "--out", "/tmp/x.json"])
    res = _noisy_sweep(tiny)
    res.results = [r for r in res.results if r.method == "prefix_mean_fast"]
    small = dataclasses.replace(cfg, B=1, C=8, repeats=3, time_budget=0.5)
    for r in res.results:
        r.B, r.C = 1, 8
    noisy = res.results[1]
    runner.remeasure(small, res.results, [], runner._InputCache(), None)
    assert noisy.remeasured and noisy.samples_ms != [1.5, 1.8, 2.0, 2.2, 2.9] and noisy.ms < 1
    assert not res.results[0].remeasured and res.results[0].samples_ms == [0.99, 1.0, 1.01]


def test_busy_processes_run_during_the_block_and_never_outlive_it(tmp_path):
    from bench.environment import busy_processes

    with busy_processes(2) as n:
        children = [p for p in psutil_children()]
        assert n == 2 and len(children) >= 2
    assert not [p for p in children if _alive(p)]
    # and they stop by themselves when their parent dies without cleaning up
    script = ("import os, sys; from bench.environment import busy_processes\n"
              "with busy_processes(1):\n"
              "    print(' '.join(sys.argv[1:]) or 'x', flush=True); os._exit(0)\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0
    import time as _time
    _time.sleep(3)
    assert "os.getppid() == int(sys.argv[1])" not in subprocess.run(["ps", "-eo", "args"], capture_output=True,
                                                                    text=True).stdout


def psutil_children() -> list[int]:
    """This process's busy processes (bench.environment.BUSY_WORKER)."""
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(os.getpid())], capture_output=True, text=True).stdout
    cmdline = [(int(p), Path(f"/proc/{p}/cmdline")) for p in out.split()]  # ps itself is gone by now
    return [p for p, f in cmdline if f.exists() and b"getppid" in f.read_bytes()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").exists() and Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


@pytest.mark.parametrize("path", RESULTS, ids=lambda p: p.name)
def test_the_bandwidth_table_is_shown_beside_what_was_not_measured(path):
    """A method skipped at the bandwidth point (Triton on a CPU) is listed under the table of the
    ones measured; it does not replace it."""
    res = validate.load(path)
    for dtype in res.config.dtypes:
        rows = [r for r in res.bandwidth if r.dtype == dtype]
        text = "\n".join(summary.summary(res, dtype))
        section = text[text.index("Bandwidth point:"):].split("The same bandwidth point once more")[0]
        for r in rows:
            if r.status == "ok":
                assert f"| `{r.method}`" in section and summary.num(r.ms) in section, (path.name, r.method)
            else:
                assert f"`{r.method}`, " in section, (path.name, r.method)
