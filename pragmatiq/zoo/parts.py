"""Independent segments encoded in parts on CPU worker threads, forward and backward.

The event encoder sees each event alone, so the events of a batch can be cut into contiguous
parts that are encoded separately and concatenated: the same function of the same rows. On a
CPU, `parts_apply` runs the parts side by side on threads with one intra-op thread each
(`pragmatiq._threads`), builds each part's autograd graph in its own thread, and in backward
runs each part's backward on a thread too, adding the parts' parameter gradients in part order.

Each part draws its dropout masks from its own generator, seeded from the default generator
before the parts start, so a step is bitwise the same on any number of threads and a checkpoint
(which saves the default generator) resumes it exactly.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch

from pragmatiq._threads import map_on_threads
from pragmatiq.zoo.dropout import dropout_generator


def part_bounds(cu: torch.Tensor, n_parts: int) -> list[tuple[int, int]]:
    """cu (S+1,) row offsets -> up to n_parts contiguous segment ranges [lo, hi) of about equal
    rows, each non-empty, covering every segment in order."""
    s = cu.shape[0] - 1
    n_parts = max(1, min(n_parts, s))
    if n_parts == 1:
        return [(0, s)]
    total = int(cu[-1])
    targets = torch.tensor([total * k / n_parts for k in range(1, n_parts)], dtype=torch.float64)
    cuts = torch.searchsorted(cu.to(torch.float64), targets).tolist()  # first segment at or past each target
    bounds = sorted({0, s, *(min(max(c, 1), s - 1) for c in cuts)})
    return list(zip(bounds[:-1], bounds[1:]))


class _Parts(torch.autograd.Function):
    @staticmethod
    def forward(ctx, run, parts, workers: int, *params):
        seeds = torch.randint(0, 2**62, (len(parts),), dtype=torch.int64).tolist()  # default generator

        def one(i):
            gen = torch.Generator().manual_seed(seeds[i])
            with torch.enable_grad(), dropout_generator(gen):
                return tuple(run(parts[i]))

        results = map_on_threads(one, range(len(parts)), workers)
        ctx.results, ctx.params, ctx.workers = results, params, workers
        ctx.rows = [[o.shape[0] for o in r] for r in results]
        return tuple(torch.cat([r[j].detach() for r in results]) for j in range(len(results[0])))

    @staticmethod
    def backward(ctx, *grads):
        # every output's gradient (rows, ...) cut into the parts' rows
        cut = [g.split([rows[j] for rows in ctx.rows]) if g is not None else [None] * len(ctx.rows)
               for j, g in enumerate(grads)]
        wanted = [p for p in ctx.params if p.requires_grad]

        def one(i):
            pairs = [(o, g[i]) for o, g in zip(ctx.results[i], cut) if g[i] is not None and o.requires_grad]
            if not pairs:
                return [None] * len(wanted)
            outs, gs = zip(*pairs)
            return torch.autograd.grad(outs, wanted, gs, allow_unused=True)

        per_part = map_on_threads(one, range(len(ctx.results)), ctx.workers)
        ctx.results = None  # the parts' graphs are spent
        summed = iter([_sum_in_order(gs) for gs in zip(*per_part)])
        return (None, None, None) + tuple(next(summed) if p.requires_grad else None for p in ctx.params)


def _sum_in_order(grads: Sequence[torch.Tensor | None]) -> torch.Tensor | None:
    present = [g for g in grads if g is not None]
    if not present:
        return None
    total = present[0]
    for g in present[1:]:
        total = total + g
    return total


def parts_apply(run: Callable, parts: Sequence, params: Sequence[torch.nn.Parameter],
                workers: int) -> tuple[torch.Tensor, ...]:
    """`run(part)` for every part on up to `workers` threads -> each of its outputs concatenated
    over the parts in order (outputs are (rows, ...), differentiable in `params`, the parameters
    `run` uses). Gradients to anything but `params` are not propagated: inputs in `parts` are data."""
    return _Parts.apply(run, list(parts), int(workers), *params)
