"""Facts about the machine and the run that a results file records beside its numbers."""

from __future__ import annotations

import contextlib
import os
import platform
import re
import shlex
import subprocess
import sys
from datetime import datetime, UTC
from pathlib import Path

import torch

from bench import memory
from bench.methods import Config
from bench.schema import Env

ROOT = Path(__file__).resolve().parents[1]  # the repository root when run from a checkout
COMMIT_VARIABLE = "TIMING_GIT_COMMIT"  # the commit of a copy without .git (a GPU machine's), if set


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def loadavg() -> list[float] | None:
    try:
        return [float(f) for f in Path("/proc/loadavg").read_text().split()[:3]]
    except (OSError, ValueError):
        return None


def cpu_seconds() -> tuple[float, float] | None:
    """(busy CPU seconds of the whole machine, CPU seconds of this process and its children)."""
    try:
        ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    except (OSError, ValueError):
        return None
    user, nice, system, idle, iowait, irq, softirq, steal = ticks
    t = os.times()
    own = t.user + t.system + t.children_user + t.children_system
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK"), own


def steal_seconds() -> float | None:
    """CPU seconds the hypervisor gave to other machines (the "steal" of /proc/stat), all cores."""
    try:
        return int(Path("/proc/stat").read_text().split("\n", 1)[0].split()[8]) / os.sysconf(
            "SC_CLK_TCK"
        )
    except (OSError, ValueError, IndexError):
        return None


# A busy process: one thread of torch matmuls, until it is killed or this process is gone.
BUSY_WORKER = (
    "import os, sys, torch\ntorch.set_num_threads(1)\na = torch.randn(256, 256)\n"
    "print('ready', flush=True)\nwhile os.getppid() == int(sys.argv[1]):\n"
    "    a = (a @ a).tanh()\n"
)


@contextlib.contextmanager
def busy_processes(n: int):
    """`n` single-threaded torch processes that keep one core each busy while the block runs.

    They are killed when it ends, however it ends, and each one also stops by itself once
    this process is gone (its parent changes), so none outlives the run.
    """
    procs: list[subprocess.Popen] = []
    try:
        for _ in range(n):
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-c", BUSY_WORKER, str(os.getpid())],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                    env={**os.environ, "OMP_NUM_THREADS": "1"},
                )
            )
        for p in procs:  # started: torch imported, the loop about to run
            if p.stdout is None or p.stdout.readline().strip() != b"ready":
                raise RuntimeError(f"a busy process exited early (code {p.poll()})")
        yield n
    finally:
        for p in procs:
            p.kill()
        for p in procs:
            p.wait()
            if p.stdout:
                p.stdout.close()


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def git_state() -> tuple[str | None, bool | None]:
    """(commit, whether snippets/ or bench/ differs from it): the commit named by
    $TIMING_GIT_COMMIT, else the checkout's.

    A copy of the working tree sent to another machine may carry a .git of an
    older commit, so a commit named in the environment wins; whether that copy
    differs from it is then unknown (None).
    """
    named = os.environ.get(COMMIT_VARIABLE, "").strip().lower()
    if named:
        if not re.fullmatch(r"[0-9a-f]{7,40}", named):
            raise ValueError(
                f"${COMMIT_VARIABLE}: expected a hexadecimal commit id, got {named[:80]!r}"
            )
        return named, None
    if (ROOT / ".git").exists() and (commit := _git("rev-parse", "HEAD")):
        return commit, bool(_git("status", "--porcelain", "--", "snippets", "bench"))
    return None, None


def environment(cfg: Config, argv: list[str]) -> Env:
    dev = torch.device(cfg.device)
    cuda = dev.type == "cuda"
    props = torch.cuda.get_device_properties(dev) if cuda else None
    commit, dirty = git_state()
    return Env(
        device_type=dev.type,
        device_name=props.name if props else cpu_model(),
        cpu_model=cpu_model(),
        cpu_count=os.cpu_count(),
        threads=torch.get_num_threads(),
        torch=torch.__version__,
        cuda=torch.version.cuda,
        cudnn=torch.backends.cudnn.version() if cuda else None,
        gpu_memory_bytes=props.total_memory if props else None,
        l2_cache_bytes=props.L2_cache_size if props else None,
        python=platform.python_version(),
        platform=platform.platform(),
        date=datetime.now(UTC).isoformat(timespec="seconds"),
        command=shlex.join(["python", "-m", "bench", *argv]),
        git_commit=commit,
        git_dirty=dirty,
        loadavg_start=loadavg(),
        loadavg_end=None,
        other_processes_cores=None,
        memory_method=(
            "torch.cuda.max_memory_allocated after reset_peak_memory_stats"
            if cuda
            else memory.METHOD
        ),
        memory_resolution_bytes=1 if cuda else memory.MMAP_THRESHOLD,
        allocator=None if cuda else memory.reuse_note,
    )
