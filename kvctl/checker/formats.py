"""Read histories of other systems into ours.

- `jsonl`: our own format (see `kvctl.history`).
- `jepsen-log`: Jepsen log lines as in Porcupine's etcd data,
  `INFO  jepsen.util - 4	:ok	:read	3`. A completion whose value is `:timed-out` has an unknown
  outcome (info); a failed cas is an observation, as in our format. Other log lines are skipped.
- `porcupine-kv`: one EDN map a line, `{:process 0, :type :ok, :f :append, :key "3", :value
  "x 0 1 y"}`, with get / put / append (Porcupine's kv tests).
- `knossos-edn`: one EDN collection of op maps (or one map a line, as Jepsen's history.edn),
  read with Knossos's own semantics: a failed operation did not happen (a failed cas too), an
  ok read of nil matches any value, so it becomes a read with unknown result, and real-time
  order is history order (`:index`, else position). `:time` is left out: Jepsen's workers
  stamp it on their own, and it can disagree with history order (knossos/mutex/bad/etcd.edn).

Values compare by JSON identity in every format (`kvctl.history`, rule 1): EDN's true is not 1,
and a map is not a list of pairs.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import replace
from itertools import count, repeat
from pathlib import Path
from typing import Any

from kvctl.checker.edn import EdnError, Keyword, Map, read_all, read_one
from kvctl.checker.model import brief
from kvctl.history import (
    NEMESIS,
    TYPES,
    Event,
    History,
    HistoryError,
    JsonObject,
    freeze,
    integer,
    number,
)

FORMATS = ("jsonl", "jepsen-log", "porcupine-kv", "knossos-edn")
_LOG_LINE = re.compile(r"jepsen\.util[ \t]+-[ \t]+(\S+)[ \t]+(:\S+)[ \t]+(:\S+)[ \t]*(.*)$")
# A plain operation line, after the line break before it: a line of this shape reads the same
# whether tab-split or matched by _LOG_LINE (blanks around fields are dropped), without error.
_PLAIN_LINE = re.compile(
    r"\nINFO  jepsen\.util - ([0-9]+)[ \t]+:(invoke|ok|fail|info)[ \t]+:([a-z]+)[ \t]+"
    r"(nil|[0-9]+|\[[0-9]+ [0-9]+\]|:timed-out)[ \t]*(?=\n|$)"
)
_KV_FS = frozenset({"get", "put", "append"})
_TIMED_OUT = Keyword("timed-out")


def load(path: str | Path, fmt: str = "auto") -> History:
    """Read a history file (or a test directory holding `history.jsonl`) in a given format."""
    path = Path(path)
    if path.is_dir():
        path = path / "history.jsonl"
    if fmt == "jsonl" or (fmt == "auto" and path.suffix == ".jsonl"):
        return History.read_jsonl(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise HistoryError(f"{path}: cannot read: {err}") from None
    if fmt == "auto":
        fmt = detect(text, str(path))
    if fmt == "jsonl":
        return History.read_jsonl(path)
    if fmt not in _READERS:
        raise HistoryError(f"{path}: unknown format {fmt!r}; known: {', '.join(FORMATS)}")
    try:
        return _READERS[fmt](text, str(path))
    except EdnError as err:
        raise HistoryError(str(err)) from None


def detect(text: str, source: str) -> str:
    """Guess the format from the first meaningful line."""
    for line in _leading_lines(text):
        s = line.strip()
        if not s or s.startswith(";"):
            continue
        if re.match(r"[A-Z]+\s+jepsen\.", s):
            return "jepsen-log"
        if s.startswith('{"') or s == "{}":
            return "jsonl"
        if s[0] in "[(" or (s.startswith("{:") and not re.search(r":f\s+:(get|put|append)\b", s)):
            return "knossos-edn"
        if s.startswith("{:"):
            return "porcupine-kv"
        break
    raise HistoryError(f"{source}: cannot tell the format; give --format ({', '.join(FORMATS)})")


def _leading_lines(text: str, head: int = 1024) -> Iterator[str]:
    """The lines of `text`, as `splitlines` cuts them, the first ones without cutting it all:
    the whole lines of its first `head` characters, then, if wanted, every line after them."""
    lines = text[:head].splitlines()
    if len(text) <= head:
        yield from lines
        return
    whole = lines[:-1]  # the last one may go on after the cut, or end in half of a \r\n
    yield from whole
    yield from text.splitlines()[len(whole) :]


def read_jepsen_log(text: str, source: str) -> History:
    """Jepsen `jepsen.util` log lines; one register, initially absent."""
    events = _plain_log(text)
    return History(tuple(_any_log(text, source) if events is None else events), source)


def _plain_log(text: str) -> list[Event] | None:
    """The events of a log whose every line is a plain operation line (what Jepsen writes),
    or None. One regex pass over the text, then column by column, each distinct value text
    parsed once; the tests check that the events are those `_any_log` makes."""
    rows = _PLAIN_LINE.findall("\n" + text)  # a match starts where a line starts
    if not rows or len(rows) != text.count("\n") + (not text.endswith("\n")):
        return None  # a line the pattern does not cover: it matches at most once a line
    process_texts, kind_texts, f_texts, value_texts = zip(*rows, strict=True)
    parsed = {t: _plain_value(t) for t in set(value_texts)}
    kinds, values = list(kind_texts), list(map(parsed.__getitem__, value_texts))
    for n in _positions(value_texts, ":timed-out"):
        if kinds[n] != "invoke":
            kinds[n], values[n] = "info", None
    none = repeat(None)
    processes = map(int, process_texts)
    return list(map(Event, processes, kinds, f_texts, none, values, none, none, count(1)))


def _positions(items: tuple[str, ...], item: str) -> Iterator[int]:
    """Where `item` occurs in `items`, found in C rather than by a Python loop over them all."""
    n = -1
    while True:
        try:
            n = items.index(item, n + 1)
        except ValueError:
            return
        yield n


def _plain_value(text: str) -> Any:
    """A value of a plain operation line: nil, a number, a pair of numbers or :timed-out."""
    if text == "nil":
        return None
    if text[0] == "[":
        return tuple(map(int, text[1:-1].split()))
    return _TIMED_OUT if text == ":timed-out" else int(text)


def _any_log(text: str, source: str) -> list[Event]:
    """The events of any log, line by line: lines are split at tabs first (the usual shape);
    fields are parsed once per distinct text, keyed by the text the line pattern gives them,
    so a line whose tab-split fields are all known reads as the pattern would read it. Any
    other line goes through the pattern."""
    events = []
    caches: tuple[dict[str, Any], ...] = ({}, {}, {}, {})  # process, type, f, value
    processes, kinds, fs, values = caches
    for line, raw in enumerate(text.splitlines(), 1):
        at = raw.find("jepsen.util - ")
        if at < 0:
            if "jepsen.util" in raw:
                _log_fields(raw, caches, source, line)  # refused with the reason
            continue
        texts = raw[at + 14 :].split("\t", 3)
        try:
            process, kind, f = processes[texts[0]], kinds[texts[1]], fs[texts[2]]
            value = values[texts[3]] if len(texts) == 4 else values[""]
        except (KeyError, IndexError):
            process, kind, f, value = _log_fields(raw, caches, source, line, texts)
        if kind != "invoke" and type(value) is Keyword and value == _TIMED_OUT:  # not "timed-out"
            kind, value = "info", None
        events.append(Event(process, kind, f, None, value, None, None, line))
    return events


def _log_fields(
    raw: str,
    caches: tuple[dict[str, Any], ...],
    source: str,
    line: int,
    texts: list[str] | None = None,
) -> list[Any]:
    """Process, type, f and value of one operation line, as the line pattern reads them:
    its tab-split `texts` when they are what the pattern would find (three tokens without
    blanks, the second and third keywords), else the pattern's groups."""
    if (
        texts is None
        or len(texts) < 3
        or texts[0].split() != [texts[0]]
        or texts[1].split() != [texts[1]]
        or texts[2].split() != [texts[2]]
        or texts[1][0] != ":"
        or texts[2][0] != ":"
    ):
        m = _LOG_LINE.search(raw)
        if m is None:
            raise HistoryError(f"{source}:{line}: not a Jepsen operation line: {raw.strip()!r}")
        texts = list(m.groups())
    value = texts[3].lstrip(" \t") if len(texts) == 4 else ""
    fields = []
    for k, text in enumerate((texts[0], texts[1], texts[2], value)):
        cache = caches[k]
        if text not in cache:
            cache[text] = _log_field(k, text, (source, line), raw)
        fields.append(cache[text])
    return fields


def _log_field(k: int, text: str, where: tuple[str, int], raw: str) -> Any:
    """Field `k` (process, type, f, value) of an operation line."""
    value = _log_value(text, *where) if text.strip() else None
    if k == 0 and value == NEMESIS:
        return NEMESIS
    if k in (1, 2):
        if not isinstance(value, Keyword) or (k == 1 and value not in TYPES):
            source, line = where
            raise HistoryError(
                f"{source}:{line}: expected :type and :f keywords in {raw.strip()!r}"
            )
        return str(value)
    return value


def _log_value(text: str, source: str, line: int) -> Any:
    """An EDN value from a log line; the common shapes without starting the EDN reader."""
    text = text.strip()
    if text.isdigit():
        return int(text)
    if text == "nil":
        return None
    if text[0] == ":" and text[1:].replace("-", "").isalnum():
        return Keyword(text[1:])
    if text[0] == "[" and text[-1] == "]" and all(p.isdigit() for p in text[1:-1].split()):
        return tuple(int(p) for p in text[1:-1].split())
    return _plain(read_one(text, source, line), f"{source}:{line}")


def read_porcupine_kv(text: str, source: str) -> History:
    """Porcupine's kv histories: get / put / append over string keys, one map a line."""
    events = [_map_event(m, source) for m in _maps(text, source)]
    for e in events:
        if e.process != NEMESIS and e.f not in _KV_FS:
            raise HistoryError(
                f"{source}:{e.line}: porcupine-kv has get, put and append, not {e.f!r}"
            )
    return History(tuple(events), source)


def read_knossos_edn(text: str, source: str) -> History:
    """Knossos histories, turned into our semantics as Knossos reads them."""
    events = [_map_event(m, source) for m in _maps(text, source)]
    failed: set[int] = set()
    open_: dict[Any, int] = {}
    for n, e in enumerate(events):
        if e.process == NEMESIS:
            continue
        if e.type == "invoke":
            open_[e.process] = n
        elif e.type == "fail" and e.process in open_:
            failed.update((open_.pop(e.process), n))
        else:
            open_.pop(e.process, None)
    kept = []
    for n, e in enumerate(events):
        if n in failed:
            continue
        if e.type == "ok" and e.f == "read" and e.value is None:
            e = replace(e, type="info")
        kept.append(replace(e, time=None))
    return History(tuple(kept), source)


def _maps(text: str, source: str) -> list[Map]:
    """The operation maps: the items of one collection, or the top-level forms."""
    forms = read_all(text, source)
    if len(forms) == 1 and isinstance(forms[0][1], tuple):
        line, items = forms[0]
        forms = []
        for item in items:
            line = getattr(item, "line", line)
            forms.append((line, item))
    for line, form in forms:
        if not isinstance(form, Map):
            raise HistoryError(f"{source}:{line}: expected an operation map, found {brief(form)}")
    return [form for _, form in forms]


def _map_event(m: Map, source: str) -> Event:
    where = f"{source}:{m.line}"
    for name in ("process", "type", "f"):
        if name not in m:
            raise HistoryError(f"{where}: operation map without :{name}")
    kind, f, process = m["type"], m["f"], m["process"]
    if kind not in TYPES or not isinstance(f, str):
        raise HistoryError(f"{where}: bad :type {kind!r} or :f {f!r}")
    if process == NEMESIS:
        process = NEMESIS
    return Event(
        process,
        str(kind),
        str(f),
        _plain(m.get("key"), where),
        _plain(m.get("value"), where),
        number(m.get("time"), ":time", where),
        integer(m.get("index"), ":index", where),
        m.line,
    )


def _plain(value: Any, where: str) -> Any:
    """Keywords become plain strings inside values (`[:read :x 1]` -> ("read", "x", 1)); maps,
    booleans and numbers compare as in JSON (rule 1 of `kvctl.history`)."""
    if isinstance(value, Keyword):
        return str(value)
    if isinstance(value, tuple):
        return tuple(_plain(v, where) for v in value)
    if isinstance(value, dict):
        return JsonObject((_plain(k, where), _plain(v, where)) for k, v in value.items())
    if isinstance(value, frozenset):
        return frozenset(_plain(v, where) for v in value)
    try:
        return freeze(value)
    except ValueError as err:
        raise HistoryError(f"{where}: {err}") from None


_READERS: dict[str, Callable[[str, str], History]] = {
    "jepsen-log": read_jepsen_log,
    "porcupine-kv": read_porcupine_kv,
    "knossos-edn": read_knossos_edn,
}
