"""`probe`: embeddings from a trained run against two baselines on one seeded user split.

    res = probe("data", "runs/nano", "data/labels/default_12m.parquet")
    print(format_probe_table(res))

Histories are cut at each user's `eval_ts` for every feature set: the run's embeddings come from
a re-tokenization with the cuts, the baselines count only events with `ts < eval_ts`.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pyarrow.compute as pc

from pragmatiq.eval.baselines import KINDS, baseline_frame
from pragmatiq.eval.embedding import embed_users, is_data_dir, source_data_dir
from pragmatiq.eval.labels import LabelTable, book_spans, check_label_coverage, read_label_table
from pragmatiq.eval.probes import MODELS, cross_validate, fit_probe, fold_splits, split_users

# the embedding beside the hand-crafted aggregates: does it add to features a bank already has?
COMBINED = {"embedding+aggregates": ("embedding", "aggregates")}
FEATURE_SETS = ("embedding",) + KINDS + tuple(COMBINED)
_CACHE_ENTRIES = 6  # two cuts' embedding, counts and aggregates
_CACHE_MAX_BYTES = 512 << 20


class _ProbeCache:
    """Features of recent probes in this process (embeddings and baselines), reused when a later
    label table cuts every one of its users at the same eval_ts (churn_6m and ltv_positive of one
    book, say): a user's features depend only on the user's history before the cut. Also the
    probes' encoded events (`event_cache`), which label tables with other cuts share."""

    def __init__(self):
        self.entries: list[tuple] = []  # (key, user_ids, cut_us, ids, E), most recent last
        self.events = None  # (key, EventStateCache)
        self.spans = None  # (key, BookSpans): the book's users and event times, for the label checks

    @staticmethod
    def key(raw: Path, run_dir: Path | None, device: str) -> tuple:
        """The data and run (None for the baselines, which need no run) that features come from."""
        stamp = lambda p: p.stat().st_mtime_ns if p.exists() else 0  # noqa: E731
        run = None if run_dir is None else (str(run_dir.resolve()), stamp(run_dir / "model.safetensors"))
        return (str(raw.resolve()), stamp(raw / "events.parquet"), stamp(raw / "profiles.parquet"), run, device)

    def get(self, key: tuple, labels: LabelTable):
        for k, users, cut_us, ids, E in reversed(self.entries):
            if k != key or (cut_us is None) != (labels.cut_us is None):
                continue
            at = pc.index_in(labels.user_ids, value_set=users)
            if at.null_count:
                continue
            at = at.to_numpy(zero_copy_only=False)
            if cut_us is None or np.array_equal(cut_us[at], labels.cut_us):
                return ids, E
        return None

    def put(self, key: tuple, labels: LabelTable, ids: list[str], E: np.ndarray) -> None:
        if E.nbytes <= _CACHE_MAX_BYTES:
            self.entries = (self.entries + [(key, labels.user_ids, labels.cut_us, ids, E)])[-_CACHE_ENTRIES:]

    def clear(self) -> None:
        self.entries = []
        self.events = None
        self.spans = None

    def book_spans(self, raw: Path):
        """`book_spans(raw)`, kept while the book's files are unchanged."""
        key = self.key(raw, None, "spans")
        if self.spans is None or self.spans[0] != key:
            self.spans = (key, book_spans(raw))
        return self.spans[1]

    def event_cache(self, key: tuple):
        """The encoded events of this process's probes with the run and data of `key`: label
        tables with other cuts share every event before both cuts (a new cache when `key` changes)."""
        from pragmatiq.zoo.event_cache import EventStateCache

        if self.events is None or self.events[0] != key:
            self.events = (key, EventStateCache())
        return self.events[1]


_CACHE = _ProbeCache()


def clear_probe_caches() -> None:
    """Drop this process's cached probe embeddings and encoded events (their memory goes back)."""
    _CACHE.clear()


def resolve_data_dir(data_dir: str | Path, tok_dir: str | Path | None = None) -> Path:
    """The raw data directory: `data_dir` itself, or the source recorded in a token manifest."""
    for cand in (data_dir, tok_dir):
        if cand is None:
            continue
        if is_data_dir(cand):
            return Path(cand)
        src = source_data_dir(cand)
        if src is not None:
            return src
    raise FileNotFoundError(
        f"{data_dir}: neither a raw data directory (events.parquet) nor a token directory whose"
        " manifest names one; probes need the raw data for the cut re-tokenization and baselines")


def probe(
    data_dir: str | Path,
    run_dir: str | Path,
    label_path: str | Path,
    *,
    tok_dir: str | Path | None = None,
    seed: int = 0,
    test_size: float = 0.3,
    device: str = "cpu",
    progress: bool = True,
    n_workers: int = 1,
    token_budget: int = 32768,
    feature_sets: tuple[str, ...] = FEATURE_SETS,
    cache: bool = True,
    folds: int = 1,
) -> dict:
    """Probe a trained run's user embeddings on one label table against the baselines.

    Args:
        data_dir: raw data directory, or a token directory whose manifest names it.
        run_dir: trained run (model.safetensors, model.json, vocab.json).
        label_path: `labels/<task>.parquet`, one row per user with `label` (and `eval_ts`).
        tok_dir: token directory (used only to find the raw data when `data_dir` is not raw).
        cache: reuse this process's embeddings and baselines of an earlier probe whose cuts cover
            this one, and its encoded events (an event before both cuts is encoded once);
            `clear_probe_caches()` frees them.
        folds: 1 fits on one seeded split (`test_size` held out); k > 1 runs seeded stratified
            k-fold cross-validation and reports each score's mean over the folds, with its
            standard deviation (`roc_auc_std`, `pr_auc_std`): less noise when comparing feature
            sets on a small book, k times the fitting time.

    Returns a dict: task, n_users (probed), n_labeled, n_no_history (labeled users without an
    embedding, dropped from every feature set), prevalence, seed, test_size, split (held-out
    fingerprint), n_train, n_test, n_pos_test, seconds, and `rows`: one per feature set x model
    with features, model, n_features, roc_auc, pr_auc (None when the held-out users are one class).
    """
    from pragmatiq._hardware import check_device

    t0 = time.perf_counter()
    unknown = set(feature_sets) - set(FEATURE_SETS)
    if unknown:
        raise ValueError(f"unknown feature sets {sorted(unknown)}; valid: {', '.join(FEATURE_SETS)}")
    if folds < 1:
        raise ValueError(f"folds must be 1 (one split) or more (cross-validation), got {folds}")
    raw = resolve_data_dir(data_dir, tok_dir)
    labels = read_label_table(label_path)
    needed = set(feature_sets).union(*(COMBINED.get(name, ()) for name in feature_sets))
    if "embedding" in needed:
        check_device(device)  # the run itself is checked first thing in embed_users
    # labelled users absent from the book are left out of every feature set (with a warning); eval_ts
    # outside the events' range warns (leakage, empty histories); no user in the book is an error
    spans = _CACHE.book_spans(raw) if cache else book_spans(raw)
    label_name = str(label_path) if isinstance(label_path, (str, Path)) else f"label table {labels.task}"
    in_book = check_label_coverage(labels.user_ids, labels.cut_us, spans, label=label_name, data_dir=raw,
                                   dropped="they are left out of the probe")
    keep = np.flatnonzero(in_book)
    features: dict[str, np.ndarray] = {}
    if "embedding" in needed:
        key = _CACHE.key(raw, Path(run_dir), device)
        hit = _CACHE.get(key, labels) if cache else None
        if hit is None:
            cuts = labels.cuts() if labels.cut_us is not None else None
            ids, E = embed_users(raw, run_dir, cuts=cuts, users=labels.user_ids.to_pylist(),
                                 device=device, n_workers=n_workers, token_budget=token_budget,
                                 progress=progress, event_cache=_CACHE.event_cache(key) if cache else True)
            if cache:
                _CACHE.put(key, labels, ids, E)
        else:
            ids, E = hit
        where = {u: i for i, u in enumerate(ids)}
        label_ids = labels.user_ids.to_pylist()
        rows = np.array([where.get(u, -1) for u in label_ids], dtype=np.int64)  # per user, not event
        keep = np.flatnonzero(in_book & (rows >= 0))
        features["embedding"] = E[rows[keep]]
    for kind in KINDS:
        if kind in needed:
            key = _CACHE.key(raw, None, kind)
            hit = _CACHE.get(key, labels) if cache else None
            if hit is None:
                users, _, X = baseline_frame(raw, labels, kind)  # (U, F) in label order
                if cache:
                    _CACHE.put(key, labels, users, X)
            else:
                users, X = hit
                at = {u: i for i, u in enumerate(users)}
                X = X[np.array([at[u] for u in labels.user_ids.to_pylist()], dtype=np.int64)]
            features[kind] = X[keep]
    for name, parts in COMBINED.items():
        if name in feature_sets:
            features[name] = np.hstack([features[part] for part in parts])  # (U, F1 + F2)
    y = labels.label[keep]
    split = split_users(y, seed=seed, test_size=test_size) if folds == 1 else None
    splits = fold_splits(y, seed=seed, folds=folds) if folds > 1 else None
    result = {
        "task": labels.task, "label_path": str(label_path), "run": str(run_dir),
        "n_users": int(len(keep)), "n_labeled": int(labels.n_users),
        "n_no_history": int(labels.n_users - len(keep)), "prevalence": float(y.mean()),
        "seed": seed, "test_size": test_size if folds == 1 else 1.0 / folds, "folds": folds, "rows": [],
    }
    fits = feature_sets
    if progress:  # the fits are the slow part with folds > 1 (tuned logistic regression, boosting)
        from tqdm.auto import tqdm

        fits = tqdm(feature_sets, desc=f"probe {labels.task}", unit="feature set", leave=False)
    for name in fits:
        X = features[name]
        res = fit_probe(X, y, seed=seed, split=split) if splits is None else cross_validate(X, y, splits, seed=seed)
        result.update({k: res[k] for k in ("split", "n_train", "n_test", "n_pos_test")})
        for model in MODELS:
            scores = {k: v if isinstance(v, list) else None if math.isnan(v) else v
                      for k, v in res["models"][model].items()}
            result["rows"].append({"features": name, "model": model, "n_features": int(X.shape[1]),
                                   **scores})  # None where undefined (one class held out): strict JSON
    result["seconds"] = round(time.perf_counter() - t0, 3)
    return result


def _fmt(x: float, std: float | None = None) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "  n/a"
    return f"{x:.3f}" if std is None else f"{x:.3f}±{std:.3f}"


def format_probe_table(results: dict | list[dict]) -> str:
    """A plain-text table, one line per task x feature set x model."""
    if isinstance(results, dict):
        results = [results]
    cv = any(res.get("folds", 1) > 1 for res in results)
    w = 13 if cv else 7  # mean±std over folds, or one split's score
    f = max([8] + [len(r["features"]) for res in results for r in res["rows"]])
    head = f"{'task':<14} {'users':>6} {'prev':>6}  {'features':<{f}} {'model':<7} {'ROC-AUC':>{w}} {'PR-AUC':>{w}}"
    lines = [head, "-" * len(head)]
    for res in results:
        for r in res["rows"]:
            lines.append(
                f"{res['task']:<14} {res['n_users']:>6} {res['prevalence']:>6.3f}  {r['features']:<{f}}"
                f" {r['model']:<7} {_fmt(r['roc_auc'], r.get('roc_auc_std')):>{w}}"
                f" {_fmt(r['pr_auc'], r.get('pr_auc_std')):>{w}}")
    return "\n".join(lines)
