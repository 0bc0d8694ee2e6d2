"""Work split across this process's CPU cores as Python threads, each with one intra-op thread.

ATen releases the GIL inside its kernels, so `n` threads each running a share of the work with
one OpenMP thread keep `n` cores busy without OpenMP's per-op barriers. The small operations of
a nano model gain little from OpenMP's two threads (measured on the 2-core machine: its event
encoder's forward and backward take 175 ms with one intra-op thread, 120 with two, 90 as two
halves on two threads of one). Each share's arithmetic is the same on any number of threads.
"""

from __future__ import annotations

import os
from typing import Callable, Iterable, TypeVar

import torch

T = TypeVar("T")
R = TypeVar("R")

_POOLS: dict = {}  # {threads: ThreadPoolExecutor}, created on first parallel call


def cpu_workers(device: torch.device) -> int:
    """Threads worth running side by side: on CPU, this process's share of the cores (2 on the
    2-core machine, 1 per process under a 2-process torchrun there); elsewhere 1."""
    if device.type != "cpu":
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    procs = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    return max(1, cores // max(1, procs))


def one_intraop_thread(fn: Callable[..., R]) -> Callable[..., R]:
    """fn run with one intra-op thread in the calling thread (OpenMP's thread count is per
    thread), the caller's count restored afterwards."""
    def run(*args):
        threads = torch.get_num_threads()
        if threads != 1:
            torch.set_num_threads(1)
        try:
            return fn(*args)
        finally:
            if threads != 1:
                torch.set_num_threads(threads)
    return run


def map_on_threads(fn: Callable[[T], R], items: Iterable[T], workers: int) -> list[R]:
    """[fn(item) for item in items], in order, on up to `workers` threads, each item with one
    intra-op thread. With one worker (or one item) everything runs in the calling thread."""
    items = list(items)
    fn = one_intraop_thread(fn)
    workers = min(workers, len(items))
    if workers <= 1:
        return [fn(item) for item in items]
    if workers not in _POOLS:
        from concurrent.futures import ThreadPoolExecutor

        _POOLS[workers] = ThreadPoolExecutor(workers, thread_name_prefix="pragmatiq")
    futures = [_POOLS[workers].submit(fn, item) for item in items]
    return [f.result() for f in futures]
