"""Process memory: the peak RSS so far, and hygiene for long CLI runs on glibc (Linux): fewer
malloc arenas, and freed heap handed back to the OS between stages (both no-ops where the C
library is not glibc).

Measured on the 2-core machine (probe of `churn_6m` on the quickstart book, one process): peak RSS
4.07 GB with glibc's default arenas, 1.64-1.76 GB with at most 2, at the same speed. Every thread
that allocates (torch's intra-op threads, Arrow's readers, our prefetch threads) otherwise gets an
arena of its own, and each keeps the fragments of the variable-size batches it freed.
"""

from __future__ import annotations

import ctypes
import gc
import resource

M_ARENA_MAX = -8  # glibc's mallopt parameter number
MAX_ARENAS = 2


def peak_rss_mb() -> dict[str, float]:
    """Peak resident memory so far in MiB: {"self": this process, "children": the largest of its
    finished children}."""
    kb = {who: resource.getrusage(getattr(resource, f"RUSAGE_{who.upper()}")).ru_maxrss
          for who in ("self", "children")}
    return {who: round(v / 1024, 1) for who, v in kb.items()}  # ru_maxrss is in KiB on Linux


def _libc():
    try:
        libc = ctypes.CDLL(None)
        return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


def limit_malloc_arenas(n: int = MAX_ARENAS) -> bool:
    """Cap glibc's malloc arenas at `n` (takes effect for arenas not yet created; call early).
    Returns whether the C library accepted it."""
    libc = _libc()
    return bool(libc is not None and libc.mallopt(M_ARENA_MAX, n))


def release_memory() -> None:
    """Collect garbage and hand freed heap memory back to the OS (`malloc_trim`): between stages
    of one process, so one stage's peak does not stay resident under the next one's."""
    gc.collect()
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
