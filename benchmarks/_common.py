"""Shared by the benchmark scripts: the machine description and writing results JSON."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import json
import os
import platform
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def machine(*dists: str) -> dict:
    versions = {}
    for d in ("pragmatiq", "torch", "numpy", "pyarrow", "tokenizers", *dists):
        try:
            versions[d] = importlib.metadata.version(d)
        except importlib.metadata.PackageNotFoundError:
            pass
    try:
        import psutil

        ram = round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:
        ram = None
    return {"platform": platform.platform(), "processor": platform.processor() or _cpu_model(),
            "cpu": _cpu_isa(), "python": platform.python_version(), "cpu_count": os.cpu_count(), "ram_gb": ram,
            "load_average": os.getloadavg(), "versions": versions, **_gpu()}


def _gpu() -> dict:
    """{"gpu": name, "cuda": version} when torch sees a CUDA device, else {}."""
    try:
        import torch
    except ImportError:
        return {}
    if not torch.cuda.is_available():
        return {}
    return {"gpu": torch.cuda.get_device_name(0), "gpu_count": torch.cuda.device_count(), "cuda": torch.version.cuda}


def _cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else ""."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def _cpu_isa() -> dict:
    """What the CPU kernels can use: torch's vector capability and native bf16 (the hosts this
    project's numbers come from differ: AVX2 only, or AVX-512 with bf16)."""
    try:
        import torch

        from pragmatiq._hardware import cpu_has_bf16
    except ImportError:
        return {}
    return {"torch_capability": torch.backends.cpu.get_cpu_capability(), "native_bf16": cpu_has_bf16()}


def write_result(name: str, payload: dict, results_dir: Path | None = None) -> Path:
    out = Path(results_dir) if results_dir is not None else RESULTS
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.json"
    body = {"benchmark": name, "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "command": "python " + " ".join(sys.argv), "machine": machine(), **payload}
    path.write_text(json.dumps(body, indent=2, default=float))
    return path


def table(rows: list[tuple]) -> str:
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(r, widths)) for r in rows)


def quick_run(root: Path, size: str, n_users: int) -> tuple[Path, Path]:
    """A synthetic book under root/data and a `size` run trained for one step (speed does not
    depend on the weights) -> (data_dir, run_dir)."""
    from pragmatiq import api

    api.synthesize({"n_users": n_users, "seed": 0}, out=root / "data", n_workers=2, progress=False)
    api.tokenize(root / "data", root / "tok", n_workers=2, progress=False)
    run = api.pretrain(root / "tok", "bench", model_size=size, progress=False, runs_root=root,
                       config={"max_steps": 1, "token_budget": 4096, "eval_every": 0, "checkpoint_every": 10**9})
    return root / "data", run
