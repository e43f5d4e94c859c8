"""Latency and throughput over time, as geometry for inline SVG (no gnuplot, no JavaScript).

Each function returns plain data (circles, lines, bands, ticks) that the template draws;
every label is text the template escapes. Plots stay light however long the run: at most
`MAX_POINTS` latency points (every failure and unknown first, then a sample of the rest) and
at most about 120 throughput buckets.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from kvctl.report.stats import TYPES, Point, Window

WIDTH, HEIGHT = 1000, 300
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 12, 36
MAX_POINTS = 8000
COLORS = {"ok": "#2f7fd8", "fail": "#e0218a", "info": "#f39c12"}
DRAW_ORDER = {"ok": 0, "fail": 1, "info": 2}
FAULT_COLORS = {"partition": "#e9dca0", "kill": "#e9a4a0", "pause": "#a0b1e9", "netem": "#c9e8a0",
                "power": "#d0a0e9", "corrupt": "#e9c0a0"}


@dataclass
class Plot:
    """A chart area with its axes; x is seconds, y whatever the plot measures."""

    title: str
    x_max: float
    y_ticks: list[tuple[float, str]] = field(default_factory=list)  # (y pixel, label)
    x_ticks: list[tuple[float, str]] = field(default_factory=list)
    bands: list[dict[str, object]] = field(default_factory=list)
    circles: list[tuple[float, float, str]] = field(default_factory=list)  # x, y, type
    lines: list[tuple[str, str]] = field(default_factory=list)  # type, "x,y x,y ..."
    note: str = ""
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    top: int = TOP
    bottom: float = HEIGHT - BOTTOM
    right: float = WIDTH - RIGHT

    def x(self, seconds: float) -> float:
        span = self.x_max or 1.0
        return round(self.left + (self.right - self.left) * min(max(seconds, 0.0), span) / span, 1)


def nice_step(span: float, target: int = 8) -> float:
    """1, 2 or 5 times a power of ten, giving about `target` steps over `span`."""
    if span <= 0:
        return 1.0
    raw = span / target
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


def _seconds(plot: Plot) -> None:
    step = nice_step(plot.x_max)
    plot.x_ticks = [(plot.x(k * step), f"{k * step:g} s")
                    for k in range(int(plot.x_max / step) + 1)]


def _bands(plot: Plot, windows: Sequence[Window]) -> None:
    for w in windows:
        x0, x1 = plot.x(w.start), plot.x(w.end)
        plot.bands.append({
            "x": x0, "width": max(1.0, x1 - x0), "fault": w.fault,
            "color": FAULT_COLORS.get(w.fault, "#dddddd"),
            "title": f"{w.fault} {w.start:.1f}-{w.end:.1f} s: {w.summary}",
        })


def latency(points: Sequence[Point], windows: Sequence[Window], seconds: float,
            rng: random.Random | None = None) -> Plot:
    """Each operation's latency (log scale) at the time it was invoked, by outcome."""
    plot = Plot("Latency over time", seconds)
    _seconds(plot)
    _bands(plot, windows)
    shown = sample(points, rng or random.Random(0))
    if len(shown) < len(points):
        plot.note = (f"{len(shown):,} of {len(points):,} operations shown: every info, and "
                     "a uniform sample of the rest")
    if not shown:
        return plot
    low = math.floor(math.log10(max(min(p.latency for p in shown), 0.01)))
    high = max(low + 1, math.ceil(math.log10(max(max(p.latency for p in shown), 0.01))))

    def y(ms: float) -> float:
        frac = (math.log10(max(ms, 10 ** low)) - low) / (high - low)
        return round(plot.bottom - (plot.bottom - plot.top) * frac, 1)

    plot.y_ticks = [(y(10 ** e), _ms(10 ** e)) for e in range(low, high + 1)]
    plot.circles = [(plot.x(p.time), y(p.latency), p.type) for p in shown]
    return plot


def sample(points: Sequence[Point], rng: random.Random) -> list[Point]:
    """At most MAX_POINTS points, in drawing order (ok first, so the rarer outcomes lie on
    top): every info (up to a quarter of them), then a uniform sample of the others."""
    if len(points) > MAX_POINTS:
        info = [p for p in points if p.type == "info"]
        info = info if len(info) <= MAX_POINTS // 4 else rng.sample(info, MAX_POINTS // 4)
        rest = [p for p in points if p.type != "info"]
        points = info + rng.sample(rest, min(len(rest), MAX_POINTS - len(info)))
    return sorted(points, key=lambda p: DRAW_ORDER[p.type])


def throughput(points: Sequence[Point], windows: Sequence[Window], seconds: float) -> Plot:
    """Completions per second, by outcome, in buckets of a nice width."""
    plot = Plot("Throughput over time", seconds)
    _seconds(plot)
    _bands(plot, windows)
    bucket = max(nice_step(seconds, 120), 0.5)
    n = max(1, math.ceil(seconds / bucket))
    rates = {t: [0.0] * n for t in TYPES}
    for p in points:
        rates[p.type][min(n - 1, int(p.time / bucket))] += 1 / bucket
    top = max((max(r) for r in rates.values()), default=0.0) or 1.0
    step = nice_step(top, 5)
    ceiling = math.ceil(top / step) * step

    def y(rate: float) -> float:
        return round(plot.bottom - (plot.bottom - plot.top) * rate / ceiling, 1)

    plot.y_ticks = [(y(k * step), f"{k * step:g}/s") for k in range(int(ceiling / step) + 1)]
    for t in TYPES:
        if any(rates[t]):
            coords = (f"{plot.x((i + 0.5) * bucket)},{y(r)}" for i, r in enumerate(rates[t]))
            plot.lines.append((t, " ".join(coords)))
    plot.note = f"buckets of {bucket:g} s"
    return plot


def _ms(ms: float) -> str:
    return f"{ms / 1000:g} s" if ms >= 1000 else f"{ms:g} ms"
