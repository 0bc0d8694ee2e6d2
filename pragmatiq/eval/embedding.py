"""Offline user embeddings from a trained run, for probes.

`embed_users(src, run_dir)` takes a token directory or a raw data directory. With `cuts` (a label
parquet or a mapping user_id -> eval_ts) or a raw data directory, the raw data is re-tokenized
with the run's vocabulary into a temporary directory, histories cut to `ts < eval_ts`, so no
event at or after a user's cut reaches the model.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np

from pragmatiq.data import schema

VOCAB_FILE = "vocab.json"
MANIFEST_FILE = "manifest.json"
# keys under which a token manifest records the raw data directory it was built from
_SOURCE_KEYS = ("data_dir", "source_dir")


def is_data_dir(path: str | Path) -> bool:
    return (Path(path) / schema.EVENTS_FILE).is_file()


def source_data_dir(tok_dir: str | Path) -> Path | None:
    """The raw data directory a token directory was built from, per its manifest (None if the
    manifest does not say or the directory no longer exists)."""
    tok_dir = Path(tok_dir)
    path = tok_dir / MANIFEST_FILE
    if not path.is_file():
        return None
    manifest = json.loads(path.read_text())
    for key in _SOURCE_KEYS:
        value = manifest.get(key)
        if isinstance(value, dict):
            value = next((value[k] for k in _SOURCE_KEYS if isinstance(value.get(k), str)), None)
        if isinstance(value, str):
            p = Path(value)
            if not p.is_absolute():
                p = (tok_dir / p).resolve()
            if is_data_dir(p):
                return p
    return None


def _run_vocab(run_dir: Path) -> Path:
    for p in (run_dir / VOCAB_FILE, run_dir / "tokenizer" / VOCAB_FILE):
        if p.is_file():
            return p
    raise FileNotFoundError(
        f"{run_dir}: no {VOCAB_FILE}; a trained run directory holds model.safetensors, model.json"
        f" and {VOCAB_FILE}")


def check_run_dir(run_dir: str | Path) -> Path:
    """Check a trained run before any work: model.json, the weights' header and vocab.json agree
    (a damaged or mismatched file raises naming it); returns the run's vocab.json."""
    from pragmatiq.zoo.io import check_model_dir, check_run_vocab

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"{run_dir}: no such run directory (a trained run holds model.safetensors, "
                                f"model.json and {VOCAB_FILE})")
    config = check_model_dir(run_dir)
    vocab = _run_vocab(run_dir)
    check_run_vocab(vocab, config, run_dir)
    return vocab


def tokenize_for_run(data_dir: str | Path, run_dir: str | Path, out_dir: str | Path, *, cuts=None,
                     n_workers: int = 1, progress: bool = False) -> Path:
    """Encode `data_dir` with the run's vocabulary (never refitted), cut at `cuts`."""
    from pragmatiq.tokenizer import tokenize_dataset

    vocab = _run_vocab(Path(run_dir))
    # label coverage is the callers' to report (eval.labels.check_label_coverage): they embed the
    # labelled users alone, so the uncut others are no news
    tokenize_dataset(data_dir, out_dir, n_workers=n_workers, vocab=vocab, cuts=cuts, progress=progress,
                     report_coverage=False)
    return Path(out_dir)


def load_run_model(run_dir: str | Path, device: str = "cpu"):
    """The run's model in eval mode on `device` (a checked device: `_hardware.check_device`); its
    vocab.json must fit it (`check_run_dir`)."""
    from pragmatiq.zoo import load_model
    from pragmatiq.zoo.io import check_run_vocab

    model = load_model(run_dir, map_location=device).to(device).eval()
    check_run_vocab(_run_vocab(Path(run_dir)), model.config, run_dir)
    return model


def embed_token_dir(tok_dir: str | Path, model, *, vocab: str | Path | None = None, users=None,
                    device: str = "cpu", token_budget: int = 32768, progress: bool = False,
                    rank: int = 0, world_size: int = 1, event_cache=True) -> tuple[list[str], np.ndarray]:
    """Embed the users of a token directory -> `(user_ids sorted, (U, d) float32)`.

    `vocab`: the run's vocab.json; shards encoded with another vocabulary are refused.
    `users`: embed only these user ids (default: all).
    `rank`, `world_size`: embed only this rank's share of the batches (a user may appear on two
    ranks when the batches do not divide evenly; merge keeping the first).
    `event_cache`: an `EventStateCache` for this model's weights, read and filled by every batch
    (pass one to share encoded events with another call: the same book at another cut); True: a
    new one for this call (events repeat across a book's batches); False: none."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import torch

    from pragmatiq.tokenizer import TokenBudgetSampler, TokenDataset, Vocab, collate

    ds = TokenDataset(tok_dir, expect_vocab_sha256=None if vocab is None else Vocab.load(vocab).sha256)
    subset = np.arange(len(ds))
    if users is not None:
        wanted = pa.array(list(users), pa.string())
        subset = np.flatnonzero(pc.is_in(pa.array(ds.user_ids, pa.string()), value_set=wanted)
                                .to_numpy(zero_copy_only=False))
    sampler = TokenBudgetSampler(ds.costs[subset], token_budget=token_budget, shuffle=False, rank=rank,
                                 world_size=world_size)
    # largest batches first: later, smaller batches reuse the heap their tensors freed. Growing
    # batches leave it fragmented instead (quickstart book on the 2-core machine: peak RSS 2.7 GB
    # in the sampler's ascending order, 1.1 GB largest first, and 25% faster: fewer page faults)
    batches = sorted(sampler, key=lambda ix: -int(ds.costs[subset[ix]].sum()))
    ids: list[str] = []
    chunks: list[np.ndarray] = []
    it = batches
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(batches, desc="embed", unit="batch")
    from pragmatiq.zoo.event_cache import EventStateCache
    from pragmatiq.zoo.text_encoder import encoder_for, with_text_vectors

    encoder = encoder_for(model, device)  # the Nemotron variant's frozen text encoder, else None
    if event_cache is True:
        event_cache = EventStateCache()
    before, model.event_cache = getattr(model, "event_cache", None), event_cache or None
    try:
        with torch.inference_mode():
            for index in it:
                batch = with_text_vectors(collate(ds.read(subset[index].tolist())), encoder)
                emb = model.embed(batch.to(device))  # (U, d)
                ids.extend(batch.user_ids)
                chunks.append(emb.float().cpu().numpy())
    finally:
        model.event_cache = before
    if not chunks:
        return [], np.zeros((0, 0), np.float32)
    E = np.concatenate(chunks, axis=0)
    order = np.argsort(np.asarray(ids, dtype=object), kind="stable")
    return [ids[i] for i in order], E[order]


def embed_users(src: str | Path, run_dir: str | Path, *, cuts=None, users=None, device: str = "cpu",
                n_workers: int = 1, token_budget: int = 32768, progress: bool = False,
                work_dir: str | Path | None = None, event_cache=True) -> tuple[list[str], np.ndarray]:
    """User embeddings `(user_ids sorted, (U, d) float32)` from a trained run.

    Args:
        src: a token directory built with the run's vocabulary, or a raw data directory.
        cuts: a label parquet path or mapping user_id -> eval_ts; histories are cut to
            `ts < eval_ts` by re-tokenizing the raw data (found via the token manifest).
        users: embed only these user ids (default: every user of the data).
        work_dir: where to write re-tokenized shards (default: a temporary directory, removed).
        event_cache: an `EventStateCache` for this run's weights, to share encoded events with
            other calls (the same book at another cut); True: one for this call; False: none.
    """
    from pragmatiq._hardware import check_device

    check_device(device)
    src, run_dir = Path(src), Path(run_dir)
    check_run_dir(run_dir)
    model = load_run_model(run_dir, device)
    if cuts is None and not is_data_dir(src):
        return embed_token_dir(src, model, vocab=_run_vocab(run_dir), users=users, device=device,
                               token_budget=token_budget, progress=progress, event_cache=event_cache)
    data_dir = src if is_data_dir(src) else source_data_dir(src)
    if data_dir is None:
        raise ValueError(
            f"{src}: cutting histories at eval_ts re-tokenizes the raw data, but this token"
            " directory's manifest does not name its source data directory; pass the raw data"
            " directory instead")
    with tempfile.TemporaryDirectory(prefix="pragmatiq-probe-", dir=work_dir) as tmp:
        tok = tokenize_for_run(data_dir, run_dir, Path(tmp) / "tokens", cuts=cuts, n_workers=n_workers,
                               progress=progress)
        return embed_token_dir(tok, model, vocab=_run_vocab(run_dir), users=users, device=device,
                               token_budget=token_budget, progress=progress, event_cache=event_cache)
