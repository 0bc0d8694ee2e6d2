"""Token shards on disk: `tokenize_dataset` writes them, `TokenDataset` reads them.

Layout of a token directory:

    vocab.json           the fitted vocabulary (content hash inside)
    manifest.json        users, events, tokens, vocab hash, config, source data dir, [UNK] summary
    index.parquet        one row per user in encoding order: user_id, band, row, cost, n_events
    band-XX.parquet      users whose cost falls in length band XX (powers of two), zstd,
                         row groups of ROW_GROUP users, one row per user (rows.ROW_SCHEMA)

The dataset is checked first (`inputs.check_dataset`: schema, nulls, one profile per user; then
each user's events one block, and in time order while encoding). Fit and encoding both run in a
pool of workers that read the parquet files themselves.
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
from pragmatiq.tokenizer.inputs import (check_contiguous, check_cut_coverage, check_dataset, check_out_dir,
                                        check_profiles_cover, check_time_order, warn)
from pragmatiq.tokenizer.ranges import READ_ROWS, cut_points, iter_rows, ordered_map, spans, user_chunks, user_codes
from pragmatiq.tokenizer.rows import row_schema
from pragmatiq.tokenizer.vocab import Vocab

CHUNK_ROWS = 65_536  # events read per chunk (then cut back to a user boundary)
SPAN_ROWS = 262_144  # a worker task: whole chunks, at most about this many events past a cut
ROW_GROUP = 64  # users per row group
EVENT_COLUMNS = ["user_id", "ts", "source", "fields"]
SUMMARY_COLUMNS = ["user_id", "n_events", "n_tokens", "n_profile", "cost"]  # what the index needs
INDEX_COLUMNS = ["user_id", "band", "row", "cost", "n_events"]


def band_of(cost: np.ndarray) -> np.ndarray:
    """Length band of each user: floor(log2(cost))."""
    return np.floor(np.log2(np.maximum(cost, 1))).astype(np.int64)


# ---------------------------------------------------------------------- worker side
_STATE: dict = {}


def _as_string(ids: pa.Array) -> pa.Array:
    """User ids as strings (integer or large-string ids are read as their text)."""
    return ids if pa.types.is_string(ids.type) else pc.cast(ids, pa.string())


def _read_profiles(path) -> pa.Table:
    profiles = pq.read_table(path, columns=["user_id", "as_of", "attributes", "lifelong"])
    if not pa.types.is_string(profiles.schema.field("user_id").type):
        profiles = profiles.set_column(0, "user_id", _as_string(profiles.column("user_id").combine_chunks()))
    return profiles


def _init_worker(vocab_path: str, config: dict, profiles_path: str, cuts, events_path: str) -> None:
    _STATE["vocab"] = Vocab.load(vocab_path)
    _STATE["config"] = TokenizerConfig(**config)
    _STATE["profiles"] = _read_profiles(profiles_path)
    _STATE["cuts"] = cuts
    _STATE["events"] = pq.ParquetFile(events_path)
    _STATE["events_path"] = events_path


def _encode_chunk(events: pa.Table | None, profile_users: pa.Array | None = None, offset: int = 0):
    """The rows of one chunk of whole users (events from row `offset` of the file), or of the
    users with a profile but no events (`events` None, `profile_users`)."""
    profiles = _STATE["profiles"]
    if events is not None:
        ids = _as_string(events.column("user_id").combine_chunks())
        check_time_order(ids, events.column("ts").combine_chunks(), offset, _STATE["events_path"])
        users = pc.unique(ids)
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
    return [_encode_chunk(span.slice(a - start, b - a), offset=a) for a, b in zip(bounds[:-1], bounds[1:])]


def _event_spans(path: Path) -> tuple[list[tuple[int, int, np.ndarray]], pa.Array]:
    """User-aligned chunks of about CHUNK_ROWS events (cut from the user_id column alone),
    grouped into spans of whole chunks for the workers; and the distinct users. Refuses a file
    whose users' events are not contiguous."""
    pf = pq.ParquetFile(path)
    codes, users = user_codes(pq.read_table(path, columns=["user_id"]).column("user_id").combine_chunks())
    check_contiguous(codes, users, path)
    return spans(user_chunks(codes, CHUNK_ROWS), cut_points(pf, SPAN_ROWS)), _as_string(users)


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
                     progress: bool = True, report_coverage: bool = True) -> dict:
    """Fit (unless `vocab` is given) and encode a dataset into a token directory.

    Refused before any work (ValueError naming file, column and fix; see `inputs`): data that
    breaks the contract in a way the tokenizer would misread, users whose events are not one
    block, an `out_dir` that is (or holds) the dataset, `cuts` that name no user of the data.
    `report_coverage`: warn when `cuts` cover only part of the data (off where the caller
    reports label coverage itself, as the probes and labelled embedding do).
    """
    from tqdm.auto import tqdm

    data_dir, out_dir = Path(data_dir), Path(out_dir)
    for name in (schema.EVENTS_FILE, schema.PROFILES_FILE):
        if not (data_dir / name).is_file():
            raise FileNotFoundError(f"{data_dir / name} not found: a dataset directory holds "
                                    f"{schema.EVENTS_FILE} and {schema.PROFILES_FILE}")
    check_out_dir(data_dir, out_dir)
    profile_users = check_dataset(data_dir)  # the data contract, before any work
    if vocab is not None:
        fitted = Vocab.load(vocab)
        cfg = TokenizerConfig(**fitted.config) if config is None else load_tokenizer_config(config)
    else:
        cfg = load_tokenizer_config(config)
    cut_map = load_cuts(cuts)
    tasks, event_users = _event_spans(data_dir / schema.EVENTS_FILE)  # refuses users split into blocks
    check_profiles_cover(event_users, profile_users, data_dir)
    n_cut = None
    if cut_map is not None:
        book_users = pc.unique(pa.concat_arrays([event_users, profile_users]))
        n_cut = check_cut_coverage(cut_map, cuts, book_users, data_dir, quiet=not report_coverage)
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in list(out_dir.glob("band-*.parquet")) + [out_dir / "index.parquet", out_dir / "manifest.json"]:
        old.unlink(missing_ok=True)
    n_events_in = pq.ParquetFile(data_dir / schema.EVENTS_FILE).metadata.num_rows
    if vocab is not None:
        if Path(vocab).resolve() != (out_dir / "vocab.json").resolve():
            shutil.copyfile(Path(vocab) if Path(vocab).is_file() else Path(vocab) / "vocab.json",
                            out_dir / "vocab.json")
    else:
        from pragmatiq.tokenizer.fit import fit_vocab

        notes: list[str] = []
        with tqdm(total=n_events_in, desc="fit vocabulary", unit="event", unit_scale=True,
                  disable=not progress, file=sys.stderr) as bar, _pool(n_workers) as pool:
            fitted = fit_vocab(data_dir, cfg, progress=bar, pool=pool, window=2 * n_workers, notes=notes)
        for note in notes:  # after the bar, not inside its line
            warn(note)
        fitted.save(out_dir / "vocab.json")
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
        warn(f"{n} {what} [UNK] for key {key!r}" + (f" (e.g. {example!r})" if example else ""))
    manifest = {
        "format": 1,
        "pragmatiq": pragmatiq.__version__,
        "data_dir": str(data_dir.resolve()),
        "vocab_sha256": fitted.sha256,
        "vocab_size": len(fitted),
        **totals,
        "bands": {f"{b:02d}": n for b, n in sorted(writer.rows.items())},
        "cut": cut_map is not None,
        **({"cut_users": n_cut} if n_cut is not None else {}),
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
        try:
            self.manifest = json.loads(manifest_path.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"{manifest_path} is not valid JSON ({exc}): {self._retokenize()}") from None
        self.vocab = Vocab.load(self.dir / "vocab.json")
        if self.vocab.sha256 != self.manifest["vocab_sha256"]:
            raise ValueError(f"{self.dir}: vocab.json does not match the shards (hash "
                             f"{self.vocab.sha256[:12]} vs {self.manifest['vocab_sha256'][:12]})")
        if expect_vocab_sha256 and expect_vocab_sha256 != self.vocab.sha256:
            raise ValueError(f"{self.dir}: shards were encoded with vocabulary {self.vocab.sha256[:12]}, "
                             f"but this run needs {expect_vocab_sha256[:12]}: re-tokenize with "
                             "--vocab RUN/vocab.json")
        index = self._read_index()
        self.user_ids: list[str] = index.column("user_id").to_pylist()
        self.band = index.column("band").to_numpy().astype(np.int64)
        self.row = index.column("row").to_numpy().astype(np.int64)
        self.lengths = index.column("cost").to_numpy().astype(np.int64)  # cost per user
        self.n_events = index.column("n_events").to_numpy().astype(np.int64)
        self._files: dict[int, pq.ParquetFile] = {}
        self._cache: OrderedDict = OrderedDict()
        self._cache_size = cache_row_groups

    def _retokenize(self) -> str:
        manifest = getattr(self, "manifest", None)
        data = manifest.get("data_dir", "DATA") if isinstance(manifest, dict) else "DATA"
        vocab = self.dir / "vocab.json"
        reuse = f" --vocab {vocab}" if vocab.is_file() else " (with --vocab if it was made with a given vocabulary)"
        return (f"the token directory is damaged or incomplete; re-tokenize: pragmatiq tokenize {data} "
                f"--out {self.dir}{reuse}")

    def _unreadable(self, path: Path, exc: BaseException) -> ValueError:
        return ValueError(f"{path} is not readable parquet ({' '.join(str(exc).split())}): {self._retokenize()}")

    def _read_index(self) -> pa.Table:
        """index.parquet, after checking it and every band file it refers to: present, readable
        parquet (footers only), with the rows the index points at."""
        path = self.dir / "index.parquet"
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: {self._retokenize()}")
        try:
            index = pq.read_table(path)
        except (pa.ArrowException, OSError) as exc:
            raise self._unreadable(path, exc) from None
        missing = [c for c in INDEX_COLUMNS if c not in index.column_names]
        if missing:
            raise ValueError(f"{path} lacks column(s) {missing}: {self._retokenize()}")
        if not index.num_rows:
            return index
        needed = index.select(["band", "row"]).group_by("band").aggregate([("row", "max")])
        for band, last in zip(needed.column("band").to_pylist(), needed.column("row_max").to_pylist()):
            band_path = self.dir / f"band-{band:02d}.parquet"
            if not band_path.is_file():
                raise FileNotFoundError(f"{band_path} not found ({path} refers to it): {self._retokenize()}")
            try:
                pf = pq.ParquetFile(band_path)
            except (pa.ArrowException, OSError) as exc:
                raise self._unreadable(band_path, exc) from None
            n_rows = pf.metadata.num_rows
            pf.close()
            if n_rows <= last:
                raise ValueError(f"{band_path} holds {n_rows:,} users but {path} refers to row {last:,}: "
                                 f"{self._retokenize()}")
        return index

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
