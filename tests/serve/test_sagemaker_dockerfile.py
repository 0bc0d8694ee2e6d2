"""The SageMaker serving image's Dockerfile, parsed (no Docker daemon here to build it)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

DOCKERFILE = Path(__file__).resolve().parents[2] / "deploy" / "sagemaker" / "Dockerfile"


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs with comments dropped and continuations joined."""
    out, buf = [], ""
    for line in text.splitlines():
        if not buf and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            buf += line.rstrip()[:-1] + " "
            continue
        buf += line
        op, _, args = buf.strip().partition(" ")
        out.append((op.upper(), " ".join(args.split())))
        buf = ""
    assert not buf, "dangling line continuation"
    return out


def test_dockerfile_instructions():
    ins = instructions(DOCKERFILE.read_text())
    ops = [op for op, _ in ins]
    assert set(ops) <= {"ARG", "FROM", "ENV", "RUN"}, ops  # no COPY, no ENTRYPOINT/CMD override
    first_from = ops.index("FROM")
    assert ops.count("FROM") == 1
    assert ("ARG", "BASE_IMAGE") in ins[:first_from]  # region-specific base, no default
    assert ins[first_from] == ("FROM", "${BASE_IMAGE}")
    runs = [args for op, args in ins if op == "RUN"]
    pip_runs = [r for r in runs if "pip install" in r]
    assert pip_runs, "nothing is installed"
    install = " ".join(pip_runs)
    assert '"${TORCH_INDEX_URL}"' in install and "--index-url" in install
    assert "python3 -m pip" in install  # the interpreter the python-backend stub runs
    args = dict(a.split("=", 1) for op, a in ins if op == "ARG" and "=" in a)
    assert shlex.split(args["PRAGMATIQ_SPEC"]) == ["pragmatiq[serve]"]
    assert args["TORCH_INDEX_URL"].startswith("https://download.pytorch.org/whl/")
    # torch is installed before pragmatiq so pip keeps the chosen build
    assert install.index("TORCH_SPEC") < install.index("PRAGMATIQ_SPEC")
    # the Python >= 3.11 guard runs before any install, the import check after
    py_check = next(i for i, r in enumerate(runs) if "sys.version_info" in r)
    import_check = next(i for i, r in enumerate(runs) if "import numpy, torch, pragmatiq" in r)
    first_pip = runs.index(pip_runs[0])
    assert py_check < first_pip < import_check
    env = " ".join(a for op, a in ins if op == "ENV")
    assert re.search(r"PIP_BREAK_SYSTEM_PACKAGES=1", env)


def test_readme_covers_the_operational_notes():
    text = (DOCKERFILE.parent / "README.md").read_text()
    for needle in ("EXECUTION_ENV_PATH", "conda-pack", "SAGEMAKER_TRITON_SHM_DEFAULT_BYTE_SIZE",
                   "shm_bytes_for", "ml.g4dn.xlarge", "ml.g5", "stub"):
        assert needle in text, needle
