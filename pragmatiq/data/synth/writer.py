"""`synthesize`: generate blocks in a process pool and stream them, in block order, to
parquet writers; write `manifest.json`.

Blocks are fixed by `block_size` and each user draws from its own generator, so the bytes on
disk depend on the config alone, never on `n_workers`. At most `2 * n_workers` blocks are in
flight, so peak memory does not grow with `n_users`.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import shutil
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pragmatiq.data import schema
from pragmatiq.data.synth import catalog as C
from pragmatiq.data.synth.block import generate_block
from pragmatiq.data.synth.config import load_synth_config
from pragmatiq.data.synth.world import US_PER_DAY, World, build_world

GENERATOR = "pragmatiq.data.synth"  # the manifest's mark of a book written here

_WORLD: World | None = None
_TMP: Path | None = None


def _init_worker(world: World, tmp: Path) -> None:
    global _WORLD, _TMP
    _WORLD, _TMP = world, tmp
    _keep_heap()


def _keep_heap() -> None:
    """glibc only: keep freed block-sized buffers in the heap instead of unmapping them, so
    each block does not page-fault its arrays in afresh (a third of a worker's time)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 1 << 30)  # M_MMAP_THRESHOLD
        libc.mallopt(-1, 1 << 30)  # M_TRIM_THRESHOLD
    except (OSError, AttributeError):
        pass


def _run_block(b: int) -> dict:
    """Generate block `b` in a worker and hand its tables back as Arrow IPC files in a
    scratch folder (memory-mapped by the writer: far cheaper than pickling through a pipe)."""
    assert _WORLD is not None and _TMP is not None
    res = generate_block(b, _WORLD)
    tables = {k: res[k] for k in ("events", "profiles", "transfers")} | res["labels"]
    paths = {}
    for name, table in tables.items():
        path = _TMP / f"block{b:07d}-{name}.arrow"
        with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as wr:
            wr.write_table(table)
        paths[name] = str(path)
    return {"paths": paths, "stats": res["stats"]}


def _load(msg: dict) -> dict:
    tables = {}
    for name, path in msg["paths"].items():
        with pa.memory_map(path) as src:
            tables[name] = pa.ipc.open_file(src).read_all()
        os.unlink(path)
    labels = {k: tables.pop(k) for k in list(tables) if k in schema.LABEL_SCHEMAS}
    return {**tables, "labels": labels, "stats": msg["stats"]}


def _blocks(world: World, n_workers: int, tmp: Path):
    """Yield block results in block order, generating up to 2 * n_workers ahead."""
    n_blocks = -(-world.cfg.n_users // world.cfg.block_size)
    if n_workers <= 1 or n_blocks == 1:
        for b in range(n_blocks):
            yield generate_block(b, world)
        return
    method = "fork" if sys.platform.startswith("linux") else "spawn"
    ctx = mp.get_context(method)
    tmp.mkdir(parents=True, exist_ok=True)
    with ProcessPoolExecutor(min(n_workers, n_blocks), mp_context=ctx,
                             initializer=_init_worker, initargs=(world, tmp)) as pool:
        pending, nxt = [], 0
        while nxt < n_blocks and len(pending) < 2 * n_workers:
            pending.append(pool.submit(_run_block, nxt))
            nxt += 1
        while pending:
            res = _load(pending.pop(0).result())
            if nxt < n_blocks:
                pending.append(pool.submit(_run_block, nxt))
                nxt += 1
            yield res


def _iso(us: int) -> str:
    return str(np.datetime64(int(us), "us"))


def _check_replaceable(out: Path) -> None:
    """Refuse to write over a dataset this generator did not write (a bank's own book, say):
    `out` may be new, empty, or hold an earlier synthetic bank (its manifest says so)."""
    names = (*schema.REQUIRED_FILES, *schema.OPTIONAL_FILES, schema.LABELS_DIR)
    found = [name for name in names if (out / name).exists()]
    if not found:
        return
    try:
        generator = json.loads((out / "manifest.json").read_text()).get("generator")
    except (OSError, ValueError, AttributeError):
        generator = None
    if generator != GENERATOR:
        raise ValueError(f"{out} already holds a dataset that pragmatiq synth did not write ({', '.join(found)}); "
                         "writing a synthetic bank there would replace it: choose another --out, or pass "
                         "--force (force=True) to replace it")


def synthesize(config=None, out="data", n_workers: int = 1, *, progress: bool = True, force: bool = False) -> dict:
    """Write a synthetic bank (events, profiles, transfers, 7 label tables, manifest) into
    `out` and return the manifest. `config`: dict of overrides, YAML path, or None. A directory
    holding another dataset is refused unless `force`; an earlier synthetic bank is replaced."""
    from tqdm import tqdm

    cfg = load_synth_config(config)
    if not isinstance(n_workers, int) or n_workers < 1:
        raise ValueError(f"n_workers must be a positive integer, got {n_workers!r}")
    out = Path(out)
    if not force:
        _check_replaceable(out)
    world = build_world(cfg)
    (out / schema.LABELS_DIR).mkdir(parents=True, exist_ok=True)
    # manifest.json is written last: its presence marks a complete book, so a stale one
    # from an earlier run must not survive a run that fails half-way.
    (out / "manifest.json").unlink(missing_ok=True)
    comp = None if cfg.compression == "none" else cfg.compression
    # Statistics and dictionaries where they pay: min/max over the free-text map values and
    # dictionaries over the map (hashing every key and value) cost more to write than they
    # save to read; zstd compresses the repeated keys anyway.
    kw = dict(compression=comp,
              write_statistics=["user_id", "ts", "source", "eval_ts", "from_user", "to_user",
                                "as_of", "observed_through"],
              use_dictionary=["user_id", "source", "from_user", "to_user",
                              "attributes.key_value.key", "attributes.key_value.value",
                              "lifelong.list.element.key", "campaign_id", "series_id"])
    files = {
        "events": (out / schema.EVENTS_FILE, schema.EVENTS),
        "profiles": (out / schema.PROFILES_FILE, schema.PROFILES),
        "transfers": (out / schema.TRANSFERS_FILE, schema.TRANSFERS),
    }
    for task, sch in schema.LABEL_SCHEMAS.items():
        files[task] = (out / schema.LABELS_DIR / f"{task}.parquet", sch)

    totals: dict = {}
    rows = {k: 0 for k in files}
    positives = {t: 0 for t in schema.LABEL_SCHEMAS}
    extra = {"profit_6m_sum": 0.0}
    bar = tqdm(total=cfg.n_users, unit="user", file=sys.stderr, disable=not progress,
               desc="synthesize", dynamic_ncols=True)
    tmp = out / f".synth-blocks-{os.getpid()}"
    gen = _blocks(world, n_workers, tmp)
    writers = {k: pq.ParquetWriter(p, s, **kw) for k, (p, s) in files.items()}
    try:
        for res in gen:
            for k in ("events", "profiles", "transfers"):
                writers[k].write_table(res[k], row_group_size=1 << 20)
                rows[k] += res[k].num_rows
            for task, t in res["labels"].items():
                writers[task].write_table(t, row_group_size=1 << 20)
                rows[task] += t.num_rows
                col = "y1" if task == "comm_uplift" else "label"
                positives[task] += int(np.asarray(t.column(col)).sum())
                if task == "ltv_positive":
                    extra["profit_6m_sum"] += float(np.asarray(t.column("profit_6m")).sum())
            for k, v in res["stats"].items():
                if isinstance(v, list):
                    totals[k] = [a + b for a, b in zip(totals.get(k, [0] * len(v)), v)]
                else:
                    totals[k] = totals.get(k, 0) + v
            bar.update(res["stats"]["n_users"])
    finally:
        gen.close()
        for wr in writers.values():
            wr.close()
        bar.close()
        shutil.rmtree(tmp, ignore_errors=True)

    manifest = _manifest(world, rows, positives, totals, extra, files, out)
    with open(out / "manifest.json", "w") as f:
        json.dump(manifest, f, indent=2, sort_keys=True)
        f.write("\n")
    return manifest


def aggregates(totals: dict, positives: dict, rows: dict) -> dict:
    """The book's shareable aggregates, in the shape of `aggregates.example.yaml`."""
    n = max(totals["n_users"], 1)
    cat_n = np.array(totals["card_count_by_category"], float)
    cat_eur = np.array(totals["card_eur_by_category"], float)
    return {
        "persona_shares": {p: c / n for p, c in zip(C.PERSONAS, totals["persona_counts"])},
        "events_per_user_month": totals["n_events"] / max(totals["active_user_months"], 1e-9),
        "fraud_rate": totals["fraud_users"] / n,
        "default_rate": positives["default_12m"] / max(rows["default_12m"], 1),
        "country_mix": {c: k / n for c, k in zip(C.COUNTRIES, totals["country_counts"])},
        "category_mix": {c: k / max(cat_n.sum(), 1) for c, k in zip(C.CAT_NAMES, cat_n)},
        "mean_ticket": {c: (e / k if k else 0.0) for c, e, k in zip(C.CAT_NAMES, cat_eur, cat_n)},
    }


def _manifest(world: World, rows, positives, totals, extra, files, out: Path) -> dict:
    import pragmatiq

    cfg = world.cfg
    prevalence = {t: positives[t] / rows[t] if rows[t] else None for t in schema.LABEL_SCHEMAS}
    agg = aggregates(totals, positives, rows)
    return {
        "generator": GENERATOR,
        "config": cfg.to_dict(),
        "versions": {"pragmatiq": getattr(pragmatiq, "__version__", "unknown"),
                     "pyarrow": pa.__version__, "numpy": np.__version__},
        "window": {"start": _iso(world.start_us), "end": _iso(world.end_us),
                   "n_days": world.n_days},
        "eval_ts": {
            "default_12m": _iso(world.start_us + world.eval_default * US_PER_DAY),
            "churn_6m": _iso(world.start_us + world.eval_churn * US_PER_DAY),
            "ltv_positive": _iso(world.start_us + world.eval_churn * US_PER_DAY),
        },
        "counts": {
            "users": totals["n_users"],
            "events": totals["n_events"],
            "events_by_source": dict(zip(schema.SOURCES, totals["events_by_source"])),
            "transfers": rows["transfers"],
            "mule_rings": len(world.rings),
            "mule_users": len(world.ring_of_user),
            "labels": {t: rows[t] for t in schema.LABEL_SCHEMAS},
        },
        "label_prevalence": prevalence,
        "label_note": "comm_uplift prevalence is mean(y1); ltv_positive mean profit_6m EUR: "
                      f"{extra['profit_6m_sum'] / max(rows['ltv_positive'], 1):.2f}",
        "aggregates": agg,
        "files": sorted(str(p.relative_to(out)) for p, _ in files.values()),
    }
