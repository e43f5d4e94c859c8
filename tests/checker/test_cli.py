"""`kvctl check`: output, --json, exit codes, malformed input."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from kvctl.cli import main

GOOD = [
    '{"process": 0, "type": "invoke", "f": "write", "key": "x", "value": 1}',
    '{"process": 0, "type": "ok", "f": "write", "key": "x", "value": 1}',
    '{"process": 1, "type": "invoke", "f": "read", "key": "x", "value": null}',
    '{"process": 1, "type": "ok", "f": "read", "key": "x", "value": 1}',
]
STALE = [*GOOD[:3], GOOD[3].replace('"value": 1', '"value": null')]
# Sixteen concurrent writes, then a read of a value nobody wrote: slow to refute.
HARD = (
    [
        f'{{"process": {p}, "type": "invoke", "f": "write", "value": {p}, "time": 0}}'
        for p in range(16)
    ]
    + [
        '{"process": 99, "type": "invoke", "f": "read", "time": 5}',
        '{"process": 99, "type": "ok", "f": "read", "value": -1, "time": 6}',
    ]
    + [
        f'{{"process": {p}, "type": "ok", "f": "write", "value": {p}, "time": 9}}'
        for p in range(16)
    ]
)


def _file(tmp_path: Path, name: str, lines: list[str]) -> str:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["check", *args])
    return result.exit_code, result.stdout, result.stderr


def test_valid(tmp_path: Path) -> None:
    code, out, _ = _run(_file(tmp_path, "good.jsonl", GOOD))
    assert code == 0
    assert out.startswith(f"{tmp_path / 'good.jsonl'}: valid (register, 1 key, ")


def test_invalid_wins_and_is_explained(tmp_path: Path) -> None:
    code, out, _ = _run(_file(tmp_path, "good.jsonl", GOOD), _file(tmp_path, "bad.jsonl", STALE))
    assert code == 1
    assert ": INVALID (register, 1 key, " in out
    assert '  key "x": INVALID: These orders cannot all hold' in out


def test_unknown_exits_2(tmp_path: Path) -> None:
    code, out, _ = _run("--budget", "0.001", _file(tmp_path, "hard.jsonl", HARD))
    assert code == 2
    assert ": unknown (register, 1 key" in out and "ran out of time" in out


def test_json_lines(tmp_path: Path) -> None:
    files = [
        _file(tmp_path, "good.jsonl", GOOD),
        _file(tmp_path, "bad.jsonl", STALE),
        _file(tmp_path, "broken.jsonl", ["{"]),
    ]
    code, out, err = _run("--json", *files)
    assert code == 1
    good, bad, broken = (json.loads(line) for line in out.splitlines())
    assert (good["file"], good["valid"], good["explanation"]) == (files[0], True, "")
    assert bad["valid"] is False and bad["explanation"].startswith('key "x": These orders')
    assert bad["keys"][0]["valid"] is False
    assert broken["valid"] == "unknown" and "broken.jsonl:1: not JSON" in broken["error"]
    assert "broken.jsonl:1: not JSON" in err


def test_malformed_input_is_one_line_on_stderr(tmp_path: Path) -> None:
    path = _file(tmp_path, "h.jsonl", [GOOD[0], '{"process": 0, "type": "invoke", "f": 3}'])
    code, out, err = _run(path)
    assert code == 3 and out == ""
    assert err == f"kvctl check: {path}:2: f must be a string, not 3\n"


def test_unknown_operation_names_the_line(tmp_path: Path) -> None:
    path = _file(tmp_path, "h.jsonl", ['{"process": 0, "type": "invoke", "f": "incr"}'])
    code, _, err = _run(path)
    assert code == 3 and f"{path}:1: unknown operation 'incr'" in err


def test_directory_and_initial_value(tmp_path: Path) -> None:
    run = tmp_path / "store" / "register" / "20250101T000000"
    run.mkdir(parents=True)
    _file(
        run,
        "history.jsonl",
        [
            '{"process": 0, "type": "invoke", "f": "read"}',
            '{"process": 0, "type": "ok", "f": "read", "value": 0}',
        ],
    )
    assert _run(str(run))[0] == 1
    assert _run("--initial", "0", str(run))[0] == 0


def test_format_option(tmp_path: Path) -> None:
    path = _file(
        tmp_path,
        "h.data",
        ["INFO  jepsen.util - 0\t:invoke\t:read\tnil", "INFO  jepsen.util - 0\t:ok\t:read\tnil"],
    )
    assert _run("--format", "jepsen-log", path)[0] == 0
    code, _, err = _run("--format", "knossos-edn", path)
    assert code == 3
    assert err == f'kvctl check: {path}:1: expected an operation map, found "INFO"\n'


def test_full_reports_every_key(tmp_path: Path) -> None:
    lines = [*STALE, *(line.replace('"x"', '"y"') for line in STALE)]
    path = _file(tmp_path, "two.jsonl", lines)
    _, out, _ = _run(path)
    assert "1 more key not checked" in out
    _, out, _ = _run("--full", path)
    assert out.count("INVALID: These orders") == 2
