"""`PackedBatch`: a batch of users as flat tensors with `cu_seqlens`, no padding.

Shape vocabulary: U users, E events, T event tokens, P profile tokens, N text sentinels.
Offsets are int32 `cu_*` tensors in flash-attn's convention (`cu[0] == 0`, `cu[-1] == total`).

Event tokens hold the fields only: the first token of every event is its `source` token. The
model prepends `[EVT]` to each event and `[USR]` to each profile itself.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch


@dataclass
class PackedBatch:
    # event tokens, flat over every event of every user, events in user order then time order
    key_ids: torch.Tensor  # (T,) int64 key token id (keys and values share one id space)
    value_ids: torch.Tensor  # (T,) int64 value token id (bucket, category or BPE piece)
    positions: torch.Tensor  # (T,) int64 piece index within the field (0 unless BPE text)
    cu_tokens: torch.Tensor  # (E+1,) int32 token offsets per event
    max_tokens: int  # longest event in tokens (python int)
    # events
    event_tau: torch.Tensor  # (E,) float32 tau(seconds from the event to the user's cut)
    event_hour: torch.Tensor  # (E,) int64 0..23
    event_dow: torch.Tensor  # (E,) int64 0..6, Monday = 0
    event_dom: torch.Tensor  # (E,) int64 1..31
    cu_events: torch.Tensor  # (U+1,) int32 event offsets per user
    max_events: int  # most events of one user
    # profile tokens: attributes at tau 0, lifelong milestones at tau(as_of - ts)
    profile_key_ids: torch.Tensor  # (P,) int64
    profile_value_ids: torch.Tensor  # (P,) int64
    profile_positions: torch.Tensor  # (P,) int64
    profile_tau: torch.Tensor  # (P,) float32
    cu_profile: torch.Tensor  # (U+1,) int32 profile-token offsets per user
    max_profile: int  # most profile tokens of one user
    user_ids: list[str]  # (U,)
    # Nemotron variant: event tokens that are text sentinels, and their raw strings
    text_token_index: torch.Tensor | None = None  # (N,) int64 index into the T event tokens
    texts: list[str] | None = None  # (N,) raw strings for the frozen text encoder
    text_vectors: torch.Tensor | None = None  # (N, d_text) float32, filled by the text encoder

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_events(self) -> int:
        return int(self.event_tau.shape[0])

    @property
    def n_tokens(self) -> int:
        return int(self.key_ids.shape[0])

    def to(self, device: torch.device | str, non_blocking: bool = False) -> "PackedBatch":
        """A copy with every tensor on `device`."""
        moved = {
            f.name: v.to(device, non_blocking=non_blocking)
            for f in fields(self)
            if isinstance(v := getattr(self, f.name), torch.Tensor)
        }
        return replace(self, **moved)

    def pin_memory(self) -> "PackedBatch":
        pinned = {
            f.name: v.pin_memory()
            for f in fields(self)
            if isinstance(v := getattr(self, f.name), torch.Tensor)
        }
        return replace(self, **pinned)
