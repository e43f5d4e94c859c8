"""The meaning of each outcome, rule by rule (as stated in kvctl.history's docstring)."""

from __future__ import annotations

from pathlib import Path

from checker_corpus import timed

from kvctl.checker import check, load

W1 = (1, "write", 1, 0, 1, "ok")  # the register holds 1 from some point in [0, 1]


def valid(*ops: tuple, initial: object = None) -> bool | str:
    return check(timed(*ops), initial=initial).valid


def test_a_key_starts_absent_unless_told() -> None:
    assert valid((2, "read", None, 0, 1, "ok", None)) is True
    assert valid((2, "read", None, 0, 1, "ok", 0)) is False
    assert valid((2, "read", None, 0, 1, "ok", 0), initial=0) is True


def test_read_ok_saw_what_the_register_held() -> None:
    assert valid(W1, (2, "read", None, 2, 3, "ok", 1)) is True
    assert valid(W1, (2, "read", None, 2, 3, "ok", 2)) is False


def test_write_takes_effect_between_invocation_and_completion() -> None:
    concurrent_old = (2, "read", None, 0.5, 0.6, "ok", None)
    assert valid(W1, concurrent_old) is True
    assert valid(W1, (2, "read", None, 1.5, 1.6, "ok", None)) is False


def test_cas_ok_needs_the_old_value() -> None:
    assert valid(W1, (2, "cas", [1, 2], 2, 3, "ok"), (3, "read", None, 4, 5, "ok", 2)) is True
    assert valid(W1, (2, "cas", [3, 2], 2, 3, "ok")) is False


def test_cas_fail_is_an_observation() -> None:
    assert valid(W1, (2, "cas", [3, 2], 2, 3, "fail")) is True
    assert valid(W1, (2, "cas", [1, 2], 2, 3, "fail")) is False  # it did hold 1
    assert valid(W1, (2, "cas", [3, 2], 2, 3, "fail"), (3, "read", None, 4, 5, "ok", 1)) is True


def test_failed_read_or_write_did_not_happen() -> None:
    assert valid((1, "write", 5, 0, 1, "fail"), (2, "read", None, 2, 3, "ok", None)) is True
    assert valid((1, "write", 5, 0, 1, "fail"), (2, "read", None, 2, 3, "ok", 5)) is False
    assert valid(W1, (2, "read", None, 2, 3, "fail", 7)) is True


def test_unknown_write_may_take_effect_late_or_never() -> None:
    lost = (1, "write", 7, 0, 1, "info")
    late = [(2, "read", None, 2, 3, "ok", None), (3, "read", None, 4, 5, "ok", 7)]
    assert valid(lost, *late) is True  # after its info was recorded
    assert valid(lost, late[0]) is True  # never
    assert valid((1, "write", 7, 0, None, "info"), *late) is True  # never completed
    assert valid(lost, late[1], (2, "read", None, 6, 7, "ok", None)) is False  # once only


def test_unknown_cas_applies_only_where_it_could_succeed() -> None:
    lost_cas = (2, "cas", [2, 3], 2, 3, "info")
    assert valid(W1, lost_cas, (3, "read", None, 4, 5, "ok", 3)) is False
    two = (1, "write", 2, 0, 1, "ok")
    assert valid(two, lost_cas, (3, "read", None, 4, 5, "ok", 3)) is True


def test_read_with_unknown_result_constrains_nothing() -> None:
    assert valid(W1, (2, "read", None, 2, 3, "info", 9)) is True


def _edn(tmp_path: Path, maps: str) -> Path:
    path = tmp_path / "h.edn"
    path.write_text(f"[{maps}]", encoding="utf-8")
    return path


def test_knossos_semantics_differ(tmp_path: Path) -> None:
    write = (
        "{:process 0 :type :invoke :f :write :value 1} {:process 0 :type :ok :f :write :value 1}"
    )
    cas = "{:process 1 :type :invoke :f :cas :value [1 2]} {:process 1 :type :fail :f :cas}"
    nil_read = "{:process 2 :type :invoke :f :read} {:process 2 :type :ok :f :read :value nil}"
    # A failed cas did not happen in Knossos; in our format it proves the value was not 1.
    assert check(load(_edn(tmp_path, write + cas))).valid is True
    assert valid(W1, (2, "cas", [1, 2], 2, 3, "fail")) is False
    # A read of nil matches anything in Knossos; in our format it means absent.
    assert check(load(_edn(tmp_path, write + nil_read))).valid is True
    assert valid(W1, (2, "read", None, 2, 3, "ok", None)) is False
