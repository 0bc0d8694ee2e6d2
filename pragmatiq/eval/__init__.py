"""Probes and baselines on label tables (DESIGN §1: `pragmatiq.eval`; never imports train).

    from pragmatiq.eval import probe, format_probe_table
    print(format_probe_table(probe("data", "runs/nano", "data/labels/default_12m.parquet")))

- `baseline_features(data_dir, labels, kind)`: "counts" (per-source event counts) or
  "aggregates" (hand-crafted), over events with `ts < eval_ts`, vectorized.
- `fit_probe(X, y)`: seeded stratified user split; gradient boosting and standardized logistic
  regression (L2 strength by inner cross-validation); ROC-AUC and PR-AUC on the held-out users.
- `fold_splits(y, folds=5)` / `cross_validate(X, y, splits)`: the same probes over seeded
  stratified folds, each score's mean and standard deviation.
- `probe(...)`: the run's embeddings (histories cut at eval_ts) and both baselines, same split
  (or the same folds, `folds=k`).
- `embed_users(src, run_dir, cuts=...)`: offline user embeddings from a trained run.
"""

from pragmatiq.eval.baselines import baseline_feature_names, baseline_features, baseline_frame
from pragmatiq.eval.embedding import embed_users
from pragmatiq.eval.labels import LabelTable, read_label_table
from pragmatiq.eval.probes import cross_validate, fit_probe, fold_splits, split_users
from pragmatiq.eval.run import format_probe_table, probe, resolve_data_dir

__all__ = [
    "LabelTable",
    "baseline_feature_names",
    "baseline_features",
    "baseline_frame",
    "cross_validate",
    "embed_users",
    "fit_probe",
    "fold_splits",
    "format_probe_table",
    "probe",
    "read_label_table",
    "resolve_data_dir",
    "split_users",
]
