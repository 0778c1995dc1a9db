"""The timing command under faults: no process outlives it, whatever signal ends it, and a finished
sweep is kept when the final write fails; bad options are refused before measuring (bench/cli.py,
bench/memory.py, bench/output.py)."""

from __future__ import annotations

import errno
import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench import cli, output, validate
from tests.pages import ROOT

TINY = ["--device", "cpu", "--T", "8", "16", "-B", "2", "-C", "8", "--heads", "2", "--repeats", "2",
        "--warmup", "1", "--matmul-size", "64", "--no-bandwidth", "--allow-busy"]  # beside other tests


def _descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        kids = subprocess.run(["ps", "-o", "pid=", "--ppid", str(todo.pop())], capture_output=True,
                              text=True).stdout.split()
        found += map(int, kids)
        todo += map(int, kids)
    return found


def _alive(pid: int) -> bool:
    try:
        return "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()
    except FileNotFoundError:
        return False


@pytest.mark.parametrize("sig", ["SIGKILL", "SIGHUP"])
def test_killing_the_command_leaves_no_worker_and_no_resource_tracker(tmp_path, sig):
    proc = subprocess.Popen([sys.executable, "-m", "bench", *TINY[:3], "8", "16", "32", "64", "128", "256",
                             "512", "1024", "2048", "4096", *TINY[5:], "--methods", "clone",
                             "--out", str(tmp_path / "x.json")],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    deadline = time.monotonic() + 120
    line = ""
    while "peak memory" not in line:  # the worker is up
        line = proc.stderr.readline()
        assert line or proc.poll() is None, "the run ended before its memory phase"
        assert time.monotonic() < deadline
    proc.send_signal(signal.SIGSTOP)  # hold it there while its processes are listed
    children = _descendants(proc.pid)
    assert len(children) >= 2, f"expected the worker and the resource tracker, found {children}"
    os.kill(proc.pid, getattr(signal, sig))
    os.kill(proc.pid, signal.SIGCONT)
    proc.wait(timeout=30)
    deadline = time.monotonic() + 15
    while [p for p in children if _alive(p)] and time.monotonic() < deadline:
        time.sleep(0.2)
    alive = [p for p in children if _alive(p)]
    for p in alive:  # do not leave them to the next test
        os.kill(p, signal.SIGKILL)
    assert alive == [], f"left running after {sig}: {alive}"


def test_a_failed_final_write_keeps_the_sweep_in_a_fallback_file(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(output.tempfile, "tempdir", str(tmp_path))

    def full(path, text):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(cli, "write_atomic", full)
    out = tmp_path / "out" / "x.json"
    out.parent.mkdir()
    assert cli.main([*TINY, "--methods", "clone", "--out", str(out)]) == 1
    (line,) = [ln for ln in capsys.readouterr().err.splitlines() if "could not write" in ln]
    assert line.startswith(f"could not write {out} (No space left on device); the results are in {tmp_path}/x-")
    kept = Path(line.rsplit(" ", 1)[1])
    assert validate.load(kept).config.Ts == [8, 16] and not out.exists()


def _limit_file_size() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


def test_the_up_front_check_writes_as_many_bytes_as_a_results_file_may_hold(tmp_path):
    """A folder that takes a 0-byte file but not a full one (here: a file size limit) is refused
    before anything is measured, as a full disk would be."""
    run = subprocess.run([sys.executable, "-m", "bench", *TINY, "--out", str(tmp_path / "x.json")], cwd=ROOT,
                         capture_output=True, text=True, timeout=120, preexec_fn=_limit_file_size)
    assert run.returncode == 2 and "cannot take a results file (File too large)" in run.stderr, run.stderr[-2000:]
    assert run.stdout == "" and list(tmp_path.iterdir()) == []


def test_a_full_disk_at_fsync_is_refused_up_front(tmp_path, monkeypatch):
    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(output.os, "fsync", full)
    assert output.check_out(tmp_path / "x.json") == (
        f"its folder {tmp_path} cannot take a results file (No space left on device)")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argv, needle", [
    (["--seed", str(2**64)], f"--seed {2**64}: expected an integer from {-(2**63)} to {cli.SEED_END - 1}"),
    (["--seed", str(-(2**63) - 1)], "--seed"),
    (["--device", ""], "--device: expected cpu, cuda or cuda:N, got an empty string"),
    (["--device", "  "], "--device: expected cpu, cuda or cuda:N, got an empty string"),
    (["--out", "/tmp/a\tb.json"], "the command line is recorded in the results file"),
    (["--out", "/tmp/" + "d" * 2100 + ".json"], "the command line is recorded in the results file"),
    (["--out", "/tmp/a\u202eb.json"], "the command line is recorded in the results file"),
])
def test_options_the_results_file_would_refuse_are_refused_before_measuring(argv, needle, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.parse_config(["--device", "cpu", "--out", "/tmp/x.json", *argv])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and needle in err, err
    assert len(err.strip().splitlines()[-1]) < 400


def test_the_largest_seed_allowed_measures(tmp_path):
    out = tmp_path / "x.json"
    assert cli.main([*TINY, "--methods", "clone", "--seed", str(cli.SEED_END - 1), "--out", str(out)]) == 0
    res = validate.load(out)
    assert all(p.status == "ok" for p in res.results), [p.reason for p in res.results]
