"""`collate`: token rows -> `PackedBatch` with NumPy offset arithmetic; `BatchLoader` prefetches."""

from __future__ import annotations

import queue
import threading

import numpy as np
import torch

from pragmatiq.tokenizer.packed import PackedBatch


def _cat(rows: list[dict], name: str, dtype) -> np.ndarray:
    parts = [r[name] for r in rows]
    return np.concatenate(parts).astype(dtype, copy=False) if parts else np.zeros(0, dtype)


def _cu(counts: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.r_[0, np.cumsum(counts)].astype(np.int32))


def collate(rows: list[dict]) -> PackedBatch:
    """Concatenate user rows (from `TokenDataset` or `encode_records`) into one PackedBatch."""
    n_events = np.array([len(r["event_tau"]) for r in rows], np.int64)
    n_profile = np.array([len(r["profile_tau"]) for r in rows], np.int64)
    n_tokens = np.array([len(r["key_ids"]) for r in rows], np.int64)
    event_ntok = _cat(rows, "event_ntok", np.int64)
    t = lambda name, dtype=np.int64: torch.from_numpy(_cat(rows, name, dtype))  # noqa: E731
    text_index, texts = None, None
    if rows and "text_index" in rows[0]:
        shift = np.r_[0, np.cumsum(n_tokens)[:-1]]
        text_index = torch.from_numpy(np.concatenate(
            [r["text_index"].astype(np.int64) + s for r, s in zip(rows, shift)]))
        texts = [str(x) for r in rows for x in r["texts"]]
    return PackedBatch(
        key_ids=t("key_ids"), value_ids=t("value_ids"), positions=t("positions"),
        cu_tokens=_cu(event_ntok), max_tokens=int(event_ntok.max(initial=0)),
        event_tau=t("event_tau", np.float32), event_hour=t("event_hour"), event_dow=t("event_dow"),
        event_dom=t("event_dom"), cu_events=_cu(n_events), max_events=int(n_events.max(initial=0)),
        profile_key_ids=t("profile_key_ids"), profile_value_ids=t("profile_value_ids"),
        profile_positions=t("profile_positions"), profile_tau=t("profile_tau", np.float32),
        cu_profile=_cu(n_profile), max_profile=int(n_profile.max(initial=0)),
        user_ids=[str(r["user_id"]) for r in rows], text_token_index=text_index, texts=texts,
    )


class BatchLoader:
    """Iterate PackedBatches for a sampler's batches, collated by a background thread.

    `state_dict()` counts only the batches handed to the consumer, so a resume never skips
    a batch that was prefetched but not used.
    """

    def __init__(self, dataset, sampler, *, prefetch: int = 2):
        self.dataset, self.sampler, self.prefetch = dataset, sampler, max(1, prefetch)
        self._consumed = sampler.state_dict()

    def __iter__(self):
        q: queue.Queue = queue.Queue(self.prefetch)
        stop = threading.Event()
        start = self.sampler.state_dict()

        def work():
            try:
                for k, idx in enumerate(self.sampler):
                    if stop.is_set():
                        return
                    q.put((k, collate(self.dataset.read(idx))))
            except BaseException as exc:  # surface worker errors in the consumer
                q.put((None, exc))
                return
            q.put((None, None))

        thread = threading.Thread(target=work, daemon=True)
        thread.start()
        try:
            while True:
                k, item = q.get()
                if k is None:
                    if isinstance(item, BaseException):
                        raise item
                    break
                self._consumed = {**start, "position": start["position"] + k + 1}
                yield item
        finally:
            stop.set()
            while thread.is_alive():
                try:
                    q.get_nowait()
                except queue.Empty:
                    thread.join(0.05)

    def state_dict(self) -> dict:
        return dict(self._consumed)

    def load_state_dict(self, state: dict) -> None:
        self.sampler.load_state_dict(state)
        self._consumed = dict(state)
