"""What a results file did not measure, and why: the "Not measured" list of each section.

Every point whose status is not "ok", every peak memory left out, and every method of the
format that the file holds no point of (a file older than the method, or a run that left it
out), as Markdown list items. Standard library only.
"""

from __future__ import annotations

from bench.escape import esc
from bench.schema import METHODS, Point, Results, base_name


def not_measured(res: Results, e=esc) -> list[str]:
    """Markdown list items: every point that was not measured, and every peak memory that was
    not, with why."""

    def where(rows: list[Point]) -> str:
        Ts = sorted({r.T for r in rows})
        r = rows[0]
        shape = (
            f" at the bandwidth point (B, T, C) = ({r.B}, {r.T}, {r.C})"
            if r in res.bandwidth
            else ""
        )
        return f"{rows[0].dtype}, T = {', '.join(map(str, Ts))}{shape}"

    groups: dict[tuple, list[Point]] = {}
    for r in res.results + res.bandwidth:
        if r.status != "ok":
            groups.setdefault((r.method, r.dtype, r.reason, r in res.bandwidth), []).append(r)
    notes: dict[tuple, list[Point]] = {}
    for r in res.results:
        if r.memory_note:
            notes.setdefault((r.method, r.dtype, r.memory_note), []).append(r)
    held = {base_name(r.method) for r in res.results + res.bandwidth}
    absent = [
        f"- `{m}`: not measured: this file holds no point of it (the file is older than the "
        "method, or its run left the method out)"
        for m in METHODS
        if m not in held
    ]
    return (
        [
            f"- `{k[0]}`, {where(rows)}: {e(k[2])}"
            for k, rows in sorted(groups.items(), key=lambda i: i[0][:3])
        ]
        + [
            f"- `{k[0]}`, {where(rows)}, peak memory: {e(k[2])}"
            for k, rows in sorted(notes.items())
        ]
        + absent
    )
