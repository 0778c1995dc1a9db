"""Hostile results files are refused in one line naming the file and the JSON path, never
crash or stall the build (bench/safe_read.py, bench/reader.py, bench/validate.py, bench/report.py, sitegen/timing.py)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from bench import report, safe_read, schema, validate
from tests.pages import DOCS

(VALID,) = (DOCS / "appendix" / "results").glob("cpu-*.json")  # the committed CPU file


@pytest.fixture
def doc() -> dict:
    return json.loads(VALID.read_text(encoding="utf-8"))


def assert_refused(tmp_path: Path, text: str, message: str, name: str = "cpu-bad.json") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(schema.ResultsError) as raised:
        report.render(tmp_path)
    got = str(raised.value)
    assert got.startswith(f"{safe_read.shown(path)}: "), got
    assert message in got and "\n" not in got, got
    return got


def _with(doc: dict, path: str, value) -> str:
    *parents, last = path.split(".")
    target = doc
    for p in parents:
        target = target[int(p)] if isinstance(target, list) else target[p]
    target[int(last) if isinstance(target, list) else last] = value
    return json.dumps(doc)


def test_the_base_file_is_accepted(tmp_path, doc):
    (tmp_path / "cpu-ok.json").write_text(json.dumps(doc))
    assert report.render(tmp_path).markdown["cpu"]


def test_a_symlink_to_dev_zero_is_refused_at_once(tmp_path):
    (tmp_path / "cpu-zero.json").symlink_to("/dev/zero")
    start = time.monotonic()
    with pytest.raises(schema.ResultsError, match=r"cpu-zero\.json: \$: not a regular file"):
        report.render(tmp_path)
    assert time.monotonic() - start < 5


def test_a_fifo_is_refused_without_waiting(tmp_path):
    os.mkfifo(tmp_path / "cpu-fifo.json")
    start = time.monotonic()
    with pytest.raises(schema.ResultsError, match=r"cpu-fifo\.json: \$: not a regular file"):
        report.render(tmp_path)
    assert time.monotonic() - start < 5


def test_a_file_over_the_size_limit_is_refused_unread(tmp_path):
    big = tmp_path / "cpu-big.json"
    with big.open("wb") as f:
        f.truncate(200 * 2**20)  # 200 MB, sparse
    start = time.monotonic()
    with pytest.raises(schema.ResultsError, match=rf"cpu-big\.json: \$: {200 * 2**20} bytes, more than {safe_read.MAX_BYTES}"):
        report.render(tmp_path)
    assert time.monotonic() - start < 5


def test_deep_nesting_is_refused_not_a_recursion_error(tmp_path):
    assert_refused(tmp_path, '{"env": ' + "[" * 1000 + "]" * 1000 + "}", f"$: nested deeper than {safe_read.MAX_DEPTH} levels")
    assert_refused(tmp_path, '{"a": "' + "[" * 1000 + '"}', "$.schema: expected")  # brackets in a string are text


@pytest.mark.parametrize("path, value, message", [
    ("results.0.ms", 1e303, "$.results[0].ms: expected a finite number > 0 (from 1e-12 to 1e+12), got 1e+303"),
    ("results.0.ms", 1e-300, "$.results[0].ms: expected a finite number > 0"),
    ("results.0.samples_ms.0", 1e200, "$.results[0].samples_ms[0]: expected a finite number > 0"),
    ("wall_s", 10**400, "$.wall_s: expected a finite number > 0 (from 1e-12 to 1e+12), got an integer of 401 digits"),
    ("env.loadavg_start.0", 1e300, "$.env.loadavg_start[0]: expected a finite number >= 0"),
])
def test_numbers_out_of_range_are_refused(tmp_path, doc, path, value, message):
    assert_refused(tmp_path, _with(doc, path, value), message)


@pytest.mark.parametrize("path", ["results.0.T", "results.0.bytes", "results.0.flops", "results.0.peak_bytes",
                                  "config.B", "config.repeats", "env.threads", "env.memory_resolution_bytes"])
def test_huge_integers_are_refused_not_an_overflow(tmp_path, doc, path):
    pretty = path.replace(".0.", "[0].")
    assert_refused(tmp_path, _with(doc, path, 10**40), f"$.{pretty}: expected an integer < {2**53}, got an integer of 41 digits")


def test_a_seed_outside_torchs_range_is_refused(tmp_path, doc):
    assert_refused(tmp_path, _with(doc, "config.seed", 2**64), f"$.config.seed: expected an integer < {2**64}")


FORMAT_CHARACTERS = ["\u061c", "\u2060", "\u2061", "\u2062", "\u2063", "\u2064", "\u00ad", "\U000e0001",
                     "\U000e0041", "\u180e", "\ufeff", "\u200b", "\u202e", "\u2066", "\ufff9"]


@pytest.mark.parametrize("char", FORMAT_CHARACTERS, ids=[f"U+{ord(c):04X}" for c in FORMAT_CHARACTERS])
def test_format_characters_are_refused(tmp_path, doc, char):
    assert_refused(tmp_path, _with(doc, "env.device_name", f"AMD{char}EPYC"), "$.env.device_name: expected one line")


def test_a_lone_surrogate_is_refused_not_a_matplotlib_crash(tmp_path, doc):
    text = _with(doc, "env.device_name", "AMD").replace('"device_name": "AMD"', '"device_name": "AMD\\ud800"')
    assert_refused(tmp_path, text, "$.env.device_name: expected one line")


def test_the_same_point_twice_is_refused(tmp_path, doc):
    twice = dict(doc["results"][0], ms=doc["results"][0].get("ms") or 1.0)
    doc["results"].append(twice)
    assert_refused(tmp_path, json.dumps(doc), f"$.results[{len(doc['results']) - 1}]: the same as $.results[0]")


@pytest.mark.parametrize("key", ["Ts", "dtypes", "methods"])
def test_a_config_value_listed_twice_is_refused(tmp_path, doc, key):
    doc["config"][key].append(doc["config"][key][0])
    n = len(doc["config"][key]) - 1
    assert_refused(tmp_path, json.dumps(doc), f"$.config.{key}[{n}]: the same as $.config.{key}[0]")


def test_too_many_sizes_or_samples_are_refused(tmp_path, doc):
    assert_refused(tmp_path, _with(json.loads(json.dumps(doc)), "config.Ts", list(range(1, 20_001))),
             f"$.config.Ts: expected at most {validate.MAX_TS} items, got 20000")
    assert_refused(tmp_path, _with(doc, "results.0.samples_ms", [1.0] * (validate.MAX_SAMPLES + 1)),
             f"$.results[0].samples_ms: expected at most {validate.MAX_SAMPLES} items")


def test_a_file_name_with_an_escape_is_shown_escaped(tmp_path, doc):
    name = "cpu-\x1b[31mred.json"
    (tmp_path / name).write_text(json.dumps(doc))
    with pytest.raises(schema.ResultsError) as raised:
        report.render(tmp_path)
    assert "\x1b" not in str(raised.value) and "cpu-\\x1b[31mred.json" in str(raised.value)
    with pytest.raises(schema.ResultsError) as raised:
        validate.load(tmp_path / "\u202eevil\x07.json")
    assert "\\u202eevil\\x07.json: cannot be read" in str(raised.value)


def test_the_build_step_shows_the_error_escaped(tmp_path, doc, monkeypatch):
    from sitegen import BuildError
    from tests.scripts import load_file
    timing = load_file("sitegen/timing.py")
    (tmp_path / "appendix" / "results").mkdir(parents=True)
    (tmp_path / "appendix" / "results" / "cpu-\x1bx.json").write_text("{")
    with pytest.raises(BuildError) as raised:
        timing.generate(tmp_path)
    assert "\x1b" not in str(raised.value) and "cpu-\\x1bx.json" in str(raised.value)


@pytest.mark.slow
def test_the_largest_accepted_file_renders_in_time(tmp_path, doc):
    """Every size up to MAX_TS, both dtypes, every method of the file, samples filling the size limit."""
    point = next(r for r in doc["results"] if r["status"] == "ok")
    Ts = [16 * (i + 1) for i in range(validate.MAX_TS)]
    methods = doc["config"]["methods"]
    n_points = len(Ts) * 2 * len(methods)
    per_point = (safe_read.MAX_BYTES - 600 * n_points) // n_points // len("1.2345678, ")
    samples = [1.2345678] * min(validate.MAX_SAMPLES, per_point)
    doc["config"] |= {"Ts": Ts, "dtypes": ["float32", "bfloat16"]}
    doc["results"] = [dict(point, method=m, dtype=d, T=T, samples_ms=samples, ms=1.2345678)
                      for d in ("float32", "bfloat16") for T in Ts for m in methods]
    text = json.dumps(doc)
    assert len(text.encode()) <= safe_read.MAX_BYTES
    (tmp_path / "cpu-largest.json").write_text(text)
    start = time.monotonic()
    rendered = report.render(tmp_path)
    took = time.monotonic() - start
    assert rendered.markdown["cpu"] and took < 120, f"{took:.0f} s"


def test_the_busy_bandwidth_points_are_checked_like_the_quiet_ones(tmp_path, doc):
    """Listed once each, inside the run's config, and only with the number of busy processes."""
    busy = doc["bandwidth_busy"]
    assert busy and doc["env"]["busy_processes"]
    twice = json.loads(json.dumps(doc))
    twice["bandwidth_busy"].append(dict(busy[0]))
    n = len(twice["bandwidth_busy"]) - 1
    assert_refused(tmp_path, json.dumps(twice), f"$.bandwidth_busy[{n}]: the same as $.bandwidth_busy[0]")
    outside = json.loads(json.dumps(doc))
    outside["config"]["methods"].remove(busy[0]["method"])
    outside["fingerprints"].pop(busy[0]["method"], None)
    outside["results"] = [r for r in outside["results"] if r["method"] != busy[0]["method"]]
    outside["bandwidth"] = [r for r in outside["bandwidth"] if r["method"] != busy[0]["method"]]
    assert_refused(tmp_path, json.dumps(outside), "$.bandwidth_busy[0]: (")
    assert_refused(tmp_path, _with(doc, "env.busy_processes", None),
                   "$.env.busy_processes: expected the number of busy processes")


def test_a_hidden_file_is_left_out_of_every_sentence_made_from_the_files(tmp_path, doc):
    """The appendix's tables, chapter 10's kernel sentence and the fast prefix mean's paragraph
    read the same files: a hidden one (any name) is none of them, and crashes none."""
    from tests.scripts import load_file

    timing = load_file("sitegen/timing.py")
    (tmp_path / ".\u202eNOSJ.x.json").write_text(json.dumps(doc), encoding="utf-8")
    assert timing.kernel_sentence(tmp_path) == timing.UNMEASURED
    assert timing.fast_sentence(tmp_path) == timing.NO_CPU_FILE
    (tmp_path / "cpu-ok.json").write_text(json.dumps(doc), encoding="utf-8")
    assert "\u202e" not in timing.fast_sentence(tmp_path) and "cpu&#45;ok" in timing.fast_sentence(tmp_path)
