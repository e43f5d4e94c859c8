"""The HTML report: one self-contained page per run (no CDN, no gnuplot, one tiny script).

The verdict and its explanation come first, then the timeline of each invalid key, the keys,
latency and throughput with fault windows shaded, quantiles, counts and the fault events.
Everything shown from the history goes through Jinja's autoescaping, so a value that holds
HTML is shown as text, never run. `render_run` re-renders a stored run from its files alone.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import jinja2

from kvctl.history import History, thaw
from kvctl.nemesis.power import coverage_line
from kvctl.report import availability, plots, stats, timeline
from kvctl.store import HISTORY, RunDir

TIMELINES = 3  # invalid keys drawn as timelines; the rest are in the table
EXPLAINED = 3  # explanations in the verdict box; every one is in the keys' table
KEY_ROWS = 200

_env = jinja2.Environment(
    loader=jinja2.PackageLoader("kvctl.report", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)

VERDICTS = {
    True: ("valid", "VALID", "Every key's history is linearizable."),
    False: ("invalid", "INVALID", "Some key's history is not linearizable."),
    "unknown": ("unknown", "UNKNOWN", "The checker could not decide every key."),
}


def verdict(valid: Any) -> dict[str, str]:
    css, word, line = VERDICTS.get(valid, VERDICTS["unknown"])
    return {"css": css, "word": word, "line": line}


def page(template: str, **context: Any) -> str:
    """Render one of the package's templates (autoescaped)."""
    return _env.get_template(template).render(**context)


def render(test: dict[str, Any], results: dict[str, Any], history: History,
           raw: list[dict[str, Any]], node_logs: list[str], stamp: str = "",
           has_run_log: bool = False) -> str:
    """The page for one run; `raw` are the history's events as read, with the fields kvctl
    adds beside the format's (a client's error, a process's node)."""
    extra = timeline.Extra(
        errors={e["index"]: str(e["error"]) for e in raw if e.get("error") and "index" in e},
        homes={str(e["process"]): str(e["node"]) for e in raw if "node" in e},
    )
    points = stats.points(history)
    windows = stats.windows(history)
    seconds = stats.span(history)
    keys = results.get("keys") or []
    rows = [_key_row(k) for k in keys]
    bad = [r for r in rows if r["css"] != "valid"]
    bad.sort(key=lambda r: r["css"] != "invalid")
    timelines = [
        timeline.build(history, k["key"], k.get("order") or [], k.get("blocked"), windows, extra)
        for k in keys if k.get("valid") is False
    ][:TIMELINES]
    zero = stats.origin(history)
    notes = [*results.get("notes", []), *(f"heal: {e}" for e in results.get("heal_errors", []))]
    if results.get("unread_keys"):
        notes.append(f"keys without a final read: {', '.join(results['unread_keys'])}")
    if results.get("power"):
        notes.append(coverage_line(results["power"]))
    return page(
        "index.html",
        test=_test_defaults(test),
        results=results,
        stamp=stamp,
        verdict=verdict(results.get("valid")),
        explanations=_explanations(results),
        counts=stats.counts(history),
        latency={f: q for f, q in stats.latency_table(points).items() if q},
        quantile_names=["p50", "p95", "p99", "max"],
        timelines=timelines,
        availability=availability.shown(results.get("availability")),
        availability_columns=availability.COLUMNS,
        liveness_bound=availability.LIVENESS_BOUND,
        key_rows=bad[:KEY_ROWS],
        valid_keys=[r for r in rows if r["css"] == "valid"],
        key_summary=_key_summary(rows, results),
        plots=[plots.latency(points, windows, seconds), plots.throughput(points, windows, seconds)],
        colors=plots.COLORS,
        fault_colors=plots.FAULT_COLORS,
        fault_legend=sorted({w.fault for w in windows}),
        fault_events=[
            {"time": f"{((e.time or zero) - zero) / 1e9:.2f} s", "f": e.f,
             "summary": _summary(e.value)}
            for e in history.faults
        ],
        notes=notes,
        node_logs=node_logs,
        has_run_log=has_run_log,
    )


def _explanations(results: dict[str, Any]) -> list[str]:
    lines = str(results.get("explanation") or "").splitlines()
    if len(lines) > EXPLAINED:
        rest = len(lines) - EXPLAINED
        lines = [*lines[:EXPLAINED], f"... and {rest} more, each in the table of keys below."]
    return lines


def _test_defaults(test: dict[str, Any]) -> dict[str, Any]:
    """test.json of this or an older version: every field the page names."""
    keys = ("name", "nodes", "backend", "read_mode", "faults", "time_limit", "concurrency",
            "rate", "seed")
    return {k: test.get(k, "?") for k in keys} | {"faults": test.get("faults") or []}


def _key_row(k: dict[str, Any]) -> dict[str, Any]:
    css, word, _ = VERDICTS.get(k.get("valid"), VERDICTS["unknown"])
    return {"shown": json.dumps(k.get("key"), ensure_ascii=False), "css": css,
            "word": word.lower(), "ops": k.get("ops", ""), "by": k.get("by", ""),
            "seconds": k.get("seconds", ""), "explanation": k.get("explanation", "")}


def _key_summary(rows: list[dict[str, Any]], results: dict[str, Any]) -> str:
    tally = {c: sum(1 for r in rows if r["css"] == c) for c in ("valid", "invalid", "unknown")}
    text = ", ".join(f"{n} {c}" for c, n in tally.items() if n) or "no keys checked"
    if results.get("unchecked_keys"):
        text += (f"; {results['unchecked_keys']} not checked (the checker stops at the first "
                 "invalid key unless asked for all)")
    return text + "."


def _summary(value: Any) -> str:
    data = thaw(value)
    if isinstance(data, list) and all(isinstance(v, list) and len(v) == 2 for v in data):
        fields = dict((k, v) for k, v in data)  # a JSON object, frozen as pairs
        return str(fields.get("summary") or fields.get("error") or json.dumps(fields))
    return json.dumps(data)


def render_run(run: RunDir) -> Path:
    """(Re)write a stored run's index.html from its test.json, results.json and history."""
    test = run.read_json("test.json")
    try:
        results = run.read_json("results.json")
    except FileNotFoundError:
        results = {"valid": "unknown", "explanation": "This run has no results: it is still "
                   "running, or it stopped before its history was checked."}
    raw = [json.loads(line) for line in
           run.file(HISTORY).read_text(encoding="utf-8").splitlines() if line.strip()]
    history = History.from_events(raw, source=str(run.file(HISTORY)))
    nodes = sorted(p.parent.name for p in (run.path / "nodes").glob("*/node.log"))
    page = render(test, results, history, raw, nodes, run.stamp,
                  run.file("run.log").is_file())
    return _write(run.file("index.html"), page)


def fallback(run: RunDir, results: dict[str, Any], error: str) -> Path:
    """A plain page with the verdict, for when the full report cannot be drawn."""
    shown = verdict(results.get("valid"))
    page = (
        "<!DOCTYPE html><meta charset='utf-8'><title>kvctl report</title>"
        f"<h1>{shown['word']}</h1><p>{html.escape(shown['line'])}</p>"
        f"<pre>{html.escape(str(results.get('explanation', '')))}</pre>"
        f"<p>The full report could not be drawn:</p><pre>{html.escape(error)}</pre>"
        "<p><a href='history.jsonl'>history.jsonl</a> <a href='results.json'>results.json</a></p>"
    )
    return _write(run.file("index.html"), page)


def _write(path: Path, text: str) -> Path:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path

