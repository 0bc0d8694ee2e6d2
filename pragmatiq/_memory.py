"""Process memory: the peak RSS so far, and hygiene for long CLI runs on glibc (Linux): fewer
malloc arenas, a fixed mmap threshold, and freed heap handed back to the OS between stages (all
no-ops where the C library is not glibc).

Measured on the 2-core machine (probe of `churn_6m` on the quickstart book, one process):

- arenas: peak RSS 4.07 GB with glibc's default arenas, 1.64-1.76 GB with at most 2, at the same
  speed. Every thread that allocates (torch's intra-op threads, Arrow's readers, our prefetch
  threads) otherwise gets an arena of its own, and each keeps the fragments of the batches it freed.
- mmap threshold: glibc raises it to the size of any mmapped block freed (up to 32 MiB), after
  which blocks below it come from the heap. Once something frees a large block (a 30 MB numpy
  array, scikit-learn's boosting with 2 threads), embedding batches of growing length fragment the
  heap: peak RSS 3.4-4.5 GiB against 1.3-1.7 GiB with the threshold pinned at 16 MiB (and 1.2 GiB
  at 8 MiB but 15% slower, 0.9 GiB at 1-4 MiB but 60% slower: more blocks mapped and faulted in
  afresh). Pinning it also pins the trim threshold, which is set to 256 MiB so the heap's top is
  not handed back on every free. Training speed is the same either way (A/B, nano).
"""

from __future__ import annotations

import ctypes
import gc
import resource

# glibc's mallopt parameter numbers
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_ARENA_MAX = -1, -3, -8
MAX_ARENAS = 2
MMAP_THRESHOLD = 16 << 20  # bytes
TRIM_THRESHOLD = 256 << 20  # bytes


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


def tune_malloc(arenas: int = MAX_ARENAS, mmap_threshold: int = MMAP_THRESHOLD,
                trim_threshold: int = TRIM_THRESHOLD) -> bool:
    """Cap glibc's malloc arenas at `arenas` (for arenas not yet created: call early) and pin the
    mmap and trim thresholds (bytes). Returns whether the C library accepted all three."""
    libc = _libc()
    if libc is None:
        return False
    return all([bool(libc.mallopt(M_ARENA_MAX, arenas)),
                bool(libc.mallopt(M_MMAP_THRESHOLD, mmap_threshold)),
                bool(libc.mallopt(M_TRIM_THRESHOLD, trim_threshold))])


def release_memory() -> None:
    """Collect garbage and hand freed heap memory back to the OS (`malloc_trim`): between stages
    of one process, so one stage's peak does not stay resident under the next one's."""
    gc.collect()
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
