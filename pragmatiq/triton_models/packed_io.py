"""The packed token tensors that travel between the Triton steps, as NumPy arrays.

`PACKED_TENSORS` is the wire contract of `pragmatiq_tokenizer` -> `pragmatiq_encoder*`: the
tensors of a `PackedBatch` in `PragmaModel.forward_tensors` order, plus `user_ids`. Shapes use
U users, E events, T event tokens, P profile tokens. Pure functions, no Triton import.
"""

from __future__ import annotations

import numpy as np
import torch

from pragmatiq.tokenizer.packed import PackedBatch

# (name, numpy dtype, Triton dtype, length): the forward_tensors arguments in order
PACKED_TENSORS: tuple[tuple[str, type, str, str], ...] = (
    ("key_ids", np.int64, "TYPE_INT64", "T"),
    ("value_ids", np.int64, "TYPE_INT64", "T"),
    ("positions", np.int64, "TYPE_INT64", "T"),
    ("cu_tokens", np.int32, "TYPE_INT32", "E+1"),
    ("event_tau", np.float32, "TYPE_FP32", "E"),
    ("event_hour", np.int64, "TYPE_INT64", "E"),
    ("event_dow", np.int64, "TYPE_INT64", "E"),
    ("event_dom", np.int64, "TYPE_INT64", "E"),
    ("cu_events", np.int32, "TYPE_INT32", "U+1"),
    ("profile_key_ids", np.int64, "TYPE_INT64", "P"),
    ("profile_value_ids", np.int64, "TYPE_INT64", "P"),
    ("profile_positions", np.int64, "TYPE_INT64", "P"),
    ("profile_tau", np.float32, "TYPE_FP32", "P"),
    ("cu_profile", np.int32, "TYPE_INT32", "U+1"),
)
TENSOR_NAMES = tuple(t[0] for t in PACKED_TENSORS)
USER_IDS = "user_ids"  # BYTES (U,)
RECORDS = "records_json"  # BYTES (1,) one JSON array of user records
EMBEDDINGS = "embeddings"  # FP32 (U, d)


def batch_to_arrays(batch: PackedBatch) -> dict[str, np.ndarray]:
    """PackedBatch -> {name: array} in PACKED_TENSORS order, plus user_ids as an object array."""
    out = {name: getattr(batch, name).cpu().numpy().astype(dt, copy=False) for name, dt, _, _ in PACKED_TENSORS}
    out[USER_IDS] = np.array([u.encode() for u in batch.user_ids], dtype=np.object_)
    return out


def _max_len(cu: np.ndarray) -> int:
    return int(np.diff(cu).max(initial=0)) if cu.shape[0] > 1 else 0


def arrays_to_batch(arrays: dict[str, np.ndarray]) -> PackedBatch:
    """{name: array} -> PackedBatch; maxima recomputed from the offsets."""
    t = {name: torch.from_numpy(np.ascontiguousarray(arrays[name], dtype=dt)) for name, dt, _, _ in PACKED_TENSORS}
    ids = arrays.get(USER_IDS)
    n_users = t["cu_events"].shape[0] - 1
    user_ids = [u.decode() if isinstance(u, bytes) else str(u) for u in ids] if ids is not None else [
        str(i) for i in range(n_users)]
    return PackedBatch(**t, max_tokens=_max_len(arrays["cu_tokens"]), max_events=_max_len(arrays["cu_events"]),
                       max_profile=_max_len(arrays["cu_profile"]), user_ids=user_ids)


def check_arrays(arrays: dict[str, np.ndarray]) -> None:
    """Raise ValueError naming the tensor when the packed tensors are inconsistent."""
    n = {name: arrays[name].shape[0] for name in TENSOR_NAMES}
    for name in TENSOR_NAMES:
        if arrays[name].ndim != 1:
            raise ValueError(f"{name}: expected a 1-D tensor, got shape {arrays[name].shape}")
    for cu, total in (("cu_tokens", n["key_ids"]), ("cu_events", n["event_tau"]), ("cu_profile", n["profile_tau"])):
        c = arrays[cu]
        if c.shape[0] < 1 or c[0] != 0 or c[-1] != total or np.any(np.diff(c) < 0):
            raise ValueError(f"{cu}: offsets must start at 0, never decrease and end at {total}")
    if n["cu_tokens"] - 1 != n["event_tau"]:
        raise ValueError(f"cu_tokens has {n['cu_tokens'] - 1} events but event_tau has {n['event_tau']}")
    if n["cu_events"] != n["cu_profile"]:
        raise ValueError("cu_events and cu_profile disagree on the number of users")
    if USER_IDS in arrays and arrays[USER_IDS].shape[0] != n["cu_events"] - 1:
        raise ValueError(f"user_ids has {arrays[USER_IDS].shape[0]} entries for {n['cu_events'] - 1} users")


def concat_arrays(parts: list[dict[str, np.ndarray]]) -> tuple[dict[str, np.ndarray], list[int]]:
    """Pack several requests' tensors into one batch -> (arrays, users per part).

    Offsets of part k are shifted by the totals of parts < k (vectorized per tensor)."""
    if len(parts) == 1:
        return parts[0], [parts[0]["cu_events"].shape[0] - 1]
    out: dict[str, np.ndarray] = {}
    for name, dt, _, _ in PACKED_TENSORS:
        if name.startswith("cu_"):
            cus = [p[name].astype(np.int64) for p in parts]
            shift = np.cumsum([0] + [c[-1] for c in cus[:-1]])
            out[name] = np.concatenate([cus[0][:1]] + [c[1:] + s for c, s in zip(cus, shift)]).astype(dt)
        else:
            out[name] = np.concatenate([p[name] for p in parts]).astype(dt, copy=False)
    if all(USER_IDS in p for p in parts):
        out[USER_IDS] = np.concatenate([p[USER_IDS] for p in parts])
    return out, [p["cu_events"].shape[0] - 1 for p in parts]
