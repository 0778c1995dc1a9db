"""dev.py: one-line refusals before pip runs, exit statuses, and its tools ending with it."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.pages import ROOT
from tests.scripts import load_file
from tests.building import minimal_site

IN_PROJECT_VENV = Path(sys.prefix).resolve() == (ROOT / ".venv").resolve()
needs_project_venv = pytest.mark.skipif(
    not IN_PROJECT_VENV, reason="runs inside the project's .venv only (dev.py would otherwise create one)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_is_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def _dev_py_alone(tmp_path: Path) -> Path:
    """dev.py in a folder of its own, so that a refusal that failed could not touch the project's .venv."""
    for name in ("dev.py", "pyproject.toml", "requirements.lock"):
        shutil.copy2(ROOT / name, tmp_path / name)
    return tmp_path / "dev.py"


def _assert_one_line_refusal(done: subprocess.CompletedProcess, *needles: str) -> None:
    assert done.returncode == 1, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert done.stderr.startswith("dev.py: ") and all(n in done.stderr for n in needles), done.stderr


def _python(code: str, dev_py: Path, *args: str, **kwargs) -> subprocess.CompletedProcess:
    """Run dev.py in this interpreter after `code` has changed what it will see."""
    script = (f"import runpy, sys\n{code}\nsys.argv = {[str(dev_py), *args]!r}\n"
              "runpy.run_path(sys.argv[0], run_name='__main__')")
    return subprocess.run([sys.executable, "-c", script], cwd=dev_py.parent, capture_output=True, text=True,
                          timeout=60, **kwargs)


def test_a_python_older_than_requires_python_is_refused_in_one_line(tmp_path):
    done = _python("sys.version_info = (3, 10, 12, 'final', 0)", _dev_py_alone(tmp_path), "test")
    _assert_one_line_refusal(done, "Python 3.11 or newer is needed, this is 3.10.12")
    assert not (tmp_path / ".venv").exists()


def test_a_python_without_the_venv_module_is_refused_in_one_line(tmp_path):
    done = _python("sys.modules['ensurepip'] = None  # as on Debian without python3-venv",
                   _dev_py_alone(tmp_path), "build")
    _assert_one_line_refusal(done, "ensurepip is missing", "apt-get install python3-venv")


def test_an_unreachable_package_index_is_refused_in_one_line(tmp_path):
    dev_py = _dev_py_alone(tmp_path)
    # A .venv whose python is this one, but that must not install anything: the check comes first.
    python = tmp_path / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(f'#!/bin/sh\ncase "$*" in *install*) exit 99;; esac\nexec {sys.executable} "$@"\n')
    python.chmod(0o755)
    closed = _free_port()
    env = {**os.environ, "PIP_INDEX_URL": f"http://127.0.0.1:{closed}/simple/"}
    env.pop("PIP_NO_INDEX", None)
    done = subprocess.run([sys.executable, str(dev_py), "test"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)
    _assert_one_line_refusal(done, "cannot reach the package index 127.0.0.1", "network")


def test_a_busy_port_is_refused_in_one_line_before_anything_is_built(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run([sys.executable, str(_dev_py_alone(tmp_path)), "serve", "--dev-addr",
                               f"127.0.0.1:{port}"], capture_output=True, text=True, timeout=60)
    _assert_one_line_refusal(done, f"cannot serve on 127.0.0.1:{port}", "--dev-addr")
    assert not (tmp_path / ".venv").exists()


def test_a_stamp_is_trusted_only_with_every_tool_installed(tmp_path, monkeypatch):
    dev = load_file("dev.py", "dev")
    monkeypatch.setattr(dev, "BIN", tmp_path)
    monkeypatch.setattr(dev, "STAMP", tmp_path / "stamp")
    for tool in dev.TOOLS:
        (tmp_path / tool).touch()
    assert not dev.installed(), "no stamp yet"
    dev.STAMP.write_text(dev.digest())
    assert dev.installed()
    (tmp_path / "mkdocs").unlink()
    assert not dev.installed(), "mkdocs is gone: reinstall"
    (tmp_path / "mkdocs").touch()
    dev.STAMP.write_text("an older lock")
    assert not dev.installed(), "the lock or pyproject.toml changed: reinstall"


@needs_project_venv
def test_a_tool_s_exit_status_is_dev_py_s():
    done = subprocess.run([sys.executable, str(ROOT / "dev.py"), "build", "--no-such-option"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "No such option" in done.stderr, (done.returncode, done.stderr[-2000:])


@needs_project_venv
@pytest.mark.parametrize(("how", "status"), [("SIGTERM to dev.py", 143), ("Ctrl-C", 130)])
def test_dev_py_serve_answers_at_the_root_and_its_server_ends_with_it(tmp_path, how, status):
    """README's first command serves at / (not /<repo>/); stopping dev.py stops `mkdocs serve`, freeing the port."""
    import psutil

    site = minimal_site(tmp_path)  # the content is not what this tests: the small site serves in seconds
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "SITE_URL"}
    with open(tmp_path / "serve.log", "w") as log:
        server = subprocess.Popen(
            [sys.executable, str(ROOT / "dev.py"), "serve", "-f", str(site / "mkdocs.yml"),
             "--dev-addr", f"127.0.0.1:{port}"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            # SIGINT at its default, as from a terminal, even where this suite runs as a shell's
            # background job (`cmd &`, nohup), whose children inherit SIGINT ignored.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                home = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5)
                break
            except OSError:
                assert server.poll() is None, (tmp_path / "serve.log").read_text()
                assert time.monotonic() < deadline, "dev.py serve did not answer in 120 s"
                time.sleep(0.3)
        assert home.status == 200 and home.url == f"http://127.0.0.1:{port}/"
        assert "<title>The attention trick" in home.read().decode()
        for page in ("01-by-hand/", "02-matrix-trick/", "03-softmax/"):
            assert urllib.request.urlopen(f"http://127.0.0.1:{port}/{page}", timeout=5).status == 200

        children = psutil.Process(server.pid).children(recursive=True)
        assert children, "dev.py serve runs mkdocs in a child process"
        if how == "Ctrl-C":  # the terminal signals the whole foreground process group
            os.killpg(server.pid, signal.SIGINT)
        else:  # `kill PID`: dev.py alone
            server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == status
        _, alive = psutil.wait_procs(children, timeout=5)
        assert not alive, f"left running: {alive}"
        assert _port_is_free(port)
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def test_the_floor_leaves_out_only_tests_that_exist_and_ci_runs_it_after_the_suite():
    dev = load_file("dev.py", "dev")
    for item in dev.FLOOR_LEFT_OUT:
        path, _, function = item.partition("::")
        assert (ROOT / path).is_file(), f"dev.py leaves out {path}, which is gone"
        if function:
            assert f"\ndef {function}(" in (ROOT / path).read_text(encoding="utf-8"), f"{item} is gone"
    commands = [line.strip() for line in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()]
    assert commands.index("python3 dev.py test --floor") > commands.index("python3 dev.py test")


def test_the_floor_is_read_from_pyproject_and_a_missing_one_is_refused_in_one_line(tmp_path):
    dev_py = _dev_py_alone(tmp_path)
    pyproject = tmp_path / "pyproject.toml"
    assert re.search(r'^dependencies = \["torch>=[\d.]+"\]$', pyproject.read_text(), re.M)
    pyproject.write_text(pyproject.read_text().replace('"torch>=', '"torch~='))
    done = _python("", dev_py, "test", "--floor")
    _assert_one_line_refusal(done, "torch>=VERSION")
    assert not (tmp_path / ".venv-floor").exists() and not (tmp_path / ".venv").exists()


# -- a .venv that dev.py did not make, --dev-addr, and the tool ending with dev.py ------------------


def _foreign_venv(tmp_path: Path, python: str) -> Path:
    """A .venv as a reader might have made it, with something of theirs in it."""
    (tmp_path / ".venv" / "bin").mkdir(parents=True, exist_ok=True)
    if python:
        (tmp_path / ".venv" / "bin" / "python").write_text(python)
        (tmp_path / ".venv" / "bin" / "python").chmod(0o755)
    (tmp_path / ".venv" / "torch-and-all").write_text("the reader's packages")
    return _dev_py_alone(tmp_path)


def test_a_venv_without_python_is_refused_and_kept(tmp_path):
    dev_py = _foreign_venv(tmp_path, "")
    done = subprocess.run([sys.executable, str(dev_py), "build"], capture_output=True, text=True, timeout=60)
    _assert_one_line_refusal(done, ".venv exists but has no bin/python", "move it away or delete it")
    assert (tmp_path / ".venv" / "torch-and-all").exists()


def test_a_venv_whose_pip_cannot_be_added_is_refused_and_kept(tmp_path):
    dev_py = _foreign_venv(tmp_path, "#!/bin/sh\nexit 1\n")  # no pip, and ensurepip fails
    done = subprocess.run([sys.executable, str(dev_py), "build"], capture_output=True, text=True, timeout=60)
    _assert_one_line_refusal(done, ".venv has no pip and", "-m ensurepip` could not add it")
    assert (tmp_path / ".venv" / "torch-and-all").exists()


@pytest.mark.slow
def test_a_venv_made_without_pip_gets_pip_and_keeps_its_contents(tmp_path):
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / ".venv")], check=True, timeout=120)
    (tmp_path / ".venv" / "torch-and-all").write_text("the reader's packages")
    dev_py = _dev_py_alone(tmp_path)
    # An index that cannot be reached stops dev.py right after pip is in place, before any install.
    done = subprocess.run([sys.executable, str(dev_py), "build"], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PIP_INDEX_URL": "http://127.0.0.1:9/simple", "PIP_NO_INDEX": ""})
    _assert_one_line_refusal(done, "cannot reach the package index 127.0.0.1")
    assert (tmp_path / ".venv" / "torch-and-all").exists()
    assert subprocess.run([str(tmp_path / ".venv" / "bin" / "python"), "-m", "pip", "--version"],
                          capture_output=True).returncode == 0


@pytest.mark.parametrize("addr, needle", [
    ("127.0.0.1:http", "--dev-addr 127.0.0.1:http: expected HOST:PORT with a port from 1 to 65535"),
    ("127.0.0.1:70000", "--dev-addr 127.0.0.1:70000: expected HOST:PORT with a port from 1 to 65535"),
    ("127.0.0.1:0", "a port from 1 to 65535"),
    ("127.0.0.1", "--dev-addr 127.0.0.1: expected HOST:PORT"),
    ("no-such-host.invalid:8000", "mkdocs serves on an IP address or localhost, not on 'no-such-host.invalid'"),
    ("192.0.2.1:8000", "cannot serve on 192.0.2.1:8000: Cannot assign requested address (is it an address of "
                       "this machine?)"),
])
def test_a_bad_dev_addr_is_refused_in_one_line(addr, needle, tmp_path):
    done = subprocess.run([sys.executable, str(_dev_py_alone(tmp_path)), "serve", "--dev-addr", addr],
                          capture_output=True, text=True, timeout=60)
    _assert_one_line_refusal(done, needle)
    assert not (tmp_path / ".venv").exists()


def test_an_ipv6_dev_addr_is_checked_as_ipv6(tmp_path):
    dev = load_file("dev.py", "dev")
    try:
        busy = socket.socket(socket.AF_INET6)
        busy.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback here")
    with busy:
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(SystemExit, match=rf"cannot serve on \[::1\]:{port}: Address already in use\. Stop what"):
            dev.check_port(["--dev-addr", f"[::1]:{port}"])
    dev.check_port(["--dev-addr", f"[::1]:{port}"])  # free again: accepted


CHILD = """
import runpy, sys
dev = runpy.run_path({dev!r}, run_name="dev")
dev["exit_on_signals"]()
dev["run"](sys.executable, "-c", "import time; print('ready', flush=True); time.sleep(120)")
"""


@pytest.mark.parametrize("sig", ["SIGHUP", "SIGTERM", "SIGKILL"])
def test_the_tool_ends_with_dev_py_whatever_signal_ends_it(tmp_path, sig):
    proc = subprocess.Popen([sys.executable, "-c", CHILD.format(dev=str(ROOT / "dev.py"))], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    while proc.stdout.readline().strip() != "ready":  # after dev.py's "+ command" line
        assert proc.poll() is None, proc.stderr.read()
    (tool,) = map(int, subprocess.run(["ps", "-o", "pid=", "--ppid", str(proc.pid)], capture_output=True,
                                      text=True).stdout.split())
    os.kill(proc.pid, getattr(signal, sig))
    proc.wait(timeout=30)
    deadline = time.monotonic() + 15
    while Path(f"/proc/{tool}").exists() and "zombie" not in Path(f"/proc/{tool}/status").read_text().lower():
        if time.monotonic() > deadline:
            os.kill(tool, signal.SIGKILL)
            pytest.fail(f"the tool outlived dev.py after {sig}")
        time.sleep(0.1)
    if sig != "SIGKILL":
        assert proc.returncode == 128 + getattr(signal, sig), proc.stderr.read()


def test_test_fast_deselects_the_slow_tests_and_passes_the_rest_on():
    dev = load_file("dev.py")
    assert dev.pytest_args([]) == ["-n", "auto", "--dist", "loadscope"]
    assert dev.pytest_args(["--fast", "-x", "tests/test_linear.py"]) == [
        "-n", "auto", "--dist", "loadscope", "-m", "not slow", "-x", "tests/test_linear.py"]
    assert "--fast" in dev.__doc__
