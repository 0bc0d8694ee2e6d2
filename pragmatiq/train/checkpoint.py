"""Checkpoints: everything a bit-exact resume needs, written atomically."""

from __future__ import annotations

import os
import pickle
import random
import zipfile
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


def _intact(path: Path) -> bool:
    """Whether `path` looks like a whole torch.save file: a zip archive whose central directory (written
    last, so the first thing a truncation loses) names the pickle."""
    try:
        with zipfile.ZipFile(path) as z:
            return any(n.endswith("data.pkl") for n in z.namelist())
    except (zipfile.BadZipFile, OSError, ValueError):
        return False


def _step(path: Path) -> int:
    try:
        return int(path.stem.split("-", 1)[1])
    except (IndexError, ValueError):
        return -1


def load_checkpoint(path: Path) -> dict:
    """torch.load a checkpoint; a truncated, empty or foreign file raises a ValueError naming it and
    the newest intact step-N.pt beside it, which can be copied over it to resume."""
    path = Path(path)
    why = None if _intact(path) else ("the file is empty" if path.is_file() and not path.stat().st_size
                                      else "its zip directory is missing: the file ends early")
    if why is None:
        try:
            # our own file: RNG states and optimizer states need full unpickling
            return torch.load(path, map_location="cpu", weights_only=False)
        except (FileNotFoundError, PermissionError, IsADirectoryError):
            raise
        # EOFError (an empty file) must not escape: click reads it as an aborted prompt ("Aborted!")
        except (ValueError, EOFError, RuntimeError, OSError, pickle.UnpicklingError) as exc:
            why = f"{type(exc).__name__}: {(str(exc).splitlines() or ['no data'])[0]}"
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    steps = sorted((p for p in path.parent.glob("step-*.pt") if p != path and _step(p) >= 0), key=_step, reverse=True)
    good = next((p for p in steps if _intact(p)), None)
    if good is not None:
        fix = (f"the newest intact checkpoint beside it is {good.name} (step {_step(good)}): copy it over "
               f"{path.name} to resume from there (cp {good} {path}), or start over with --no-resume (resume=False)")
    else:
        fix = "no intact step-N.pt is beside it; start over with --no-resume (resume=False), which overwrites it"
    raise ValueError(f"{path} is damaged ({path.stat().st_size:,} bytes, truncated or not a checkpoint: {why}); {fix}")


def rotate(directory: Path, keep: int) -> None:
    steps = sorted(directory.glob("step-*.pt"), key=lambda p: int(p.stem.split("-")[1]))
    for old in steps[:-keep] if keep > 0 else steps:
        old.unlink(missing_ok=True)
