"""Token shards on disk: `tokenize_dataset` writes them, `TokenDataset` reads them.

Layout of a token directory:

    vocab.json           the fitted vocabulary (content hash inside)
    manifest.json        users, events, tokens, vocab hash, config, source data dir, [UNK] summary
    index.parquet        one row per user in encoding order: user_id, band, row, cost, n_events
    band-XX.parquet      users whose cost falls in length band XX (powers of two), zstd,
                         row groups of ROW_GROUP users, one row per user (rows.ROW_SCHEMA)

Fit and encoding both run in a pool of workers that read the parquet files themselves.
Encoding cuts the events into user-aligned chunks (boundaries depend only on the data), workers
encode spans of whole chunks and the rows are written here in data order, so the output is
byte-identical for any number of workers.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import shutil
import sys
from collections import OrderedDict
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

import pragmatiq
from pragmatiq.data import schema
from pragmatiq.tokenizer.config import TokenizerConfig, load_tokenizer_config
from pragmatiq.tokenizer.cuts import load_cuts
from pragmatiq.tokenizer.encode import UnkCounter, encode_users
from pragmatiq.tokenizer.ranges import READ_ROWS, cut_points, iter_rows, ordered_map, spans, user_chunks
from pragmatiq.tokenizer.rows import row_schema
from pragmatiq.tokenizer.vocab import Vocab

CHUNK_ROWS = 65_536  # events read per chunk (then cut back to a user boundary)
SPAN_ROWS = 262_144  # a worker task: whole chunks, at most about this many events past a cut
ROW_GROUP = 64  # users per row group
EVENT_COLUMNS = ["user_id", "ts", "source", "fields"]
SUMMARY_COLUMNS = ["user_id", "n_events", "n_tokens", "n_profile", "cost"]  # what the index needs


def band_of(cost: np.ndarray) -> np.ndarray:
    """Length band of each user: floor(log2(cost))."""
    return np.floor(np.log2(np.maximum(cost, 1))).astype(np.int64)


# ---------------------------------------------------------------------- worker side
_STATE: dict = {}


def _init_worker(vocab_path: str, config: dict, profiles_path: str, cuts, events_path: str) -> None:
    _STATE["vocab"] = Vocab.load(vocab_path)
    _STATE["config"] = TokenizerConfig(**config)
    _STATE["profiles"] = pq.read_table(profiles_path, columns=["user_id", "as_of", "attributes", "lifelong"])
    _STATE["cuts"] = cuts
    _STATE["events"] = pq.ParquetFile(events_path)


def _encode_chunk(events: pa.Table | None, profile_users: pa.Array | None = None):
    profiles = _STATE["profiles"]
    if events is not None:
        users = pc.unique(events.column("user_id").combine_chunks())
        profs = profiles.filter(pc.is_in(profiles.column("user_id"), value_set=users))
    else:  # the users with a profile but no events
        profs = profiles.filter(pc.is_in(profiles.column("user_id"), value_set=profile_users))
        events = pa.table({c: pa.array([], t) for c, t in zip(EVENT_COLUMNS, schema.EVENTS.types)})
    unk = UnkCounter()
    rows = encode_users(events, profs, _STATE["vocab"], _STATE["config"], _STATE["cuts"], unk)
    return rows.select(SUMMARY_COLUMNS), band_parts(rows), unk


def band_parts(rows: pa.Table) -> list[tuple[int, np.ndarray, pa.Table]]:
    """U rows split by length band, bands ascending: (band, positions (U_b,), their rows)."""
    bands = band_of(rows.column("cost").to_numpy())
    return [(int(b), idx, rows.take(pa.array(idx)))
            for b in np.unique(bands) for idx in [np.flatnonzero(bands == b)]]


def _encode_span(start: int, stop: int, bounds: np.ndarray) -> list:
    """A worker task: read events [start, stop) and encode each chunk of `bounds` (C+1,)
    -> [(summary rows, band parts, UnkCounter)] per chunk, in order."""
    pf = _STATE["events"]
    batches = list(iter_rows(pf, start, stop, EVENT_COLUMNS, READ_ROWS))
    span = pa.Table.from_batches(batches) if batches else pf.schema_arrow.empty_table()
    return [_encode_chunk(span.slice(a - start, b - a)) for a, b in zip(bounds[:-1], bounds[1:])]


def _event_spans(path: Path) -> list[tuple[int, int, np.ndarray]]:
    """User-aligned chunks of about CHUNK_ROWS events (cut from the user_id column alone),
    grouped into spans of whole chunks for the workers."""
    pf = pq.ParquetFile(path)
    users = pq.read_table(path, columns=["user_id"]).column("user_id").combine_chunks()
    return spans(user_chunks(users, CHUNK_ROWS), cut_points(pf, SPAN_ROWS))


# ---------------------------------------------------------------------- writer
class _BandWriter:
    def __init__(self, out_dir: Path, schema_: pa.Schema):
        self.out_dir, self.schema = out_dir, schema_
        self.writers: dict[int, pq.ParquetWriter] = {}
        self.pending: dict[int, list[pa.Table]] = {}
        self.rows: dict[int, int] = {}

    def add(self, n: int, parts: list[tuple[int, np.ndarray, pa.Table]]) -> tuple[np.ndarray, np.ndarray]:
        """Queue n rows split by `band_parts`; returns (band, row within the band file) for each."""
        bands, out_row = np.zeros(n, np.int64), np.zeros(n, np.int64)
        for b, idx, part in parts:
            start = self.rows.get(b, 0)
            bands[idx], out_row[idx] = b, start + np.arange(len(idx))
            self.rows[b] = start + len(idx)
            self.pending.setdefault(b, []).append(part)
            self._flush(b, final=False)
        return bands, out_row

    def _flush(self, b: int, final: bool) -> None:
        table = pa.concat_tables(self.pending.get(b, [])) if self.pending.get(b) else None
        if table is None:
            return
        n_full = table.num_rows if final else (table.num_rows // ROW_GROUP) * ROW_GROUP
        if n_full == 0:
            self.pending[b] = [table]
            return
        if b not in self.writers:
            # no dictionary pages: id lists compress as well without them and write 40% faster
            self.writers[b] = pq.ParquetWriter(self.out_dir / f"band-{b:02d}.parquet", self.schema,
                                               compression="zstd", use_dictionary=False)
        self.writers[b].write_table(table.slice(0, n_full), row_group_size=ROW_GROUP)
        self.pending[b] = [table.slice(n_full)] if n_full < table.num_rows else []

    def close(self) -> None:
        for b in list(self.pending):
            self._flush(b, final=True)
        for w in self.writers.values():
            w.close()


@contextmanager
def _pool(n_workers: int, **kwargs):
    """A process pool of `n_workers`, or None (work in this process) for one worker."""
    if n_workers <= 1:
        yield None
        return
    ctx = mp.get_context("fork" if sys.platform == "linux" else "spawn")
    with ctx.Pool(n_workers, **kwargs) as pool:
        yield pool


def tokenize_dataset(data_dir, out_dir, *, n_workers: int = 1, config=None, vocab=None, cuts=None,
                     progress: bool = True) -> dict:
    """Fit (unless `vocab` is given) and encode a dataset into a token directory."""
    from tqdm.auto import tqdm

    data_dir, out_dir = Path(data_dir), Path(out_dir)
    for name in (schema.EVENTS_FILE, schema.PROFILES_FILE):
        if not (data_dir / name).is_file():
            raise FileNotFoundError(f"{data_dir / name} not found: a dataset directory holds "
                                    f"{schema.EVENTS_FILE} and {schema.PROFILES_FILE}")
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in list(out_dir.glob("band-*.parquet")) + [out_dir / "index.parquet", out_dir / "manifest.json"]:
        old.unlink(missing_ok=True)
    n_events_in = pq.ParquetFile(data_dir / schema.EVENTS_FILE).metadata.num_rows
    if vocab is not None:
        fitted = Vocab.load(vocab)
        cfg = TokenizerConfig(**fitted.config) if config is None else load_tokenizer_config(config)
        if Path(vocab).resolve() != (out_dir / "vocab.json").resolve():
            shutil.copyfile(Path(vocab) if Path(vocab).is_file() else Path(vocab) / "vocab.json",
                            out_dir / "vocab.json")
    else:
        cfg = load_tokenizer_config(config)
        from pragmatiq.tokenizer.fit import fit_vocab

        with tqdm(total=n_events_in, desc="fit vocabulary", unit="event", unit_scale=True,
                  disable=not progress, file=sys.stderr) as bar, _pool(n_workers) as pool:
            fitted = fit_vocab(data_dir, cfg, progress=bar, pool=pool, window=2 * n_workers)
        fitted.save(out_dir / "vocab.json")
    cut_map = load_cuts(cuts)
    init = (str(out_dir / "vocab.json"), cfg.to_dict(), str(data_dir / schema.PROFILES_FILE), cut_map,
            str(data_dir / schema.EVENTS_FILE))
    writer = _BandWriter(out_dir, row_schema(cfg.nemotron))
    index_parts, unk, seen = [], UnkCounter(), []
    totals = {"users": 0, "events": 0, "tokens": 0, "profile_tokens": 0}

    def consume(rows: pa.Table, parts: list, chunk_unk: UnkCounter) -> None:
        bands, rownum = writer.add(rows.num_rows, parts)
        index_parts.append(pa.table({
            "user_id": rows.column("user_id"), "band": pa.array(bands, pa.int16()),
            "row": pa.array(rownum, pa.int32()), "cost": rows.column("cost"),
            "n_events": rows.column("n_events"),
        }))
        unk.merge(chunk_unk)
        totals["users"] += rows.num_rows
        totals["events"] += int(pc.sum(rows.column("n_events")).as_py() or 0)
        totals["tokens"] += int(pc.sum(rows.column("n_tokens")).as_py() or 0)
        totals["profile_tokens"] += int(pc.sum(rows.column("n_profile")).as_py() or 0)

    tasks = _event_spans(data_dir / schema.EVENTS_FILE)
    with tqdm(total=n_events_in, desc="encode", unit="event", unit_scale=True,
              disable=not progress, file=sys.stderr) as bar:
        with _pool(n_workers, initializer=_init_worker, initargs=init) as pool:
            if pool is None:
                _init_worker(*init)
            for span, (start, stop, _) in zip(ordered_map(_encode_span, tasks, pool, n_workers + 1), tasks):
                for rows, parts, chunk_unk in span:
                    consume(rows, parts, chunk_unk)
                    seen.append(rows.column("user_id"))
                bar.update(stop - start)
        # users with a profile but no events
        _init_worker(*init)
        prof_users = _STATE["profiles"].column("user_id").combine_chunks()
        seen_users = pa.chunked_array(seen, pa.string()).combine_chunks() if seen else pa.array([], pa.string())
        rest = prof_users.filter(pc.invert(pc.is_in(prof_users, value_set=seen_users)))
        if len(rest):
            consume(*_encode_chunk(None, rest))
        _STATE.clear()
    writer.close()
    index = pa.concat_tables(index_parts) if index_parts else None
    if index is None:
        raise ValueError(f"{data_dir}: no users to encode")
    pq.write_table(index, out_dir / "index.parquet", compression="zstd")
    for (what, key), n in sorted(unk.counts.items()):
        example = unk.examples.get((what, key))
        print(f"warning: {n} {what} [UNK] for key {key!r}" + (f" (e.g. {example!r})" if example else ""),
              file=sys.stderr)
    manifest = {
        "format": 1,
        "pragmatiq": pragmatiq.__version__,
        "data_dir": str(data_dir.resolve()),
        "vocab_sha256": fitted.sha256,
        "vocab_size": len(fitted),
        **totals,
        "bands": {f"{b:02d}": n for b, n in sorted(writer.rows.items())},
        "cut": cut_map is not None,
        "config": cfg.to_dict(),
        "unk": unk.summary(),
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return manifest


class TokenDataset:
    """Random access to the users of a token directory; reads only the row groups it needs."""

    def __init__(self, tok_dir, *, expect_vocab_sha256: str | None = None, cache_row_groups: int = 64):
        self.dir = Path(tok_dir)
        manifest_path = self.dir / "manifest.json"
        if (self.dir / "events.parquet").is_file() and not (self.dir / "index.parquet").is_file():
            raise FileNotFoundError(f"{self.dir} is a raw data directory (events.parquet), not a token directory: "
                                    f"tokenize it first (`pragmatiq tokenize {self.dir} TOK_DIR`)")
        if not manifest_path.is_file():
            raise FileNotFoundError(f"{manifest_path} not found: is {self.dir} a token directory "
                                    "(made by `pragmatiq tokenize`)?")
        self.manifest = json.loads(manifest_path.read_text())
        self.vocab = Vocab.load(self.dir / "vocab.json")
        if self.vocab.sha256 != self.manifest["vocab_sha256"]:
            raise ValueError(f"{self.dir}: vocab.json does not match the shards (hash "
                             f"{self.vocab.sha256[:12]} vs {self.manifest['vocab_sha256'][:12]})")
        if expect_vocab_sha256 and expect_vocab_sha256 != self.vocab.sha256:
            raise ValueError(f"{self.dir}: shards were encoded with vocabulary {self.vocab.sha256[:12]}, "
                             f"but this run needs {expect_vocab_sha256[:12]}: re-tokenize with "
                             "--vocab RUN/vocab.json")
        index = pq.read_table(self.dir / "index.parquet")
        self.user_ids: list[str] = index.column("user_id").to_pylist()
        self.band = index.column("band").to_numpy().astype(np.int64)
        self.row = index.column("row").to_numpy().astype(np.int64)
        self.lengths = index.column("cost").to_numpy().astype(np.int64)  # cost per user
        self.n_events = index.column("n_events").to_numpy().astype(np.int64)
        self._files: dict[int, pq.ParquetFile] = {}
        self._cache: OrderedDict = OrderedDict()
        self._cache_size = cache_row_groups

    def __len__(self) -> int:
        return len(self.user_ids)

    @property
    def costs(self) -> np.ndarray:
        return self.lengths

    def _row_group(self, band: int, group: int) -> dict:
        key = (band, group)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        if band not in self._files:
            self._files[band] = pq.ParquetFile(self.dir / f"band-{band:02d}.parquet")
        table = self._files[band].read_row_group(group)
        cols = {}
        for name in table.column_names:
            col = table.column(name).combine_chunks()
            if pa.types.is_list(col.type):
                cols[name] = (col.offsets.to_numpy(), col.values.to_numpy(zero_copy_only=False))
            else:
                cols[name] = col.to_numpy(zero_copy_only=False)
        self._cache[key] = cols
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return cols

    def __getitem__(self, i: int) -> dict:
        """User `i` as a dict of NumPy arrays (one per row column)."""
        band, row = int(self.band[i]), int(self.row[i])
        cols = self._row_group(band, row // ROW_GROUP)
        j = row % ROW_GROUP
        out = {}
        for name, col in cols.items():
            if isinstance(col, tuple):
                offsets, values = col
                out[name] = values[offsets[j]:offsets[j + 1]]
            else:
                out[name] = col[j]
        return out

    def read(self, indices) -> list[dict]:
        # group by row group so each is decoded once
        order = sorted(range(len(indices)), key=lambda k: (self.band[indices[k]], self.row[indices[k]]))
        rows: list = [None] * len(indices)
        for k in order:
            rows[k] = self[int(indices[k])]
        return rows
