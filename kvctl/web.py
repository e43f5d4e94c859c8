"""`kvctl serve`: browse the store: a list of runs, newest first, each linking its report.

Plain standard-library HTTP: the list page is made fresh on each request, everything else is
a file of the store. Paths are resolved and must stay inside the store directory.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import partial
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from kvctl import report, store


def listing(root: Path) -> str:
    """The page that lists every run."""
    rows = []
    for summary in store.runs(root):
        run, test, results = summary.run, summary.test, summary.results or {}
        counts = (results.get("counts") or {}).get("all") or {}
        try:
            when = datetime.strptime(run.stamp.split("-")[0], store.STAMP)
            shown = when.strftime("%Y-%m-%d %H:%M:%S")
        except ValueError:
            shown = run.stamp
        rows.append({
            "href": f"{run.name}/{run.stamp}/index.html",
            "dir": f"{run.name}/{run.stamp}/",
            "name": run.name,
            "time": shown,
            "faults": ", ".join(test.get("faults") or []) or "none",
            "nodes": test.get("nodes", ""),
            "reads": test.get("read_mode", ""),
            "seconds": test.get("time_limit", ""),
            "ops": sum(counts.values()) if counts else "",
            "verdict": report.verdict(summary.valid if summary.results else None),
            "done": summary.results is not None,
        })
    return report.page("runs.html", rows=rows, root=str(root))


class StoreHandler(SimpleHTTPRequestHandler):
    """The list at /, the store's files elsewhere."""

    def __init__(self, *args: Any, root: Path, **kwargs: Any) -> None:
        self.root = root.resolve()
        super().__init__(*args, directory=str(self.root), **kwargs)

    def do_GET(self) -> None:
        if self.path.split("?")[0] in ("/", "/index.html"):
            body = listing(self.root).encode()
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        target = Path(self.translate_path(self.path)).resolve()
        if not target.is_relative_to(self.root):
            self.send_error(HTTPStatus.NOT_FOUND, "not in the store")
            return
        super().do_GET()

    def guess_type(self, path: Any) -> str:
        name = str(path)
        if name.endswith((".jsonl", ".log")):
            return "text/plain; charset=utf-8"
        if name.endswith(".json"):
            return "application/json"
        return super().guess_type(path)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: one line per request is noise in a terminal."""


def serve(root: Path, host: str, port: int, say: Callable[[str], None]) -> None:
    """Serve the store until Ctrl-C."""
    server = ThreadingHTTPServer((host, port), partial(StoreHandler, root=root))
    say(f"serving {root.resolve()} at http://{host}:{server.server_port}/ (Ctrl-C stops)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
