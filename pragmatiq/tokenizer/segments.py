"""Offset arithmetic over segments given by their lengths (empty inputs allowed)."""

from __future__ import annotations

import numpy as np


def starts(lengths: np.ndarray) -> np.ndarray:
    """First index of every segment: (S,) lengths -> (S,) starts."""
    return np.cumsum(lengths) - lengths


def ranks(lengths: np.ndarray) -> np.ndarray:
    """Index of every element within its segment: (S,) lengths -> (sum lengths,)."""
    lengths = np.asarray(lengths, np.int64)
    return np.arange(int(lengths.sum())) - np.repeat(starts(lengths), lengths)
