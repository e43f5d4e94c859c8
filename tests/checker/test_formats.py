"""Importers: Jepsen log lines, Porcupine kv, Knossos EDN; detection; malformed input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kvctl.checker import check, load
from kvctl.checker.edn import EdnError
from kvctl.checker.formats import _any_log, _leading_lines, _plain_log, detect
from kvctl.history import HistoryError, JsonObject

LOG = """\
INFO  jepsen.core - a line that is not an operation
INFO  jepsen.util - 1\t:invoke\t:write\t3
INFO  jepsen.util - 2\t:invoke\t:read\tnil
INFO  jepsen.util - 1\t:info\t:write\t:timed-out
INFO  jepsen.util - 2\t:fail\t:read\t:timed-out
INFO  jepsen.util - 3   :invoke   :cas   [3 4]
INFO  jepsen.util - 3   :fail   :cas   [3 4]
INFO  jepsen.util - :nemesis\t:info\t:start\tnil
"""


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_jepsen_log(tmp_path: Path) -> None:
    h = load(_write(tmp_path, "etcd.log", LOG))
    write, read, cas = h.ops
    assert (write.f, write.value, write.status, write.invoke.line) == ("write", 3, "info", 2)
    assert (read.status, read.result) == ("info", None)  # a timed-out read: unknown result
    assert (cas.status, cas.value) == ("fail", (3, 4))  # a failed cas stays an observation
    assert h.faults[0].f == "start"
    # The failed cas saw "not 3", so the unknown write of 3 cannot have happened before it...
    # but it may happen later, or never: linearizable.
    assert check(h).valid is True


def test_jepsen_log_string_timed_out_is_a_value(tmp_path: Path) -> None:
    # Only the keyword :timed-out means an unknown outcome; a read of the string "timed-out"
    # (a str, as the keyword is) saw a value nobody wrote: not linearizable.
    log = (
        "INFO  jepsen.util - 0\t:invoke\t:read\tnil\n"
        'INFO  jepsen.util - 0\t:ok\t:read\t"timed-out"\n'
    )
    h = load(_write(tmp_path, "string.log", log))
    (read,) = h.ops
    assert (read.status, read.result) == ("ok", "timed-out")
    assert check(h).valid is False


def test_jepsen_log_fields_read_alike_whatever_the_blanks(tmp_path: Path) -> None:
    # Tab-split fields are a shortcut: lines with other blanks read as the line pattern reads
    # them, even after lines that filled the field caches with the same texts.
    tabs = "INFO  jepsen.util - 1\t:invoke\t:cas\t[3 4]\nINFO  jepsen.util - 1\t:ok\t:cas\t[3 4]\n"
    odd = "INFO  jepsen.util - 1\t\t:invoke\t:cas\t\t[3 4]\nINFO  jepsen.util -  1 :ok :cas [3 4]\n"
    ops = [
        [(op.process, op.f, op.value, op.status) for op in load(_write(tmp_path, n, t)).ops]
        for n, t in (("tabs.log", tabs), ("odd.log", odd), ("both.log", tabs + odd))
    ]
    assert ops[0] == ops[1] == [(1, "cas", (3, 4), "ok")]
    assert ops[2] == ops[0] * 2


def test_porcupine_kv(tmp_path: Path) -> None:
    text = (
        '{:process 0, :type :invoke, :f :append, :key "1", :value "x 0 0 y"}\n'
        '{:process 0, :type :ok, :f :append, :key "1", :value "x 0 0 y"}\n'
        '{:process 1, :type :invoke, :f :get, :key "1", :value nil}\n'
        '{:process 1, :type :ok, :f :get, :key "1", :value "x 0 0 y"}\n'
    )
    h = load(_write(tmp_path, "kv.txt", text))
    assert [(op.f, op.key) for op in h.ops] == [("append", "1"), ("get", "1")]
    assert check(h).valid is True
    stale = text.rsplit(":value", 1)[0] + ':value ""}\n'  # the get misses the append
    assert check(load(_write(tmp_path, "stale.txt", stale))).valid is False


def test_porcupine_kv_rejects_other_operations(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "kv.txt",
        "{:process 0, :type :invoke, :f :get, :key 1}\n"
        "{:process 0, :type :invoke, :f :cas, :key 1}\n",
    )
    with pytest.raises(HistoryError, match=r"kv.txt:2: porcupine-kv has get, put and append"):
        load(path, "porcupine-kv")


def test_knossos_semantics(tmp_path: Path) -> None:
    text = """; fails never happened, a nil read matches anything
    [{:process 0, :type :invoke, :f :write, :value 1}
     {:process 0, :type :ok, :f :write, :value 1}
     {:process 1, :type :invoke, :f :cas, :value [1 2]}
     {:process 1, :type :fail, :f :cas, :value [1 2]}
     {:process 2, :type :invoke, :f :read, :value nil}
     {:process 2, :type :ok, :f :read, :value nil}
     {:process :nemesis, :type :info, :f :start, :value {:n1 #{:n2}}}
     {:process 3, :type :invoke, :f :txn, :value [[:read :x nil]]}]
    """
    h = load(_write(tmp_path, "h.edn", text))
    assert [(op.f, op.status) for op in h.ops] == [
        ("write", "ok"),
        ("read", "info"),
        ("txn", "info"),
    ]
    assert h.ops[2].value == (("read", "x", None),)
    assert h.faults[0].value == JsonObject([("n1", frozenset({"n2"}))])


def test_knossos_multi_register_initial_value(corpus: Path) -> None:
    h = load(corpus / "knossos" / "multi-register" / "good" / "multi-register.edn")
    assert check(h, initial=0).valid is True
    assert check(h, initial=None).valid is False  # reads of 0 need the 0 start


@pytest.mark.parametrize(
    ("first_line", "fmt"),
    [
        ('{"process": 0, "type": "invoke", "f": "read"}', "jsonl"),
        ("INFO  jepsen.util - 4\t:invoke\t:read\tnil", "jepsen-log"),
        ('{:process 2, :type :invoke, :f :get, :key "0", :value nil}', "porcupine-kv"),
        ("{:process 2, :type :invoke, :f :read, :value nil}", "knossos-edn"),
        ("[{:process 2, :type :invoke, :f :read, :value nil}", "knossos-edn"),
        ("(", "knossos-edn"),
    ],
)
def test_detect(first_line: str, fmt: str) -> None:
    assert detect("\n; comment\n" + first_line + "\n", "f") == fmt


def test_detect_gives_up_clearly() -> None:
    with pytest.raises(HistoryError, match="cannot tell the format; give --format"):
        detect("hello\n", "f.dat")


def test_directory_with_history_jsonl(tmp_path: Path) -> None:
    _write(
        tmp_path, "history.jsonl", '{"process": 0, "type": "invoke", "f": "write", "value": 1}\n'
    )
    assert load(tmp_path).ops[0].value == 1


@pytest.mark.parametrize(
    ("name", "text", "fmt", "message"),
    [
        ("a.log", "INFO  jepsen.util - 1 :invoke\n", "auto", "a.log:1: not a Jepsen operation"),
        (
            "a.log",
            "INFO  jepsen.util - 1 :begin :read nil\n",
            "jepsen-log",
            "a.log:1: expected :type and :f keywords",
        ),
        (
            "a.log",
            "INFO  jepsen.util - 1 :invoke :read [1\n",
            "jepsen-log",
            "a.log:1: the '[' of line 1 is never closed",
        ),
        ("b.edn", "[{:process 0 :type :invoke}]\n", "auto", "b.edn:1: operation map without :f"),
        ("b.edn", "[{:process 0 :type :go :f :read}]", "knossos-edn", "b.edn:1: bad :type"),
        (
            "b.edn",
            "[{:process 0 :type :invoke :f :read}\n 2]",
            "knossos-edn",
            "b.edn:1: expected an operation map, found 2",
        ),
        ("b.edn", "\n\n:x", "knossos-edn", 'b.edn:3: expected an operation map, found "x"'),
        (
            "b.edn",
            "[{:process 0 :type :invoke :f :read :time :soon}]",
            "knossos-edn",
            "b.edn:1: :time must be a number",
        ),
        (
            "c.edn",
            "[\n{:process 0 :type :invoke :f :read}\n",
            "knossos-edn",
            "c.edn:3: the '[' of line 1 is never closed",
        ),
        ("d.txt", "x", "nonsense", "unknown format 'nonsense'"),
    ],
)
def test_malformed_input_names_file_and_line(
    tmp_path: Path, name: str, text: str, fmt: str, message: str
) -> None:
    with pytest.raises(HistoryError) as err:
        load(_write(tmp_path, name, text), fmt)
    assert message in str(err.value)


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(HistoryError, match=r"nothing\.edn: cannot read"):
        load(tmp_path / "nothing.edn")
    binary = tmp_path / "binary.log"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(HistoryError, match=r"binary\.log: cannot read"):
        load(binary, "jepsen-log")


def _shapes(events: list[Any] | None) -> list[tuple[Any, ...]] | None:
    """Events with the types of their fields: a Keyword is a str, and must stay a Keyword."""
    if events is None:
        return None
    return [(e, type(e.process), type(e.f), type(e.value)) for e in events]


def test_plain_jepsen_logs_read_as_any_log(corpus: Path) -> None:
    # The fast path for plain logs must make exactly the events of the line-by-line reader.
    for path in sorted((corpus / "porcupine" / "jepsen").glob("etcd_*.log")):
        text = path.read_text(encoding="utf-8")
        plain = _plain_log(text)
        assert plain is not None, path
        assert _shapes(plain) == _shapes(_any_log(text, str(path))), path


# Log lines field by field: each field is one the fast path takes (the first of each row), or,
# in a line drawn with `odd`, anything. Most texts are then plain, and some are nearly so.
_FIELDS = (
    (("INFO  jepsen.util - ",), ("INFO  jepsen.util -  ", "x jepsen.util - ", "INFO  jepsen.c - ")),
    (("0", "12", "007"), (":nemesis", "-1", "")),
    (("\t", "   ", " \t"), ("",)),
    ((":invoke", ":ok", ":fail", ":info"), (":okay", "ok")),
    (("\t", " "), ("",)),
    ((":read", ":cas", ":write", ":start"), ("read", ":r-w")),
    (("\t", "  "), ("",)),
    (("nil", "3", "[1 2]", ":timed-out"), ("[1  2]", '"timed-out"', "[1 x]", "", "true")),
    (("", " ", "\t"), ("\r", " x", "\f")),
)


@st.composite
def _log_line(draw: Any, odd: bool) -> str:
    return "".join(draw(st.sampled_from(good + bad if odd else good)) for good, bad in _FIELDS)


_LOG_LINES = st.sampled_from([False, False, False, True]).flatmap(_log_line)


@settings(max_examples=1000, deadline=None)
@given(st.lists(_LOG_LINES, max_size=6), st.booleans())
def test_jepsen_log_fast_path_changes_nothing(lines: list[str], newline: bool) -> None:
    # Whatever the text, the fast path either declines or makes the line-by-line reader's
    # events (which may also refuse the text: then the fast path must have declined).
    text = "\n".join(lines) + ("\n" if newline else "")
    plain = _plain_log(text)
    try:
        every = _any_log(text, "<log>")
    except (HistoryError, EdnError):
        assert plain is None
        return
    assert plain is None or _shapes(plain) == _shapes(every)


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet="ab \r\n\x0b\x85\u2028;{", max_size=40), st.integers(0, 45))
def test_leading_lines_are_splitlines(text: str, head: int) -> None:
    # Format detection reads the first lines from the head of the text: the same lines.
    assert list(_leading_lines(text, head)) == text.splitlines()


def test_detect_past_a_long_head(tmp_path: Path) -> None:
    comments = "; a comment that goes on\n" * 100  # beyond the head read first
    path = _write(tmp_path, "late.log", comments + "INFO  jepsen.util - 0\t:invoke\t:read\tnil\n")
    assert detect(path.read_text(encoding="utf-8"), "late.log") == "jepsen-log"
