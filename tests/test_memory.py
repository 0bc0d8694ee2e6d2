"""Malloc hygiene helpers: accepted by glibc, harmless elsewhere."""

import platform
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pragmatiq._memory import _libc, release_memory, tune_malloc

glibc = pytest.mark.skipif(platform.libc_ver()[0] != "glibc" or _libc() is None, reason="needs glibc")


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


@glibc
def test_glibc_accepts_the_malloc_settings():
    assert tune_malloc() is True


SCENARIO = """
import numpy as np
from pragmatiq._memory import tune_malloc
from tests.test_memory import rss_mb
assert tune_malloc() is True
big = np.ones(30 << 20, np.uint8)
del big
block = np.ones(20 << 20, np.uint8)
held = rss_mb()
del block
print(held - rss_mb())
"""


@glibc
def test_a_large_free_does_not_move_large_blocks_onto_the_heap():
    # glibc's dynamic threshold would rise to 30 MB here and put the next 20 MB block on the
    # heap, where freeing it keeps it resident; pinned at 16 MiB, it is mapped and unmapped.
    # A fresh process: in this one, earlier tests may have left free heap that a block reuses
    out = subprocess.run([sys.executable, "-c", SCENARIO], capture_output=True,
                         text=True, check=True, cwd=Path(__file__).resolve().parents[1])
    assert float(out.stdout) > 15  # MiB handed back by the free


@glibc
def test_release_memory_returns_freed_heap():
    # many mid-size blocks below the mmap threshold land on the heap; free every other one and
    # the heap cannot shrink by itself (its top is still in use) until malloc_trim returns the holes
    blocks = [np.ones(8_192) for _ in range(16_000)]  # 64 KiB each, ~1 GiB
    del blocks[::2]
    before = rss_mb()
    release_memory()
    assert rss_mb() < before - 200
