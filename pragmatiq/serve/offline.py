"""Offline batch embedding: a dataset -> `embeddings.parquet` (`user_id`, float32 `embedding`).

    embed_to_parquet("data", "runs/run", "embeddings.parquet")                 # one process
    torchrun --nproc-per-node 4 -m pragmatiq embed data --run-dir runs/run --out e.parquet
    (under torchrun spell it --run-dir: torchrun takes --run for its own --run-path)

The source is a token directory made with the run's vocabulary, or a raw data directory (it is
tokenized with the run's vocabulary first). With a label file, histories are cut before each
user's `eval_ts`, exactly as the probes do, and only the labelled users are embedded. Under torchrun
every rank embeds its share of the token-budget batches into `OUT.part-<rank>.parquet`; rank 0
merges them and removes the parts.
The numbers are the served path's: the same native forward on the same tokens.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


def _world() -> tuple[int, int]:
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def process_device(device: str, world: int) -> str:
    """"cuda" without an index -> this process's GPU: cuda:LOCAL_RANK under torchrun, else cuda:0."""
    if device == "cuda":
        return f"cuda:{int(os.environ.get('LOCAL_RANK', 0)) if world > 1 else 0}"
    return device


def _barrier(world: int) -> None:
    if world > 1:
        import torch.distributed as dist

        if not dist.is_initialized():  # barriers only: gloo, which needs no device (NCCL would guess one)
            dist.init_process_group("gloo")
        dist.barrier()


def embeddings_table(user_ids: list[str], vectors: np.ndarray) -> pa.Table:
    """(U,) ids + (U, d) float32 -> table with `user_id` string, `embedding` fixed-size list<float32>."""
    d = vectors.shape[1] if vectors.ndim == 2 else 0
    flat = pa.array(np.ascontiguousarray(vectors, np.float32).reshape(-1), pa.float32())
    return pa.table({"user_id": pa.array(user_ids, pa.string()),
                     "embedding": pa.FixedSizeListArray.from_arrays(flat, d)})


def read_embeddings(path: str | Path) -> tuple[list[str], np.ndarray]:
    """An embeddings parquet -> (user_ids, (U, d) float32)."""
    t = pq.read_table(path)
    col = t.column("embedding").combine_chunks()
    d = col.type.list_size
    return t.column("user_id").to_pylist(), col.flatten().to_numpy().reshape(-1, d).astype(np.float32, copy=False)


def merge_parts(parts: list[Path], out: Path) -> int:
    """Concatenate part files, keep each user once (first part wins), sort by user_id."""
    t = pa.concat_tables([pq.read_table(p) for p in parts])
    ids = t.column("user_id").to_numpy(zero_copy_only=False)
    _, first = np.unique(ids, return_index=True)  # sorted unique ids, first occurrence
    pq.write_table(t.take(pa.array(first)), out, compression="zstd")
    return len(first)


def embed_to_parquet(src: str | Path, run: str | Path, out: str | Path, *, device: str = "cpu",
                     token_budget: int = 32768, label: str | Path | None = None, n_workers: int = 1,
                     progress: bool = True) -> dict:
    """Embed every user of `src` with `run` into the parquet file `out`; returns a summary.
    The device, the run and the label file are checked before any work (`_hardware.check_device`,
    `eval.embedding.check_run_dir`, `eval.labels.check_label_coverage`)."""
    from pragmatiq._hardware import check_device, make_current
    from pragmatiq.eval.embedding import (
        check_run_dir, embed_token_dir, is_data_dir, load_run_model, source_data_dir, tokenize_for_run)

    check_device(device)
    src, run, out = Path(src), Path(run), Path(out)
    rank, world = _world()
    device = process_device(str(device), world)
    make_current(device)  # kernels that launch on the current GPU use this one
    if not src.exists():
        raise FileNotFoundError(f"{src}: no such data or token directory")
    if out.is_dir():
        raise ValueError(f"--out {out} is a directory: pass the parquet file to write, e.g. {out / 'e.parquet'}")
    vocab = check_run_dir(run)
    data_dir = src if is_data_dir(src) else source_data_dir(src) if label is not None else None
    if label is not None and data_dir is None:
        raise ValueError(f"{src}: cutting histories at eval_ts needs the raw data; this token directory's"
                         " manifest does not name it, so pass the raw data directory")
    users = None if label is None else _label_users(label, data_dir, warn=rank == 0)
    _check_writable(out)
    tok = src
    work = out.parent / f".{out.name}.tokens"
    if data_dir is not None:
        tok = work
        if rank == 0:
            shutil.rmtree(work, ignore_errors=True)
            tokenize_for_run(data_dir, run, work, cuts=label, n_workers=n_workers, progress=progress)
    _barrier(world)
    model = load_run_model(run, device)
    ids, vectors = embed_token_dir(tok, model, vocab=vocab, users=users, device=device,
                                   token_budget=token_budget, progress=progress and rank == 0, rank=rank,
                                   world_size=world)
    part = out.with_name(f"{out.name}.part-{rank}.parquet") if world > 1 else out
    pq.write_table(embeddings_table(ids, vectors), part, compression="zstd")
    _barrier(world)
    n = len(ids)
    if world > 1 and rank == 0:
        parts = [out.with_name(f"{out.name}.part-{r}.parquet") for r in range(world)]
        n = merge_parts(parts, out)
        for p in parts:
            p.unlink()
    if rank == 0:
        shutil.rmtree(work, ignore_errors=True)
    _barrier(world)
    return {"out": str(out), "users": n, "dim": int(model.config.d_model), "world_size": world}


def _check_writable(out: Path) -> None:
    """Create `out`'s directory and write a scratch file there, so an unwritable --out fails
    before the book is embedded, not after."""
    import tempfile

    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out.parent, prefix=f".{out.name}."):
            pass
    except OSError as exc:
        raise OSError(f"--out {out}: cannot write there ({exc.strerror or exc})") from None


def _label_users(label: str | Path, data_dir: Path, *, warn: bool) -> list[str]:
    """The users a label file asks for, checked against the book before any work: null or missing
    eval_ts, no user in the book raise; users absent from it, eval_ts outside the events' range warn."""
    import warnings

    from pragmatiq.eval.labels import book_spans, check_label_coverage, read_cut_table

    user_ids, cut_us = read_cut_table(label)
    with warnings.catch_warnings():
        if not warn:  # one rank speaks under torchrun
            warnings.simplefilter("ignore")
        check_label_coverage(user_ids, cut_us, book_spans(data_dir), label=str(label), data_dir=data_dir,
                             dropped="they get no embedding")
    return user_ids.to_pylist()


def embed_records(run: str | Path, records, *, device: str = "cpu") -> tuple[np.ndarray, list[str]]:
    """In-process embedding of records (the served request's JSON array, or its parsed list):
    the same tokenizer and native forward as the Triton models -> ((U, d) float32, user_ids)."""
    import json

    from pragmatiq._hardware import check_device
    from pragmatiq.export.runners import make_runner
    from pragmatiq.export.targets import check_run
    from pragmatiq.tokenizer import Vocab, records_to_batch

    check_device(device)
    run = check_run(run)
    if isinstance(records, (str, bytes)):
        records = json.loads(records)
    batch = records_to_batch(records, Vocab.load(run / "vocab.json"))
    return make_runner("torch", run, device=device)(batch), list(batch.user_ids)
