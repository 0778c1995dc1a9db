"""The command line of ``python -m bench``: options, the output file, interrupts."""

from __future__ import annotations

import argparse
import fnmatch
import math
import re
import shlex
import signal
import sys
from pathlib import Path

import torch

from bench.environment import ROOT, cpu_model, git_state
from bench.methods import DTYPES, Config
from bench.noise import busy
from bench.output import check_out, fallback_write
from bench.safe_read import unsafe_char
from bench.schema import BANDWIDTH_METHODS, method_names, write_atomic

# What the appendix renders, in a checkout; installed from a wheel, where there is no
# checkout, the current directory.
RESULTS_DIR = ROOT / "docs" / "appendix" / "results" if (ROOT / "docs").is_dir() else Path.cwd()
CPU_TS = tuple(2**i for i in range(6, 13))  # 64 .. 4096
CUDA_TS = tuple(2**i for i in range(6, 16))  # 64 .. 32768
# (B, T, C) of the bandwidth point: x of 64 MiB in float32 on a CPU; 512 MiB on a GPU, far above the
# 50 to 60 MB of L2 of an H100 or H200 also in bfloat16.
BANDWIDTH_SHAPES = {"cpu": (16, 2048, 512), "cuda": (64, 4096, 512)}


def _power_of_two(s: str) -> int:
    try:
        n = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a power of two, got {s!r}") from None
    if n < 1 or n & (n - 1):
        raise argparse.ArgumentTypeError(f"expected a power of two (1, 2, 4, ...), got {n}")
    return n


def _positive(kind):
    def parse(s: str):
        try:
            v = kind(s)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected a positive {kind.__name__}, got {s!r}"
            ) from None
        if not v > 0 or (kind is float and not math.isfinite(v)):
            raise argparse.ArgumentTypeError(f"expected a positive {kind.__name__}, got {s!r}")
        return v

    return parse


def _non_negative_int(s: str) -> int:
    try:
        v = int(s)
    except ValueError:
        v = -1
    if v < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {s!r}")
    return v


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description="Time every prefix-mean and attention version of the tutorial on this "
        "machine and write a JSON results file for the appendix page. Forward passes only, under "
        "torch.inference_mode. Progress goes to stderr, a table to stdout.",
        epilog="Methods: " + ", ".join(method_names(True)) + ". Skipped points, out-of-memory and "
        "over-budget points are recorded in the file, never fatal. Ctrl-C (exit 130) or SIGTERM "
        "(exit 143) ends the run and its worker and writes no file.",
    )
    p.add_argument(
        "--device",
        default=None,
        help="where to run: cpu, cuda or cuda:N (default: cuda if available, else cpu)",
    )
    p.add_argument(
        "--dtype",
        nargs="+",
        choices=list(DTYPES),
        default=None,
        metavar="DTYPE",
        help="one or more of float32, bfloat16 (default: float32 on CPU; float32 bfloat16 on CUDA)",
    )
    p.add_argument(
        "--T",
        nargs="+",
        type=_power_of_two,
        default=None,
        metavar="T",
        help="sequence lengths, powers of two (default: 64 .. 4096 on CPU, 64 .. 32768 on CUDA)",
    )
    p.add_argument("-B", type=_positive(int), default=4, help="batch size (default: 4)")
    p.add_argument(
        "-C",
        type=_positive(int),
        default=64,
        help="channels of x, which is also n_embd of Head and MultiHeadAttention (default: 64)",
    )
    p.add_argument(
        "--heads",
        type=_positive(int),
        default=4,
        help="attention heads; head size = C / heads, which must divide evenly (default: 4)",
    )
    p.add_argument(
        "--tf32",
        choices=["on", "off"],
        default="off",
        help="CUDA only: let float32 matmuls use TF32 tensor cores (default: off)",
    )
    p.add_argument(
        "--compile",
        action="store_true",
        help="also time a torch.compile variant of each method, named METHOD+compile "
        "(compile time is recorded, not timed)",
    )
    p.add_argument(
        "--methods",
        nargs="+",
        default=None,
        metavar="PATTERN",
        help="only the methods matching these names or shell patterns, e.g. 'prefix_mean_*' "
        "'sdpa-*' (default: all)",
    )
    p.add_argument(
        "--repeats",
        type=_positive(int),
        default=10,
        help="timed samples per point; the median is kept (default: 10)",
    )
    p.add_argument(
        "--warmup",
        type=_non_negative_int,
        default=2,
        help="untimed calls after the first one, before timing (default: 2)",
    )
    p.add_argument(
        "--time-budget",
        type=_positive(float),
        default=3.0,
        metavar="SECONDS",
        help="seconds per point: a first call slower than this makes the point 'over budget' and "
        "skips larger T of that method; fewer samples are taken if they would not fit (default: 3)",
    )
    p.add_argument(
        "--matmul-size",
        type=_positive(int),
        default=None,
        metavar="N",
        help="N of the (N, N) @ (N, N) matmul that gives the FLOP/s reference "
        "(default: 2048 on CPU, 8192 on CUDA)",
    )
    p.add_argument(
        "--threads",
        type=_positive(int),
        default=None,
        help="torch.set_num_threads for the run (default: torch's own choice, recorded)",
    )
    p.add_argument("--no-memory", action="store_true", help="do not measure peak memory")
    cpu, gpu = BANDWIDTH_SHAPES["cpu"], BANDWIDTH_SHAPES["cuda"]
    p.add_argument(
        "--bandwidth",
        nargs=3,
        type=_positive(int),
        default=None,
        metavar=("B", "T", "C"),
        help="shape of the bandwidth point: "
        + ", ".join(BANDWIDTH_METHODS)
        + " timed once more on x of "
        "this shape, larger than the caches, so clone runs at memory speed (default: "
        f"{' '.join(map(str, cpu))} on CPU, {math.prod(cpu) * 4 / 2**20:g} MiB in float32; "
        f"{' '.join(map(str, gpu))} on CUDA, {math.prod(gpu) * 4 / 2**20:g} MiB)",
    )
    p.add_argument("--no-bandwidth", action="store_true", help="leave the bandwidth point out")
    p.add_argument(
        "--busy",
        action="store_true",
        help="after the run, time the bandwidth point once more while one busy single-threaded "
        "torch process per core runs (stopped afterwards); both are recorded",
    )
    p.add_argument(
        "--allow-busy",
        action="store_true",
        help="write the file even if the machine was busy during the run (see bench.noise); the "
        "file and the page say so. Without it, a busy run writes no file and exits with 3",
    )
    p.add_argument(
        "--seed", type=int, default=0, help="seed of the random inputs and weights (default: 0)"
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="PATH",
        help="results file (default: docs/appendix/results/<device>-<name>.json of this checkout, "
        "whatever the current directory, which the appendix page renders; an existing file "
        "is replaced only once the run has finished, in one step)",
    )
    return p


SEED_END = 2**63 - 2**20  # seed + T stays within torch.manual_seed's range


def default_name(dev: torch.device) -> str:
    """``cpu-amd-epyc``, ``cuda-nvidia-h100-80gb-hbm3``: only lower-case letters, digits and
    dashes."""
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else cpu_model()
    return f"{dev.type}-" + (re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:80] or "unknown")


def parse_config(argv: list[str]) -> tuple[Config, Path]:
    p = build_parser()
    a = p.parse_args(argv)
    if a.device is not None and not a.device.strip():
        p.error("--device: expected cpu, cuda or cuda:N, got an empty string")
    device = a.device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        p.error(f"--device: expected cpu, cuda or cuda:N, got {device!r}")
    if dev.type not in ("cpu", "cuda"):
        p.error(f"--device: expected cpu, cuda or cuda:N, got {device!r}")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            p.error(
                f"--device {device}: CUDA is not available here (torch {torch.__version__}, "
                f"built with CUDA {torch.version.cuda})"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            p.error(f"--device {device}: only {torch.cuda.device_count()} CUDA device(s) here")
    if not -(2**63) <= a.seed < SEED_END:  # torch's range; methods.py seeds with seed + T
        p.error(f"--seed {a.seed}: expected an integer from {-(2**63)} to {SEED_END - 1}")
    command = shlex.join(["python", "-m", "bench", *argv])  # what the results file records
    if len(command) > 2000 or unsafe_char(command):
        p.error(
            "the command line is recorded in the results file, which allows one line of at "
            "most 2000 characters without control or format characters; this one is not"
        )
    cuda = dev.type == "cuda"
    if a.tf32 == "on" and not cuda:
        p.error("--tf32 on: TF32 is a CUDA setting; this run is on the CPU")
    if a.C % a.heads:
        p.error(f"--heads {a.heads}: must divide -C {a.C} evenly (head size = C / heads)")
    names = method_names(a.compile)
    chosen = names
    if a.methods:
        unknown = [pat for pat in a.methods if not fnmatch.filter(names, pat)]
        if unknown:
            hint = "" if a.compile else " (+compile variants need --compile)"
            p.error(
                f"--methods: {' '.join(unknown)} matches no method{hint}; "
                f"choose from {', '.join(names)}"
            )
        chosen = [n for n in names if any(fnmatch.fnmatchcase(n, pat) for pat in a.methods)]
    cfg = Config(
        device=device,
        dtypes=tuple(dict.fromkeys(a.dtype or (["float32", "bfloat16"] if cuda else ["float32"]))),
        Ts=tuple(sorted(set(a.T or (CUDA_TS if cuda else CPU_TS)))),
        B=a.B,
        C=a.C,
        heads=a.heads,
        repeats=a.repeats,
        warmup=a.warmup,
        time_budget=a.time_budget,
        tf32=a.tf32 == "on",
        compile=a.compile,
        methods=tuple(chosen),
        matmul_size=a.matmul_size or (8192 if cuda else 2048),
        threads=a.threads or torch.get_num_threads(),
        seed=a.seed,
        memory=not a.no_memory,
        bandwidth=None if a.no_bandwidth else tuple(a.bandwidth or BANDWIDTH_SHAPES[dev.type]),
        busy=a.busy,
    )
    try:
        git_state()
    except ValueError as exc:
        p.error(str(exc))
    if a.out is None and not RESULTS_DIR.is_dir():
        p.error(
            f"--out: no default here ({RESULTS_DIR} does not exist outside a checkout); name a file"
        )
    out = (a.out or RESULTS_DIR / f"{default_name(dev)}.json").absolute()
    if why := check_out(out):
        p.error(f"--out {out}: {why}")
    return cfg, out


class Terminated(BaseException):
    """SIGTERM, raised in the main thread so that `finally` blocks end the worker."""


def _on_sigterm(signum, frame):
    raise Terminated


def main(argv: list[str] | None = None, *, reuse_freed_memory: bool = False) -> int:
    """The command. `reuse_freed_memory`: on a CPU, change this process's allocator first
    (``memory.reuse_freed_memory``); the command does, a caller in a long-lived process may not
    want to."""
    from bench.runner import run
    from bench.summary import text

    argv = sys.argv[1:] if argv is None else list(argv)
    cfg, out = parse_config(argv)
    if reuse_freed_memory and not cfg.device.startswith("cuda"):
        from bench.memory import reuse_freed_memory as reuse

        reuse()
    existed = out.exists()
    if existed:
        print(f"{out} exists: it will be replaced when the run has finished", file=sys.stderr)
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        results = run(cfg, argv)
        print(text(results))
        if why := busy(results.env):
            if not build_parser().parse_args(argv).allow_busy:
                print(
                    f"the machine was busy: {why}; nothing written to {out} (measure again "
                    "on a quiet machine, or pass --allow-busy)",
                    file=sys.stderr,
                )
                return 3
            results.env.busy = why
        try:
            write_atomic(out, results.to_json())  # an interrupt here leaves the old file whole
        except OSError as exc:
            return fallback_write(out, results.to_json(), exc)
    except KeyboardInterrupt:
        print(f"\ninterrupted: nothing written to {out}", file=sys.stderr)
        return 130
    except Terminated:
        print(f"\nterminated: nothing written to {out}", file=sys.stderr)
        return 143
    finally:
        signal.signal(signal.SIGTERM, previous)
    print(f"{'replaced' if existed else 'wrote'} {out} in {results.wall_s:.0f} s", file=sys.stderr)
    return 0
