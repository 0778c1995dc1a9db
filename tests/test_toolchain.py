"""The toolchain: the lock matches pyproject.toml, the workflows pass their linter, the end-of-life date is current."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.pages import ROOT
from tests.scripts import load_file

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
LOCK = (ROOT / "requirements.lock").read_text(encoding="utf-8")
PINS = re.findall(r"^([A-Za-z0-9._-]+)==([^\s;]+)", LOCK, re.M)


def _dev_py():
    return load_file("dev.py", "dev")


def _name(requirement: str) -> str:
    return re.sub(r"[-_.]+", "-", re.match(r"[A-Za-z0-9._-]+", requirement).group(0)).lower()


def test_the_lock_pins_every_tool_of_every_group_and_no_index():
    pinned = {_name(name) for name, _ in PINS}
    groups = PYPROJECT["dependency-groups"]
    wanted = {_name(r) for g in groups.values() for r in g if isinstance(r, str)}
    assert wanted <= pinned, f"not in requirements.lock: {sorted(wanted - pinned)}"
    assert "torch" not in pinned, "torch stays a range (pyproject.toml), chosen by pip for the machine"
    assert not re.search(r"^\s*-", LOCK, re.M), "options (an index, find-links) belong to the user's pip"
    assert "://" not in LOCK


def test_requires_python_dev_py_and_the_lock_agree():
    dev = _dev_py()
    minimum = ".".join(map(str, dev.MIN_PYTHON))
    assert PYPROJECT["project"]["requires-python"] == f">={minimum}"
    assert dev.LOCK_COMMAND[dev.LOCK_COMMAND.index("--python-version") + 1] == minimum
    # Dev tools are groups, not extras; the one extra is what the package's figures need.
    assert PYPROJECT["project"]["optional-dependencies"] == {"figures": ["matplotlib>=3.8"]}


def test_the_workflows_pass_zizmor():
    done = subprocess.run([str(Path(sys.executable).parent / "zizmor"), "--offline", "--no-progress",
                           "--config", ".github/zizmor.yml", ".github/workflows"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "No findings to report" in done.stdout + done.stderr


def test_maintaining_md_has_material_s_own_end_of_life_date():
    """The installed Material announces its end of life; MAINTAINING.md must give the same date."""
    spec = importlib.util.find_spec("material.templates")
    notice = Path(spec.origin).read_text(encoding="utf-8")
    announced = re.search(r"reaches end of life on ([A-Z][a-z]+ \d{1,2}, \d{4})", notice)
    if announced is None:
        pytest.fail("the installed Material announces no end-of-life date: check and update MAINTAINING.md")
    assert announced.group(1) in (ROOT / "MAINTAINING.md").read_text(encoding="utf-8")


# The lowest torch, the dependency groups and the workflows.

WORKFLOWS = ROOT / ".github" / "workflows"


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def _yaml(path: Path) -> dict:
    import yaml

    return yaml.safe_load(path.read_text(encoding="utf-8"))


def test_the_lowest_torch_is_the_same_in_pyproject_readme_maintaining_and_the_workflow():
    floor = _dev_py().floor_torch()  # pyproject.toml's `torch>=`
    matrix = _yaml(WORKFLOWS / "test.yml")["jobs"]["test"]["strategy"]["matrix"]["include"]
    pinned = [entry["torch"] for entry in matrix if entry["torch"]]
    assert pinned and min(pinned, key=_version) == floor, (pinned, floor)
    assert any(not entry["torch"] for entry in matrix), "a job with the newest torch"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert re.findall(r"torch >= ?([\d.]+)", readme) == [floor], "README promises the floor, once"
    maintaining = (ROOT / "MAINTAINING.md").read_text(encoding="utf-8")
    assert set(re.findall(r"`torch>=([\d.]+)`", maintaining)) == {floor}


def _third_party_imports(path: Path, left_out: set[str] = frozenset()) -> set[str]:
    """Top-level names a Python file imports (also inside functions, and by pytest.importorskip),
    leaving out the standard library, the repository's own packages and the functions named in `left_out`."""
    import ast

    tree = ast.parse(path.read_text(encoding="utf-8"))
    tree.body = [n for n in tree.body if not (isinstance(n, ast.FunctionDef) and n.name in left_out)]
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.add(node.module)
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "importorskip"
              and node.args and isinstance(node.args[0], ast.Constant)):
            names.add(node.args[0].value)
    own = {"tests", "snippets", "bench", "hooks", "sitegen", "__future__"}
    return {n.split(".")[0] for n in names} - own - set(sys.stdlib_module_names)


def _page_imports() -> set[str]:
    pages = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "docs").rglob("*.md"))
    text = "\n".join(re.findall(r"^ *```[^\n]*\n(.*?)^ *```", pages, re.M | re.S))  # the code blocks
    found = set(re.findall(r"^(?:>>> )?(?:import|from) ([A-Za-z_]\w*)", text, re.M))
    return found - {"snippets", "bench"} - set(sys.stdlib_module_names)


def _group(name: str) -> set[str]:
    """The distributions a dependency group names, with the groups it includes."""
    found = set()
    for item in PYPROJECT["dependency-groups"][name]:
        found |= _group(item["include-group"]) if isinstance(item, dict) else {_name(item)}
    return found


# Imported only where it is available, and declared by no group on purpose.
OPTIONAL = {"triton": "bench/gpu.py's kernels: a CUDA machine's torch brings it"}


def test_every_dependency_group_declares_what_its_tests_import():
    """The floor's tests import only torch and `test-floor`; all the tests only `test` and `docs` besides."""
    from importlib.metadata import packages_distributions

    distributions = packages_distributions()

    def undeclared(modules: set[str], declared: set[str]) -> dict[str, list[str]]:
        return {m: distributions.get(m, ["?"]) for m in sorted(modules - set(OPTIONAL))
                if not {_name(d) for d in distributions.get(m, [])} & declared}

    left_out = _dev_py().FLOOR_LEFT_OUT
    whole = {p for p in left_out if "::" not in p}
    floor_imports, all_imports = _page_imports(), set()
    python_files = [*sorted((ROOT / "tests").glob("*.py")), ROOT / "conftest.py",
                    *sorted((ROOT / "snippets").rglob("*.py")), *sorted((ROOT / "bench").rglob("*.py"))]
    for path in python_files:
        rel = path.relative_to(ROOT).as_posix()
        all_imports |= _third_party_imports(path)
        if rel not in whole:
            functions = {p.split("::")[1] for p in left_out if p.startswith(f"{rel}::")}
            floor_imports |= _third_party_imports(path, functions)
    package = {_name(r) for r in PYPROJECT["project"]["dependencies"]}  # no extra: dev.py installs none
    assert not undeclared(floor_imports, _group("test-floor") | package), "declare in test-floor"
    assert not undeclared(all_imports, _group("test") | _group("docs") | package), "declare in test"


def test_every_job_has_a_timeout_and_every_container_image_a_digest_or_a_stated_reason():
    for path in sorted(WORKFLOWS.glob("*.yml")):
        for name, job in _yaml(path)["jobs"].items():
            if "uses" in job:  # a reusable workflow: its own jobs have their timeouts
                continue
            assert isinstance(job.get("timeout-minutes"), int), f"{path.name}: job {name} has no timeout-minutes"
            container = job.get("container")
            images = [container] if container else []
            if container and "matrix." in container:
                images = [entry["image"] for entry in job["strategy"]["matrix"]["include"]]
            # An image without a digest must be one that .github/zizmor.yml excuses, with its reason.
            excused = path.name in _yaml(ROOT / ".github" / "zizmor.yml")["rules"].get(
                "unpinned-images", {}).get("ignore", [])
            for image in images:
                assert excused or re.fullmatch(r"[\w./:-]+@sha256:[0-9a-f]{64}", image), f"{path.name}: {image} has no digest"


def _steps(job: dict) -> list[dict]:
    return job.get("steps", [])


def test_the_deploy_ships_the_site_the_tests_ran_on_and_publishes_from_main_only():
    test = _yaml(WORKFLOWS / "test.yml")["jobs"]["test"]
    uses = [step.get("uses", "") + step.get("run", "") for step in _steps(test)]
    ci = uses.index("bash .ci/run")
    upload = next(i for i, u in enumerate(uses) if u.startswith("actions/upload-pages-artifact@"))
    assert ci < upload, "the artifact is the site that .ci/run built after testing"
    assert "inputs.pages" in _steps(test)[upload]["if"]
    for name, job in _yaml(WORKFLOWS / "pages.yml")["jobs"].items():
        if "uses" in job:
            assert job["uses"] == "./.github/workflows/test.yml" and job["with"] == {"pages": True}
            continue
        assert job["if"] == "github.ref == 'refs/heads/main'", f"pages.yml: {name} runs on other branches"
        text = str(job)
        assert "checkout" not in text and "dev.py" not in text and "setup-python" not in text, (
            f"pages.yml: {name} builds a second site")


def test_the_tests_run_weekly_and_cache_pip_on_the_lock_but_not_for_the_deploy():
    workflow = _yaml(WORKFLOWS / "test.yml")
    assert workflow[True]["schedule"], "a weekly run against the newest torch"  # YAML 1.1 reads `on` as True
    caches = [s for s in _steps(workflow["jobs"]["test"]) if s.get("uses", "").startswith("actions/cache@")]
    assert len(caches) == 1 and "hashFiles('requirements.lock'" in caches[0]["with"]["key"]
    assert caches[0]["if"] == "${{ !inputs.pages }}"
    for path in WORKFLOWS.glob("*.yml"):
        if path.name != "test.yml":
            assert "actions/cache" not in path.read_text(encoding="utf-8"), path.name


def test_dependabot_keeps_the_actions_up_to_date():
    updates = _yaml(ROOT / ".github" / "dependabot.yml")["updates"]
    assert {"package-ecosystem": "github-actions", "directory": "/"}.items() <= updates[0].items()
