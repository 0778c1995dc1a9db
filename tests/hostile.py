"""A results file whose every string that reaches the timing page is hostile (markup, links,
includes, TeX): for the tests of the report (test_timing) and of the page built from it (test_site)."""

from __future__ import annotations

HOSTILE = '<img src=x onerror="alert(1)"> [link](javascript:alert(1)) <iframe src=//e.x></iframe> ' \
          '<meta http-equiv="refresh" content="0;url=//e.x"> `code` | cell {: onclick=alert(1)} $x$ --8<-- "/etc/passwd"'


def hostile(doc: dict) -> dict:
    """Every string of a results file that reaches the page, made hostile."""
    doc["env"] |= {k: HOSTILE for k in ("device_name", "cpu_model", "torch", "cuda", "python", "date", "command",
                                        "memory_method", "platform")}
    for r in doc["results"] + doc["bandwidth"]:
        if r["status"] != "ok":
            r["reason"] = HOSTILE
        elif r["peak_bytes"] is None:
            r["memory_note"] = HOSTILE
    doc["results"][0] |= {"status": "error", "reason": HOSTILE, "ms": None, "samples_ms": [],
                          "calls_per_sample": None, "peak_bytes": None}
    return doc
