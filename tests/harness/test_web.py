"""`kvctl serve`: the list of runs, the reports, and nothing outside the store."""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from functools import partial
from http.server import ThreadingHTTPServer

import pytest

from kvctl.web import StoreHandler

from .runs import stale_history, stored_run


def test_serve_lists_runs_newest_first_and_serves_their_reports(tmp_path):
    first = stored_run(tmp_path, stale_history())
    (tmp_path / "secret.txt").write_text("not for the web")
    (tmp_path / "store" / "leak.txt").symlink_to(tmp_path / "secret.txt")
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(StoreHandler, root=tmp_path / "store"))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}"
    try:
        second = stored_run(tmp_path, stale_history())
        listing = urllib.request.urlopen(f"{base}/", timeout=10).read().decode()
        assert "2 runs" in listing
        hrefs = [f"{r.name}/{r.stamp}/index.html" for r in (second, first)]
        assert listing.index(hrefs[0]) < listing.index(hrefs[1])  # newest first
        assert "INVALID" in listing and "partition" in listing
        page = urllib.request.urlopen(f"{base}/{hrefs[0]}", timeout=10).read().decode()
        assert "Timeline of key" in page
        history = urllib.request.urlopen(f"{base}/{first.name}/{first.stamp}/history.jsonl",
                                         timeout=10)
        assert history.headers["Content-Type"].startswith("text/plain")
        with pytest.raises(urllib.error.HTTPError) as outside:
            urllib.request.urlopen(f"{base}/leak.txt", timeout=10)
        assert outside.value.code == 404
    finally:
        server.shutdown()
        server.server_close()
