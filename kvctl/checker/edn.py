"""A small EDN reader, enough for Jepsen and Knossos histories.

Histories from the Clojure world are EDN: maps that span lines, `;` comments, strings holding
braces, sets, tagged records (`#jepsen.history.Op{...}`). A regex per line cannot read them,
so this is a real reader. Vectors and lists become tuples (hashable, and equal in EDN anyway),
maps become `Map` (a dict that remembers its line), sets frozensets, keywords `Keyword`
(a str without the colon, so `:read == "read"`), symbols `Symbol`. Unknown tags are dropped
and their value kept; `#inst` and `#uuid` give their string.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from typing import Any


class EdnError(ValueError):
    """Text that is not EDN; the message names the source and line."""


class Keyword(str):
    """An EDN keyword, e.g. `:read` is Keyword("read")."""

    __slots__ = ()

    def __repr__(self) -> str:
        return ":" + str(self)


class Symbol(str):
    """An EDN symbol."""

    __slots__ = ()


class Map(dict):
    """An EDN map, with the line it starts on."""

    line: int = 0


_TOKEN = re.compile(
    r"""(?P<ws>(?:[\s,]+|;[^\n]*)+)
      | (?P<str>"(?:[^"\\]|\\.)*")
      | (?P<open>\#\{|[(\[{])
      | (?P<close>[)\]}])
      | (?P<discard>\#_)
      | (?P<tag>\#[A-Za-z][^\s,()\[\]{}"]*)
      | (?P<char>\\(?:newline|space|tab|return|u[0-9a-fA-F]{4}|[^\s]))
      | (?P<atom>[^\s,()\[\]{}"\\;]+)""",
    re.X | re.S,
)
_INT = re.compile(r"[+-]?\d+N?")
_FLOAT = re.compile(r"[+-]?\d+(\.\d*)?([eE][+-]?\d+)?M?")
_RATIO = re.compile(r"[+-]?\d+/\d+")
_CLOSERS = {"(": ")", "[": "]", "{": "}", "#{": "}"}
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "b": "\b", "f": "\f"}
_CHARS = {"newline": "\n", "space": " ", "tab": "\t", "return": "\r"}
_EOF = object()


def read_all(text: str, source: str = "<edn>") -> list[tuple[int, Any]]:
    """Every top-level form in `text`, with the line it starts on."""
    reader = _Reader(text, source)
    forms: list[tuple[int, Any]] = []
    while True:
        reader.skip()
        line = reader.line(reader.pos)
        form = reader.form(None)
        if form is _EOF:
            return forms
        forms.append((line, form))


def read_one(text: str, source: str = "<edn>", line: int = 1) -> Any:
    """Exactly one form (e.g. the value at the end of a log line)."""
    reader = _Reader(text, source, line)
    form = reader.form(None)
    if form is _EOF or reader.form(None) is not _EOF:
        raise EdnError(f"{source}:{line}: expected one EDN value in {text.strip()!r}")
    return form


class _Reader:
    def __init__(self, text: str, source: str, first_line: int = 1) -> None:
        self.text, self.source, self.pos = text, source, 0
        self.first_line = first_line
        self.newlines = [m.start() for m in re.finditer("\n", text)]

    def line(self, pos: int) -> int:
        return self.first_line + bisect_right(self.newlines, pos - 1)

    def fail(self, pos: int, message: str) -> EdnError:
        return EdnError(f"{self.source}:{self.line(pos)}: {message}")

    def skip(self) -> None:
        """Step over white space and comments."""
        m = _TOKEN.match(self.text, self.pos)
        if m is not None and m.lastgroup == "ws":
            self.pos = m.end()

    def token(self) -> tuple[str, str, int] | None:
        while self.pos < len(self.text):
            m = _TOKEN.match(self.text, self.pos)
            if m is None:
                bad = "unterminated string" if self.text[self.pos] == '"' else "unreadable text"
                raise self.fail(self.pos, f"{bad} at {self.text[self.pos : self.pos + 20]!r}")
            self.pos = m.end()
            if m.lastgroup != "ws":
                return m.lastgroup or "", m.group(), m.start()
        return None

    def form(self, closer: str | None) -> Any:
        """The next form; `closer` is the bracket that may end the enclosing collection."""
        try:
            return self._form(closer)
        except RecursionError:
            raise self.fail(self.pos, "nested too deeply") from None

    def _form(self, closer: str | None) -> Any:
        tok = self.token()
        if tok is None:
            return _EOF
        kind, text, start = tok
        if kind == "close":
            if text != closer:
                raise self.fail(start, f"unexpected {text!r}")
            return _CLOSE
        if kind == "open":
            return self.collection(text, start)
        if kind == "discard":
            self.value(start)
            return self._form(closer)
        if kind == "tag":
            return self.value(start)
        if kind == "str":
            return self.string(text[1:-1], start)
        if kind == "char":
            name = text[1:]
            return (
                chr(int(name[1:], 16))
                if len(name) == 5 and name[0] == "u"
                else _CHARS.get(name, name)
            )
        return self.atom(text, start)

    def value(self, start: int) -> Any:
        """A form that must be there (after a tag or a discard)."""
        form = self._form(None)
        if form is _EOF or form is _CLOSE:
            raise self.fail(start, "a tag or #_ with no value after it")
        return form

    def collection(self, opener: str, start: int) -> Any:
        closer = _CLOSERS[opener]
        items = []
        while (item := self._form(closer)) is not _CLOSE:
            if item is _EOF:
                raise self.fail(
                    len(self.text), f"the {opener!r} of line {self.line(start)} is never closed"
                )
            items.append(item)
        if opener == "{":
            if len(items) % 2:
                raise self.fail(start, "a map with an odd number of forms")
            m = Map(zip(items[::2], items[1::2], strict=True))
            m.line = self.line(start)
            return m
        if opener == "#{":
            return frozenset(items)
        return tuple(items)

    def string(self, body: str, start: int) -> str:
        if "\\" not in body:
            return body
        try:
            return self._unescape(body)
        except (KeyError, ValueError):
            raise self.fail(start, f"bad escape in the string {body[:40]!r}") from None

    @staticmethod
    def _unescape(body: str) -> str:
        out, i = [], 0
        while i < len(body):
            c = body[i]
            if c != "\\":
                out.append(c)
                i += 1
            elif body[i + 1] == "u":
                out.append(chr(int(body[i + 2 : i + 6], 16)))
                i += 6
            else:
                out.append(_ESCAPES[body[i + 1]])
                i += 2
        return "".join(out)

    def atom(self, text: str, start: int) -> Any:
        if text == "nil":
            return None
        if text in ("true", "false"):
            return text == "true"
        if text[0] == ":" and len(text) > 1:
            return Keyword(text[1:])
        if text[0].isdigit() or (text[0] in "+-" and len(text) > 1 and text[1].isdigit()):
            if _INT.fullmatch(text):
                return int(text.rstrip("N"))
            if _FLOAT.fullmatch(text):
                return float(text.rstrip("M"))
            if _RATIO.fullmatch(text):
                num, den = text.split("/")
                return int(num) / int(den)
            raise self.fail(start, f"bad number {text!r}")
        return Symbol(text)


_CLOSE = object()
