"""`kvctl check FILE...`: is each recorded history linearizable?"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import click

from kvctl.checker import DEFAULT_BUDGET, FORMATS, load
from kvctl.checker import check as check_history
from kvctl.checker.model import show
from kvctl.history import HistoryError, freeze
from kvctl.store import HISTORY

_VERDICT = {True: "valid", False: "INVALID", "unknown": "unknown"}
INPUT_ERROR = "input error"


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["auto", *FORMATS]),
    default="auto",
    show_default=True,
    help="How the files are written; auto guesses from each one.",
)
@click.option(
    "--initial",
    default=None,
    metavar="V",
    help="The value every key starts with, as JSON (default: null, i.e. absent; "
    "Knossos's own tests use 0).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object a line per file.")
@click.option(
    "--budget",
    type=click.FloatRange(min=0.001),
    default=DEFAULT_BUDGET,
    show_default=True,
    metavar="SECONDS",
    help="Time each key may take; a key not decided by then is unknown.",
)
@click.option("--full", is_flag=True, help="Check every key, even after an invalid one.")
def check(
    files: tuple[Path, ...], fmt: str, initial: str | None, as_json: bool, budget: float, full: bool
) -> None:
    """Check that each history FILE is linearizable (a file, or a test directory holding
    history.jsonl).

    Exit status: 0 if every file is valid, 1 if any is invalid; else 3 if some file is not a
    history that can be checked (unreadable, malformed, ambiguous or inconsistent: the message
    names the file and the line), 2 if some could not be decided within the budget.
    """
    start_value = _initial(initial)
    verdicts: set[bool | str] = set()
    for path in files:
        started = time.monotonic()
        try:
            result = check_history(load(path, fmt), budget=budget, initial=start_value, full=full)
        except HistoryError as err:
            verdicts.add(INPUT_ERROR)
            click.echo(f"kvctl check: {err}", err=True)
            if as_json:
                click.echo(json.dumps({"file": str(path), "valid": "unknown", "error": str(err)}))
            continue
        verdicts.add(result.valid)
        seconds = round(time.monotonic() - started, 3)
        table = _availability(path)
        if as_json:
            extra = {"availability": table} if table else {}
            click.echo(
                json.dumps(
                    {"file": str(path), **result.to_json(), "seconds": seconds, **extra},
                    default=_jsonable,
                )
            )
        else:
            _print(path, result, seconds)
            if table:
                _print_availability(table)
    sys.exit(_exit_status(verdicts))


def _exit_status(verdicts: set[bool | str]) -> int:
    """An invalid history is the finding that matters most; a file that could not be read
    must not pass for undecided, and never for invalid (1)."""
    if False in verdicts:
        return 1
    if INPUT_ERROR in verdicts:
        return 3
    return 2 if "unknown" in verdicts else 0


def _initial(text: str | None) -> Any:
    """JSON if it parses (0, null, "a", [1, 2]), else the text itself."""
    if text is None:
        return None
    try:
        return freeze(json.loads(text))
    except json.JSONDecodeError:
        return text
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--initial") from None


def _print(path: Path, result: Any, seconds: float) -> None:
    keys = _count(len(result.keys) + result.unchecked, "key")
    click.echo(f"{path}: {_VERDICT[result.valid]} ({result.model}, {keys}, {seconds} s)")
    for key in result.keys:
        if key.valid is not True:
            click.echo(f"  key {show(key.key)}: {_VERDICT[key.valid]}: {key.explanation}")
    if result.unchecked:
        click.echo(
            f"  {_count(result.unchecked, 'more key')} not checked after the first invalid one "
            f"(--full checks them all)"
        )


def _availability(path: Path) -> dict[str, Any] | None:
    """The availability table of a run directory of the store (test.json beside the
    history); None for a plain history file, or, said on stderr, if it cannot be made."""
    test = path / "test.json"
    if not (path.is_dir() and test.is_file()):
        return None
    from kvctl.report import availability

    history = path / HISTORY
    try:
        raw = [json.loads(line) for line in history.read_text(encoding="utf-8").splitlines()
               if line.strip()]
        return availability.of_run(json.loads(test.read_text(encoding="utf-8")), raw,
                                   str(history))
    except (OSError, ValueError, KeyError, TypeError) as err:
        click.echo(f"kvctl check: {path}: no availability table: {err}", err=True)
        return None


def _print_availability(table: dict[str, Any]) -> None:
    from kvctl.report import availability

    rows = availability.from_json(table)
    if not rows:
        click.echo("  no fault windows")
        return
    note = " (placement assumed: the run did not record it)" if table["placement_assumed"] else ""
    click.echo(f"  availability under faults{note}:")
    for line in availability.lines(rows):
        click.echo(f"    {line}")
    for defect in availability.defects(rows):
        click.echo(f"  LIVENESS DEFECT: {defect}")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _jsonable(value: Any) -> Any:
    return show(value)
