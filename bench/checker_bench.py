"""Benchmark of the linearizability checker, side by side in one run.

1. etcd: the 102 Jepsen etcd histories of Porcupine's tests, all together: load and check,
   check only, and a plain Python transliteration of Porcupine's search (`checkSingle`: linked
   list, bitset, memo of (linearized, state); no pruning) on the same operations. Porcupine's
   own Go figures come from the corpus manifest (measured on this machine).
2. hardest: the ten etcd histories Porcupine finds hardest (largest time in the manifest), one
   by one, the same three ways.
3. c50: every key of kv/c50-ok and kv/c50-bad on its own, with the budget (Porcupine cannot
   decide keys "0" and "9" of c50-bad in 60 s each).

Times are the minimum over --repeat runs (the median is shown too), wall clock unless --cpu.

    python bench/checker_bench.py [--corpus DIR] [--repeat N] [--budget SECONDS] [--cpu] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from kvctl.checker import check, load
from kvctl.checker.check import check_key
from kvctl.checker.kv import Kv
from kvctl.checker.register import Register
from kvctl.history import History, Op

CORPUS = Path(__file__).resolve().parents[1] / ".." / "shared" / "reference-histories"


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


def manifest_ms(corpus: Path) -> dict[str, float]:
    """Porcupine's Go time (ms) per etcd file, from the manifest table."""
    ms = {}
    for line in (corpus / "porcupine" / "MANIFEST.md").read_text().splitlines():
        cells = [c.strip() for c in line.split("|")]
        if len(cells) > 8 and cells[1].startswith("jepsen/etcd_"):
            ms[cells[1].removeprefix("jepsen/")] = float(cells[7])
    return ms


def relevant_ops(history: History) -> list[Op]:
    model = Register(history.ops)
    return [op for op in history.ops if model.relevant(op)]


def bench_etcd(corpus: Path, repeat: int) -> dict[str, Any]:
    paths = sorted((corpus / "porcupine" / "jepsen").glob("etcd_*.log"))
    histories = [load(p) for p in paths]
    ops = [relevant_ops(h) for h in histories]
    exact = [Register(o).exact() for o in ops]
    go = manifest_ms(corpus)
    total = timed(lambda: [check(load(p)).valid for p in paths], repeat)
    ours = timed(lambda: [check(h).valid for h in histories], repeat)
    base = timed(
        lambda: [porcupine_baseline(o, m) for o, m in zip(ops, exact, strict=True)], repeat
    )
    assert ours[2] == base[2], "the baseline and the checker disagree"
    hardest = sorted(go, key=go.__getitem__, reverse=True)[:10]
    rows = []
    for name in hardest:
        k = [p.name for p in paths].index(name)
        mine = timed(lambda k=k: check(histories[k]).valid, repeat)
        theirs = timed(lambda k=k: porcupine_baseline(ops[k], exact[k]), max(1, repeat // 2))
        rows.append(
            {
                "file": name,
                "valid": mine[2],
                "ours_ms": mine[0] * 1e3,
                "baseline_ms": theirs[0] * 1e3,
                "porcupine_go_ms": go[name],
            }
        )
    return {
        "files": len(paths),
        "load_and_check_s": total[:2],
        "check_s": ours[:2],
        "baseline_s": base[:2],
        "porcupine_go_s": sum(go.values()) / 1e3,
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


def report(etcd: dict[str, Any], c50: list[dict[str, Any]]) -> None:
    (t_min, t_med), (c_min, c_med) = etcd["load_and_check_s"], etcd["check_s"]
    b_min, go = etcd["baseline_s"][0], etcd["porcupine_go_s"]
    print(f"etcd, {etcd['files']} histories together (min / median over the repeats):")
    print(f"  kvctl, load + check        {t_min:7.3f} s / {t_med:.3f} s")
    print(f"  kvctl, check only          {c_min:7.3f} s / {c_med:.3f} s")
    print(f"  Porcupine in Python        {b_min:7.3f} s   ({b_min / c_min:.1f}x kvctl's check)")
    print(f"  Porcupine in Go (manifest) {go:7.3f} s   ({go / t_min:.1f}x kvctl's load + check)")
    print("\nthe ten hardest for Porcupine, one by one (ms):")
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--budget", type=float, default=10.0)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--cpu", action="store_true", help="measure CPU time, not wall time")
    args = parser.parse_args()
    if args.cpu:
        global CLOCK
        CLOCK = time.process_time
    etcd = bench_etcd(args.corpus, args.repeat)
    c50 = bench_c50(args.corpus, args.budget, args.repeat)
    if args.json:
        print(json.dumps({"etcd": etcd, "c50": c50}, indent=1))
    else:
        report(etcd, c50)


if __name__ == "__main__":
    main()
