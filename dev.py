#!/usr/bin/env python3
"""Set up and run the project with nothing but Python 3.11+ installed.

    python3 dev.py serve   # create .venv if needed, then serve the site on http://127.0.0.1:8000
    python3 dev.py test    # create .venv if needed, then run every test and the strict build
    python3 dev.py test --floor  # the teaching, page and docstring tests on the lowest torch
    python3 dev.py test --fast  # the inner loop: without the tests marked slow (the built site,
                                # the browser, subprocesses; tests/tiers.py)
    python3 dev.py build   # create .venv if needed, then build the site into site/
    python3 dev.py lock    # maintainers: refresh requirements.lock (see MAINTAINING.md)

.venv is (re)installed from requirements.lock when the lock or pyproject.toml
changed since the last install, or a tool is missing from it. `test --floor` does the
same with .venv-floor: the lowest torch pyproject.toml allows and the `test-floor` group. Extra arguments go
to pytest, `mkdocs build` or `mkdocs serve`. The exit status is the tool's; 130
after Ctrl-C, 143 after SIGTERM, and the tool is stopped with dev.py.
"""

import sys

# pyproject.toml's requires-python, checked first: the rest of this file needs 3.11
# (so no `from __future__` line here, which Python 3.6 could not even parse).
MIN_PYTHON = (3, 11)
if sys.version_info < MIN_PYTHON:
    sys.exit(f"dev.py: Python {'.'.join(map(str, MIN_PYTHON))} or newer is needed, "
             f"this is {'.'.join(map(str, sys.version_info[:3]))} ({sys.executable})")

import ctypes  # noqa: E402
import errno  # noqa: E402
import hashlib  # noqa: E402
import ipaddress  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import NoReturn  # noqa: E402
from urllib.parse import urlsplit  # noqa: E402

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / "python"
STAMP = VENV / ".installed-from"
LOCK = ROOT / "requirements.lock"
TOOLS = ("mkdocs", "pytest", "zizmor")  # commands named as their packages; a stamp needs them all
# Resolved for every platform and every Python from MIN_PYTHON up, torch left out.
LOCK_COMMAND = ("pip", "compile", "--group", "pyproject.toml:dev", "--universal",
                "--python-version", "{}.{}".format(*MIN_PYTHON), "--upgrade",
                "--custom-compile-command", "python3 dev.py lock", "-o", "requirements.lock")


def fail(message: str) -> NoReturn:
    sys.exit(f"dev.py: {message}")


def run(*cmd: str | Path) -> None:
    """Run a tool; stop it if dev.py is interrupted; exit with its status if it fails."""
    print("+", " ".join(str(c) for c in cmd), flush=True)
    proc = subprocess.Popen([str(c) for c in cmd], cwd=ROOT, preexec_fn=_die_with_dev_py)
    try:
        code = proc.wait()
    except BaseException:  # Ctrl-C (the tool had it too) or SIGTERM (it did not)
        stop(proc, grace=3 if sys.exc_info()[0] is KeyboardInterrupt else 0)
        raise
    if code:
        sys.exit(128 - code if code < 0 else code)  # killed by signal N: 128 + N, as a shell says


def _die_with_dev_py() -> None:
    """In the tool's process, on Linux: the kernel ends it if dev.py dies, SIGKILL included."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG


def stop(proc: subprocess.Popen, grace: float) -> None:
    """Give the tool `grace` seconds to end by itself, then terminate it, then kill it."""
    for sig in (signal.SIGINT, signal.SIGTERM):  # a second Ctrl-C must not leave it running
        signal.signal(sig, signal.SIG_IGN)
    for action, timeout in ((None, grace), (proc.terminate, 5), (proc.kill, 5)):
        if action:
            action()
        try:
            proc.wait(timeout)
            return
        except subprocess.TimeoutExpired:
            pass


def digest() -> str:
    return hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + LOCK.read_bytes()).hexdigest()


def missing_tools() -> list[str]:
    return [tool for tool in TOOLS if not ((BIN / tool).exists() or (BIN / f"{tool}.exe").exists())]


def installed() -> bool:
    return STAMP.exists() and STAMP.read_text() == digest() and not missing_tools()


# The lowest torch the project promises (pyproject.toml's `torch>=`) gets an environment of its
# own, with the group that the tests of the teaching code, pages and docstrings import; the
# tests of the site, the browser and the toolchain test .venv's tools and are left out here.
FLOOR_VENV = ROOT / ".venv-floor"
FLOOR_GROUP = "test-floor"
FLOOR_LEFT_OUT = ("tests/building.py", "tests/test_browser.py", "tests/test_code_contrast.py",
                  "tests/test_copy.py", "tests/test_dev.py", "tests/test_gpu_check.py",
                  "tests/test_lint.py", "tests/test_mathml.py", "tests/test_notebook.py",
                  "tests/test_notebook_routes.py", "tests/test_packaging.py", "tests/test_palettes.py",
                  "tests/test_site.py", "tests/test_sitegen.py",
                  "tests/test_toolchain.py", "tests/test_web.py", "tests/test_hostile_review.py",
                  "tests/test_budgets.py",
                  "tests/test_results_files.py::test_the_build_step_shows_the_error_escaped",
                  "tests/test_timing.py::test_the_timing_step_fills_the_appendix_page",
                  "tests/test_timing.py::test_chapter_10_states_the_kernels_speed_from_the_results_files",
                  "tests/test_timing.py::test_the_fast_prefix_mean_appendix_states_its_times_from_the_cpu_files")


def floor_torch() -> str:
    """The version in pyproject.toml's `torch>=VERSION`, which the floor environment installs."""
    import re
    import tomllib
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    found = [m.group(1) for d in deps if (m := re.fullmatch(r"torch\s*>=\s*([0-9][0-9.]*)", d.strip()))]
    if len(found) != 1:
        fail(f"pyproject.toml's dependencies name no single `torch>=VERSION`: got {deps!r}")
    return found[0]


def test_floor(rest: list[str]) -> None:
    """Make .venv-floor (torch == the floor) if needed and run the floor's tests in it."""
    torch = floor_torch()
    floor_bin = FLOOR_VENV / ("Scripts" if os.name == "nt" else "bin")
    py, stamp = floor_bin / "python", FLOOR_VENV / ".installed-from"
    wanted = f"torch=={torch} {digest()}"
    if not (stamp.exists() and stamp.read_text() == wanted and py.exists()):
        # As with .venv, one made beforehand is kept: CI puts a CPU build of torch in it first.
        if not (py.exists() and subprocess.run([str(py), "-m", "pip", "--version"],
                                               capture_output=True).returncode == 0):
            shutil.rmtree(FLOOR_VENV, ignore_errors=True)
            try:
                import venv
                venv.EnvBuilder(with_pip=True).create(FLOOR_VENV)
            except (ImportError, subprocess.CalledProcessError):
                shutil.rmtree(FLOOR_VENV, ignore_errors=True)
                fail("could not create .venv-floor with pip in it: on Debian or Ubuntu, "
                     "`apt-get install python3-venv` first")
        stamp.unlink(missing_ok=True)
        run(py, "-m", "pip", "install", "--quiet", "--upgrade", "pip>=25.1")
        run(py, "-m", "pip", "install", "--quiet", "--constraint", LOCK, f"torch=={torch}",
            "--editable", ".", "--group", FLOOR_GROUP)
        partial = stamp.with_suffix(".partial")
        partial.write_text(wanted)
        partial.replace(stamp)
    ignores = [f"--deselect={path}" if "::" in path else f"--ignore={path}" for path in FLOOR_LEFT_OUT]
    run(py, "-m", "pytest", "-n", "auto", "--dist", "loadscope", *ignores, *rest)


def check_port(args: list[str]) -> None:
    """Refuse at once, in one line, to serve on a port that something already listens on."""
    addr = "127.0.0.1:8000"
    for i, arg in enumerate(args):
        if arg in ("-a", "--dev-addr") and i + 1 < len(args):
            addr = args[i + 1]
        elif arg.startswith("--dev-addr="):
            addr = arg.split("=", 1)[1]
    host, _, port = addr.rpartition(":")
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        fail(f"--dev-addr {addr}: expected HOST:PORT with a port from 1 to 65535, "
             "such as 127.0.0.1:8001")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    except ValueError:
        if host != "localhost":
            fail(f"--dev-addr {addr}: mkdocs serves on an IP address or localhost, not on "
                 f"{host!r}; use 127.0.0.1:{port}, or [::1]:{port} for IPv6")
        family = socket.AF_INET
    with socket.socket(family) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server will
        try:
            s.bind((host, int(port)))
        except OSError as exc:
            if exc.errno not in (errno.EADDRINUSE, errno.EACCES):
                fail(f"cannot serve on {addr}: {exc.strerror or exc} (is it an address of "
                     f"this machine?); pass --dev-addr 127.0.0.1:{port}")
            fail(f"cannot serve on {addr}: {exc.strerror or exc}. Stop what uses it "
                 f"(an earlier `dev.py serve`?) or pass --dev-addr 127.0.0.1:OTHER_PORT")


def check_index() -> None:
    """One line instead of pip's "from versions: none" when the package index is out of reach."""
    if os.environ.get("PIP_NO_INDEX"):
        return

    def ask(*args: str) -> str:
        done = subprocess.run([str(PY), *args], capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else ""

    url = (os.environ.get("PIP_INDEX_URL") or ask("-m", "pip", "config", "get", "global.index-url")
           or ask("-c", "from pip._internal.models.index import PyPI; print(PyPI.simple_url)"))
    parts = urlsplit(url)
    if not parts.hostname:  # a local index, or a pip that does not say
        return
    try:
        socket.create_connection((parts.hostname, parts.port or 443), timeout=10).close()
    except OSError as exc:
        fail(f"cannot reach the package index {parts.hostname} ({exc.strerror or exc}): "
             "check the network connection, or set PIP_INDEX_URL to an index you can reach")


def has_pip() -> bool:
    return subprocess.run([str(PY), "-m", "pip", "--version"], capture_output=True).returncode == 0


def setup() -> None:
    if VENV.exists():  # perhaps the reader's own (uv venv, venv --without-pip): never deleted
        if not PY.exists():
            fail(f"{VENV} exists but has no {PY.relative_to(VENV)}: it is no virtual environment "
                 "dev.py can use; move it away or delete it, then run dev.py again")
        if not has_pip() and (subprocess.run([str(PY), "-m", "ensurepip", "--upgrade"],
                                             capture_output=True).returncode != 0 or not has_pip()):
            fail(f"{VENV} has no pip and `{PY} -m ensurepip` could not add it: install pip into "
                 "it (uv venv --seed makes one with pip), or move .venv away and run dev.py again")
    else:
        try:
            import ensurepip  # noqa: F401  (Debian and Ubuntu ship it in python3-venv)
            import venv
        except ImportError as exc:
            fail(f"this Python cannot create a virtual environment ({exc.name} is missing): "
                 "on Debian or Ubuntu, `apt-get install python3-venv` first")
        try:
            venv.EnvBuilder(with_pip=True).create(VENV)
        except subprocess.CalledProcessError:
            shutil.rmtree(VENV, ignore_errors=True)  # made just now, by dev.py
            fail("could not create .venv with pip in it: on Debian or Ubuntu, "
                 "`apt-get install python3-venv` first")
    if installed():
        return
    check_index()
    STAMP.unlink(missing_ok=True)
    run(PY, "-m", "pip", "install", "--quiet", "--upgrade", "pip>=25.1")  # for --group
    run(PY, "-m", "pip", "install", "--quiet", "--constraint", LOCK, "--editable", ".",
        "--group", "dev")
    if missing_tools():  # installed as far as pip knows, but the command is gone: put it back
        run(PY, "-m", "pip", "install", "--quiet", "--constraint", LOCK, "--force-reinstall",
            "--no-deps", *missing_tools())
    partial = STAMP.with_suffix(".partial")
    partial.write_text(digest())
    partial.replace(STAMP)  # atomic: a stamp is whole or absent, never half written


def exit_on_signals() -> None:
    """SIGTERM, and SIGHUP (the terminal closed), end dev.py through `run`, which stops the tool."""
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda signum, _: sys.exit(128 + signum))


def pytest_args(rest: list[str]) -> list[str]:
    """pytest's arguments for `dev.py test [--fast] ...`.

    One worker per core; the tests of a module or page stay on one worker, in order (a page's
    examples share a namespace) and with their module fixtures. --fast deselects the tests
    marked slow.
    """
    fast = ["-m", "not slow"] if "--fast" in rest else []
    return ["-n", "auto", "--dist", "loadscope", *fast, *[a for a in rest if a != "--fast"]]


def main(argv: list[str]) -> None:
    task, rest = (argv[0], argv[1:]) if argv else ("", [])
    if task not in {"serve", "test", "build", "lock"}:
        sys.exit(__doc__)
    exit_on_signals()
    try:
        if task == "test" and rest[:1] == ["--floor"]:
            test_floor(rest[1:])  # .venv-floor only: .venv is neither needed nor touched
            return
        if task == "serve":
            check_port(rest)
        setup()
        # `-m mkdocs` also puts the repository first on sys.path, so that its hooks import these
        # snippets and bench even where the venv was installed from another checkout.
        if task == "serve":
            os.environ.setdefault("SITE_URL", "http://127.0.0.1:8000/")  # serve at /, not /<repo>/
            # Readers who only serve the site are spared Material's end-of-life notice;
            # `build` and `test` show it to maintainers (MAINTAINING.md has the plan).
            os.environ.setdefault("NO_MKDOCS_2_WARNING", "1")
            run(PY, "-m", "mkdocs", "serve", "--strict", "--dev-addr", "127.0.0.1:8000", *rest)
        elif task == "build":
            run(PY, "-m", "mkdocs", "build", "--strict", *rest)
        elif task == "lock":
            run(BIN / "uv", *LOCK_COMMAND, *rest)
        else:
            run(PY, "-m", "pytest", *pytest_args(rest))
    except KeyboardInterrupt:
        sys.exit(128 + signal.SIGINT)


if __name__ == "__main__":
    main(sys.argv[1:])
