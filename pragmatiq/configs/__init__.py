"""Bundled YAML configs (`configs/` in the repository is a link to this folder)."""

from __future__ import annotations

from pathlib import Path

CONFIG_DIR = Path(__file__).resolve().parent


def config_path(path: str | Path) -> Path:
    """Resolve a config path as given, falling back to the bundled copy.

    `configs/data/synthetic.yaml` works from a repository checkout (relative to the current
    directory) and from a pip install (the same file shipped inside the package).
    """
    p = Path(path)
    if p.exists():
        return p
    parts = p.parts
    if parts and parts[0] == "configs":
        bundled = CONFIG_DIR.joinpath(*parts[1:])
        if bundled.exists():
            return bundled
    bundled = CONFIG_DIR / p
    if not p.is_absolute() and bundled.exists():
        return bundled
    raise FileNotFoundError(
        f"config file not found: {path} (looked relative to {Path.cwd()} and in {CONFIG_DIR})"
    )
