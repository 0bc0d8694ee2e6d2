"""pragmatiq.kernels: varlen attention behind one function, TimeRoPE, the exportable formulation."""

from pragmatiq.kernels.dense import exportable_attention, padded_attention, segment_ids, segment_ids_dense
from pragmatiq.kernels.rope import TimeRoPE, apply_rope, rotate_half
from pragmatiq.kernels.varlen import (
    BACKENDS,
    backend_report,
    first_query_attention,
    refuse_reasons,
    select_backend,
    varlen_attention,
)

__all__ = [
    "BACKENDS", "TimeRoPE", "apply_rope", "backend_report", "exportable_attention", "first_query_attention",
    "padded_attention", "refuse_reasons",
    "rotate_half", "segment_ids", "segment_ids_dense", "select_backend", "varlen_attention",
]
