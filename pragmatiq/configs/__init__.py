"""Bundled YAML configs (`configs/` in the repository is a link to this folder)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

CONFIG_DIR = Path(__file__).resolve().parent


class _Loader(yaml.SafeLoader):
    """SafeLoader reading exponent floats without a dot (`1e-3`) as numbers, as YAML 1.2 does;
    PyYAML's YAML 1.1 rules read them as strings."""


_EXPONENT_FLOAT = re.compile(r"^[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)[eE][-+]?[0-9]+$")
_Loader.add_implicit_resolver("tag:yaml.org,2002:float", _EXPONENT_FLOAT, list("-+.0123456789"))


def check_range(where: str, name: str, value, bounds: tuple) -> None:
    """A number in its range, or a ValueError naming the setting: `bounds` is (lowest, highest or
    None, whether the lowest itself is allowed[, whether the highest is; default yes]); `where`
    prefixes the message, e.g. "pretraining config: "."""
    low, high, low_ok, high_ok = (*bounds, True)[:4]
    if (value < low or (value == low and not low_ok)
            or (high is not None and (value > high or (value == high and not high_ok)))):
        if high is None:
            span = f"{'>=' if low_ok else '>'} {low}"
        else:
            span = f"in {'[' if low_ok else '('}{low}, {high}{']' if high_ok else ')'}"
        raise ValueError(f"{where}{name} must be {span}, got {value!r}")


def read_yaml(path: str | Path) -> Any:
    """The YAML document in the file `path` (None when empty); a file that is not valid YAML
    is a ValueError naming it, with the line and column of the problem."""
    path = Path(path)
    try:
        text = path.read_text()
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a text (YAML) file") from None
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ValueError(f"{path}: not valid YAML{where}: {getattr(exc, 'problem', None) or exc}") from None


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
