"""Benchmark of the linearizability checker against Porcupine itself, side by side in one run.

Porcupine (Go) is built from ../shared/tools/porcupine/ with Debian's golang-go (see
../shared/tools/README.md) into a temporary folder, and timed by its own harness in the same
run, file by file, alternating with kvctl.

1. etcd: the 102 Jepsen etcd histories of Porcupine's tests. Totals: every file read and
   checked once (kvctl: `load` + `check`, as `kvctl check` does; Porcupine: parse +
   CheckEvents), and check only. File by file: the minimum over --repeat of each side, read
   and check, check only, and how many files each side is faster on. A plain Python
   transliteration of Porcupine's search (`checkSingle`: linked list, bitset, memo of
   (linearized, state); no pruning) on the same operations shows what the pruning buys.
2. hardest: the ten etcd histories Porcupine takes longest to check, one by one.
3. c50: every key of kv/c50-ok and kv/c50-bad on its own, with the budget (Porcupine cannot
   decide keys "0" and "9" of c50-bad in 60 s each).

Times are the minimum over --repeat runs (the median is shown too), wall clock unless --cpu
(kvctl's side only: the Go harness measures wall clock). The machine's load average before and
after the run is printed with the figures: on a shared machine only the ratios of one run mean
much.

What each side's "check" includes: kvctl's `check` (model choice and validation, split by key,
evidence, constraint graph, symmetry, search; an invalid key's explanation in words is worked
out when first read, which only the "check + explanations" total does); Porcupine's
`CheckEvents` (partition, events paired and numbered into entries, search; no explanation).
"Read" is kvctl's `load` (file to events, paired into ranked operations) against Porcupine's
`parseJepsenLog` (file to events): pairing is in kvctl's read and in Porcupine's check, so
"read + check" is the like-for-like figure.

    python bench/checker_bench.py [--corpus DIR] [--porcupine DIR] [--repeat N]
                                  [--budget SECONDS] [--cpu] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from kvctl.checker import check, load
from kvctl.checker.check import check_key
from kvctl.checker.kv import Kv
from kvctl.checker.register import Register
from kvctl.checker.search import COMPILED
from kvctl.history import History, Op

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared"
CORPUS = SHARED / "reference-histories"
PORCUPINE = SHARED / "tools" / "porcupine"


CLOCK = time.perf_counter  # --cpu: time.process_time, steadier on a busy machine


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, float, Any]:
    """(minimum, median) seconds over `repeat` runs, and the last result."""
    times, result = [], None
    for _ in range(repeat):
        start = CLOCK()
        result = fn()
        times.append(CLOCK() - start)
    return min(times), statistics.median(times), result


def porcupine_baseline(ops: Sequence[Op], model: Any) -> bool:
    """Porcupine's checkSingle, transliterated: the yardstick, not used by the checker.

    Unknown outcomes return after everything (Porcupine's recipe for timed-out calls).
    """
    n, inf = len(ops), float("inf")
    entries = sorted(
        [(op.call, 0, i) for i, op in enumerate(ops)]
        + [(inf if op.ret is None else op.ret, 1, n + i) for i, op in enumerate(ops)]
    )
    head = 2 * n
    nxt, prv = [-1] * (2 * n + 2), [-1] * (2 * n + 2)  # slot -1: a tail that absorbs writes
    last = head
    for _, _, e in entries:
        nxt[last], prv[e], last = e, last, e
    cache: set[tuple[int, Any]] = set()
    stack: list[tuple[int, Any]] = []
    state, linearized, e = model.init(), 0, nxt[head]
    while nxt[head] >= 0:
        if e < n:
            legal, after = model.step(state, ops[e])
            key = (linearized | 1 << e, after)
            if legal and key not in cache:
                cache.add(key)
                stack.append((e, state))
                state, linearized = after, key[0]
                r = e + n
                nxt[prv[e]], prv[nxt[e]] = nxt[e], prv[e]
                nxt[prv[r]], prv[nxt[r]] = nxt[r], prv[r]
                e = nxt[head]
                continue
            e = nxt[e]
        else:
            if not stack:
                return False
            e, state = stack.pop()
            linearized &= ~(1 << e)
            r = e + n
            nxt[prv[r]] = prv[nxt[r]] = r
            nxt[prv[e]] = prv[nxt[e]] = e
            e = nxt[e]
    return True


class Porcupine:
    """Porcupine's own harness (harness_test.go), built once into a temporary folder."""

    def __init__(self, source: Path, workdir: Path) -> None:
        if shutil.which("go") is None:
            sys.exit("checker_bench: Go is needed to build Porcupine: apt-get install golang-go")
        tree = workdir / "porcupine"
        shutil.copytree(source, tree)  # shared/ is read-only; go writes next to go.mod
        for path in tree.rglob("*"):
            path.chmod(path.stat().st_mode | 0o200)
        self.binary = workdir / "porc.test"
        built = subprocess.run(
            ["go", "test", "-c", "-o", str(self.binary), "."],
            cwd=tree,
            capture_output=True,
            text=True,
        )
        if built.returncode != 0:
            sys.exit(f"checker_bench: building Porcupine failed:\n{built.stderr}")

    def _run(self, files: Sequence[Path], mode: str, repeat: int = 1) -> list[list[str]]:
        env = {
            **os.environ,
            "PORC_FILES": ":".join(str(f) for f in files),
            "PORC_MODE": mode,
            "PORC_REPEAT": str(repeat),
        }
        out = subprocess.run(
            [str(self.binary), "-test.run", "TestHarness"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return [line.split("\t") for line in out.splitlines() if line.startswith(mode.upper())]

    def total(self, files: Sequence[Path]) -> tuple[float, int]:
        """Seconds to parse and check every file once, and how many are linearizable."""
        _, _, linearizable, seconds = self._run(files, "all")[0]
        return float(seconds), int(linearizable)

    def each(self, files: Sequence[Path], repeat: int) -> dict[str, tuple[bool, float, float]]:
        """For each file: linearizable?, seconds to parse it, best seconds to check it."""
        return {
            Path(name).name: (ok == "true", float(parse), float(check))
            for _, name, ok, parse, check in self._run(files, "each", repeat)
        }


def relevant_ops(history: History) -> list[Op]:
    model = Register(history.ops)
    return [op for op in history.ops if model.relevant(op)]


def per_file(
    paths: Sequence[Path], porcupine: Porcupine, repeat: int
) -> dict[str, dict[str, Any]]:
    """Each file on its own: kvctl and Porcupine alternately, the best of `repeat` rounds."""
    rows: dict[str, dict[str, Any]] = {}
    for _ in range(repeat):
        go = porcupine.each(paths, 3)
        for path in paths:
            start = CLOCK()
            history = load(path)
            loaded = CLOCK()
            best, _, valid = timed(lambda h=history: check(h).valid, 3)  # as the harness does
            row = rows.setdefault(path.name, {"load": 1e9, "check": 1e9, "go_parse": 1e9})
            row.update(valid=valid, go_valid=go[path.name][0])
            row["load"] = min(row["load"], loaded - start)
            row["check"] = min(row["check"], best)
            row["go_parse"] = min(row["go_parse"], go[path.name][1])
            row["go_check"] = min(row.get("go_check", 1e9), go[path.name][2])
    for name, row in rows.items():
        assert row["valid"] is row["go_valid"], f"{name}: kvctl and Porcupine disagree"
    return rows


def bench_etcd(corpus: Path, porcupine: Porcupine, repeat: int) -> dict[str, Any]:
    paths = sorted((corpus / "porcupine" / "jepsen").glob("etcd_*.log"))
    histories = [load(p) for p in paths]
    ops = [relevant_ops(h) for h in histories]
    exact = [Register(o).exact() for o in ops]
    total = timed(lambda: [check(load(p)).valid for p in paths], repeat)
    go_total = min(porcupine.total(paths)[0] for _ in range(repeat))
    ours = timed(lambda: [check(h).valid for h in histories], repeat)
    explained = timed(lambda: [check(h).explanation for h in histories], repeat)
    base = timed(
        lambda: [porcupine_baseline(o, m) for o, m in zip(ops, exact, strict=True)], repeat
    )
    assert ours[2] == base[2], "the baseline and the checker disagree"
    files = per_file(paths, porcupine, repeat)
    hardest = sorted(files, key=lambda name: files[name]["go_check"], reverse=True)[:10]
    rows = []
    for name in hardest:
        k = [p.name for p in paths].index(name)
        theirs = timed(lambda k=k: porcupine_baseline(ops[k], exact[k]), max(1, repeat // 2))
        rows.append(
            {
                "file": name,
                "valid": files[name]["valid"],
                "ours_ms": files[name]["check"] * 1e3,
                "baseline_ms": theirs[0] * 1e3,
                "porcupine_go_ms": files[name]["go_check"] * 1e3,
            }
        )
    return {
        "search": "compiled (kvctl/checker/_csearch.c)" if COMPILED else "Python (not compiled)",
        "files": len(paths),
        "load_and_check_s": total[:2],
        "check_s": ours[:2],
        "check_and_explain_s": explained[:2],
        "baseline_s": base[:2],
        "porcupine_go_s": go_total,
        "porcupine_go_check_s": sum(f["go_check"] for f in files.values()),
        "per_file": files,
        "hardest": rows,
    }


def bench_c50(corpus: Path, budget: float, repeat: int) -> list[dict[str, Any]]:
    rows = []
    for name in ("c50-ok", "c50-bad"):
        history = load(corpus / "porcupine" / "kv" / f"{name}.txt")
        parts: dict[Any, list[Op]] = {}
        for op in history.ops:
            parts.setdefault(op.key, []).append(op)
        for key in sorted(parts, key=int):
            ops = parts[key]
            best, _, r = timed(
                lambda h=history, k=key, o=ops: check_key(h, Kv, k, o, None, budget), repeat
            )
            rows.append(
                {
                    "file": name,
                    "key": key,
                    "ops": r.ops,
                    "valid": r.valid,
                    "by": r.by,
                    "seconds": best,
                    "steps": r.steps,
                }
            )
    return rows


def report(etcd: dict[str, Any], c50: list[dict[str, Any]], load: list[float]) -> None:
    (t_min, t_med), (c_min, c_med) = etcd["load_and_check_s"], etcd["check_s"]
    b_min, go = etcd["baseline_s"][0], etcd["porcupine_go_s"]
    go_check = etcd["porcupine_go_check_s"]
    files = etcd["per_file"].values()
    n = etcd["files"]
    print(f"kvctl's search loop: {etcd['search']}")
    print(f"etcd, {n} histories together (min / median over the repeats):")
    print(f"  kvctl, load + check          {t_min:7.3f} s / {t_med:.3f} s")
    print(f"  Porcupine (Go), parse + check {go:6.3f} s   ({go / t_min:.1f}x kvctl's)")
    print(f"  kvctl, check only            {c_min:7.3f} s / {c_med:.3f} s")
    e_min, e_med = etcd["check_and_explain_s"]
    print(f"  kvctl, check + explanations  {e_min:7.3f} s / {e_med:.3f} s")
    print(f"  Porcupine (Go), check only   {go_check:7.3f} s   ({go_check / c_min:.1f}x kvctl's)")
    print(f"  Porcupine in Python          {b_min:7.3f} s   ({b_min / c_min:.1f}x kvctl's check)")
    read_wins = sum(f["load"] + f["check"] < f["go_parse"] + f["go_check"] for f in files)
    check_wins = sum(f["check"] < f["go_check"] for f in files)
    print("\nfile by file (best of the repeats each), kvctl faster than Porcupine on:")
    print(f"  read + check  {read_wins:3} of {n} files")
    print(f"  check only    {check_wins:3} of {n} files")
    for what, ours, theirs in (
        ("read", ("load",), ("go_parse",)),
        ("check", ("check",), ("go_check",)),
        ("both", ("load", "check"), ("go_parse", "go_check")),
    ):
        a = statistics.median(sum(f[k] for k in ours) for f in files) * 1e6
        b = statistics.median(sum(f[k] for k in theirs) for f in files) * 1e6
        print(f"  median {what:6} kvctl {a:7.0f} us, Porcupine {b:7.0f} us ({a / b:.2f}x)")
    print("\nthe ten hardest for Porcupine, one by one (check only, ms):")
    print(f"  {'file':14} {'verdict':8} {'kvctl':>8} {'Py port':>8} {'Go':>8}")
    for r in etcd["hardest"]:
        verdict = "ok" if r["valid"] else "illegal"
        print(
            f"  {r['file']:14} {verdict:8} {r['ours_ms']:8.2f} {r['baseline_ms']:8.2f} "
            f"{r['porcupine_go_ms']:8.2f}"
        )
    print("\nc50, key by key, each on its own with the budget:")
    print(f"  {'file':8} {'key':>3} {'ops':>4} {'verdict':8} {'by':6} {'seconds':>8} {'steps':>8}")
    for r in c50:
        verdict = {True: "ok", False: "illegal"}.get(r["valid"], "unknown")
        print(
            f"  {r['file']:8} {r['key']:>3} {r['ops']:4} {verdict:8} {r['by']:6} "
            f"{r['seconds']:8.3f} {r['steps']:8}"
        )
    print(f"  slowest key: {max(r['seconds'] for r in c50):.3f} s")
    print(f"\nload average (1 min) before and after the run: {load[0]:.2f}, {load[1]:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--porcupine", type=Path, default=PORCUPINE, help="Porcupine's source")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--budget", type=float, default=10.0)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--cpu", action="store_true", help="measure CPU time, not wall time")
    args = parser.parse_args()
    if args.cpu:
        global CLOCK
        CLOCK = time.process_time
    load = [os.getloadavg()[0]]  # others' work slows both sides alike, but not evenly
    with tempfile.TemporaryDirectory(prefix="porcupine-") as work:
        porcupine = Porcupine(args.porcupine, Path(work))
        etcd = bench_etcd(args.corpus, porcupine, args.repeat)
    c50 = bench_c50(args.corpus, args.budget, args.repeat)
    load.append(os.getloadavg()[0])
    if args.json:
        print(json.dumps({"etcd": etcd, "c50": c50, "load_average": load}, indent=1))
    else:
        report(etcd, c50, load)


if __name__ == "__main__":
    main()
