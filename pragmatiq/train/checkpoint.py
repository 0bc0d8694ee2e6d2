"""Checkpoints: everything a bit-exact resume needs, written atomically."""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import torch


def rng_state() -> dict:
    """This process's RNG states: Python, NumPy, torch's CPU generator and, with CUDA, its own GPU's
    (the current device: each torchrun rank sets its own), not every visible GPU's."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    cuda = state.get("cuda")
    if cuda is not None and torch.cuda.is_available():
        if isinstance(cuda, (list, tuple)):  # written by an earlier version: every visible GPU's state
            here = torch.cuda.current_device()
            cuda = cuda[here] if here < len(cuda) else None
        if cuda is not None:
            torch.cuda.set_rng_state(cuda)


def _write_atomically(path: Path, write) -> None:
    """write(tmp) to a temporary file in path's directory, then rename it to path: a crash never
    leaves a half-written file at `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    write(tmp)
    os.replace(tmp, path)


def save_checkpoint(path: Path, state: dict) -> None:
    """torch.save `state` to `path`, atomically."""
    _write_atomically(path, lambda tmp: torch.save(state, tmp))


def copy_checkpoint(src: Path, dst: Path) -> None:
    """Copy the checkpoint `src` to `dst`, atomically."""
    import shutil

    _write_atomically(dst, lambda tmp: shutil.copyfile(src, tmp))


def load_checkpoint(path: Path) -> dict:
    # our own file: RNG states and optimizer states need full unpickling
    return torch.load(path, map_location="cpu", weights_only=False)


def rotate(directory: Path, keep: int) -> None:
    steps = sorted(directory.glob("step-*.pt"), key=lambda p: int(p.stem.split("-")[1]))
    for old in steps[:-keep] if keep > 0 else steps:
        old.unlink(missing_ok=True)
