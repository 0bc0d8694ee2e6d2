#!/usr/bin/env bash
# Set up the environment (CPU torch, pragmatiq[serve,text,dev]) and run the whole test suite,
# slow tests included. Extra arguments go to pytest, e.g. `bash scripts/test.sh -m "not slow"`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh serve,text,dev
exec "${PRAGMATIQ_VENV:-.venv}/bin/python" -m pytest -q "$@"
