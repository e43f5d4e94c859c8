#!/usr/bin/env bash
# The README's test command: install what the tests need, then run the whole suite.
# Usage: bash scripts/test.sh [pytest args...]   (e.g. -m "not slow" for the fast set)
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install --quiet --disable-pip-version-check -e '.[test]'
python3 -m ruff check .
python3 -m pytest -q "$@"
