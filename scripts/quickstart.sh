#!/usr/bin/env bash
# Set up the environment and run the quickstart end to end on a synthetic bank.
# Extra arguments go to `pragmatiq quickstart`, e.g. `bash scripts/quickstart.sh --n-users 500`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh serve,dev
exec "${PRAGMATIQ_VENV:-.venv}/bin/pragmatiq" quickstart "$@"
