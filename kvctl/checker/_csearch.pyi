"""kvctl/checker/_csearch.c: search.python_loop, compiled (see search.py)."""

from kvctl.checker.search import Loop

search: Loop
