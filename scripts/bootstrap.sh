#!/usr/bin/env bash
# Create (or update) the project's virtual environment: the pinned CPU build of torch first,
# then pragmatiq in editable mode with the extras given as $1 (default: serve,dev).
#
#   PRAGMATIQ_VENV        where the venv lives            (default .venv)
#   PRAGMATIQ_TORCH_SPEC  the torch requirement to install (default torch==2.13.0, the CPU
#                         wheel; set e.g. "torch==2.13.0 --index-url <cuda index>" for a GPU)
#   PYTHON                the interpreter for a new venv   (default python3, needs >= 3.11)
set -euo pipefail
cd "$(dirname "$0")/.."

venv=${PRAGMATIQ_VENV:-.venv}
torch_spec=${PRAGMATIQ_TORCH_SPEC:-torch==2.13.0}
extras=${1:-serve,dev}

if [ ! -x "$venv/bin/python" ]; then
  "${PYTHON:-python3}" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip install --quiet --disable-pip-version-check)
# torch first and pinned: an unpinned torch would pull several GB of CUDA packages.
# shellcheck disable=SC2086
"${pip[@]}" $torch_spec
"${pip[@]}" -e ".[${extras}]"
echo "pragmatiq environment ready: $venv ($("$venv/bin/pragmatiq" --version))" >&2
