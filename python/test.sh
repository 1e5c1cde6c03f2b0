#!/usr/bin/env bash
# The Python package's tests: builds the extension into a local virtual environment (made on
# first use, with what requirements-test.txt pins) and runs pytest. `cargo test --release`
# runs this (tests/integration/python.rs), after writing the reference steps the tests compare
# with; run alone, the tests that need those are skipped with a message.
#
#   python/test.sh [PYTEST ARGS...]      OPTC_VENV=DIR to use another environment
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${OPTC_VENV:-target/venv}
python=${PYTHON:-python3}
if [ ! -x "$venv/bin/python" ]; then
  echo "python/test.sh: making $venv" >&2
  "$python" -m venv "$venv"
fi
venv=$(cd "$venv" && pwd)
# Install the requirements when they changed since the last install (pip is slow to say so).
# Without pip's cache: torch's CUDA wheels would take 3 GB more disk, kept for no later use.
stamp="$venv/.optc-requirements"
if ! cmp -s python/requirements-test.txt "$stamp"; then
  "$venv/bin/pip" install --disable-pip-version-check --no-cache-dir -q -r python/requirements-test.txt
  cp python/requirements-test.txt "$stamp"
fi
# The package as a user installs it (`pip install ./python`), from this checkout.
PATH="$venv/bin:$PATH" "$venv/bin/pip" install --disable-pip-version-check -q --no-build-isolation --force-reinstall --no-deps ./python
exec "$venv/bin/python" -m pytest -q python/tests "$@"
