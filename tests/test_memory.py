"""Malloc hygiene helpers: accepted by glibc, harmless elsewhere."""

import platform
import resource

import numpy as np
import pytest

from pragmatiq._memory import _libc, limit_malloc_arenas, release_memory

glibc = pytest.mark.skipif(platform.libc_ver()[0] != "glibc" or _libc() is None, reason="needs glibc")


@glibc
def test_glibc_accepts_the_arena_cap():
    assert limit_malloc_arenas() is True


@glibc
def test_release_memory_returns_freed_heap():
    def rss_mb() -> float:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * resource.getpagesize() / 2**20

    # many mid-size blocks below the mmap threshold land on the heap; free every other one and
    # the heap cannot shrink by itself (its top is still in use) until malloc_trim returns the holes
    blocks = [np.ones(8_192) for _ in range(16_000)]  # 64 KiB each, ~1 GiB
    del blocks[::2]
    before = rss_mb()
    release_memory()
    assert rss_mb() < before - 200
