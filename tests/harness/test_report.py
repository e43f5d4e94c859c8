"""The report: what it shows for an invalid run, that it escapes what the history holds, that a
long key is drawn as a window, and that Chromium renders it without a console error."""

from __future__ import annotations

import subprocess

import pytest
from markupsafe import escape

from kvctl.report.timeline import MAX_OPS

from .runs import stale_history, stored_run


def test_an_invalid_run_shows_verdict_timeline_and_faults(tmp_path):
    run = stored_run(tmp_path, stale_history())
    results = run.read_json("results.json")
    assert results["valid"] is False
    page = run.file("index.html").read_text()
    assert page.index("INVALID") < page.index("Timeline of key")  # the verdict comes first
    assert "k-stale" in results["explanation"]
    assert str(escape(results["explanation"])) in page
    assert 'aria-label="timeline of key &#34;k-stale&#34;"' in page
    assert "✗ cannot be placed" in page
    assert "process 3 · n1" in page  # the node the stale reader talked to
    assert "start-partition" in page and "#e9dca0" in page  # the fault, and its band
    assert "http" not in page.replace("http://www.w3.org", "")  # nothing fetched from afar


def test_everything_from_the_history_is_escaped(tmp_path):
    run = stored_run(tmp_path, stale_history())
    page = run.file("index.html").read_text()
    assert "<img" not in page
    assert page.count("&lt;img src=x onerror=") >= 3  # a key, a fault summary, an error text


def test_a_long_key_is_drawn_as_the_window_around_its_failure(tmp_path):
    run = stored_run(tmp_path, stale_history(big=3000))
    results = run.read_json("results.json")
    big = next(k for k in results["keys"] if k["key"] == "k-big")
    assert big["valid"] is False and big["blocked"] is not None
    page = run.file("index.html").read_text()
    start = page.index('aria-label="timeline of key &#34;k-big&#34;"')
    drawn = page[start:page.index("</svg>", start)]
    assert 0 < drawn.count("<rect") - drawn.count('opacity="0.55"') <= MAX_OPS
    assert "of the key&#39;s 3000 operations" in page


@pytest.mark.slow
def test_chromium_renders_the_report_without_console_errors(tmp_path, chromium):
    run = stored_run(tmp_path, stale_history(big=300))
    url = run.file("index.html").resolve().as_uri()
    flags = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             "--enable-logging=stderr", "--v=0"]
    dom = subprocess.run([*flags, "--dump-dom", url], capture_output=True, text=True,
                         timeout=120, check=True)
    assert '<div class="word">INVALID</div>' in dom.stdout
    assert "<title>INVALID" in dom.stdout  # the injected onerror never ran
    console = [line for line in dom.stderr.splitlines() if ":CONSOLE" in line]
    assert console == []
    shot = tmp_path / "report.png"
    subprocess.run([*flags, "--window-size=1200,1600", f"--screenshot={shot}", url],
                   capture_output=True, timeout=120, check=True)
    assert shot.stat().st_size > 50_000  # a drawn page, not a blank one
