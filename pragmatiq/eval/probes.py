"""Probe fitting: a seeded, stratified user split and two scikit-learn models scored on it.

The split depends only on `(y, seed, test_size)`, so every feature set of one label table is
scored on the same held-out users; `split_users` exposes it and `split_digest` fingerprints it.
"""

from __future__ import annotations

import hashlib
import warnings

import numpy as np

MODELS = ("gbm", "logreg")


def split_users(y: np.ndarray, *, seed: int = 0, test_size: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """Seeded stratified split of row indices -> `(train_idx, test_idx)`, both sorted int64.

    Falls back to an unstratified split (with a warning) when a class has fewer than 2 users.
    """
    from sklearn.model_selection import train_test_split

    y = np.asarray(y)
    if not 0.0 < test_size < 1.0:
        raise ValueError(f"test_size must be in (0, 1), got {test_size}")
    idx = np.arange(len(y))
    classes, counts = np.unique(y, return_counts=True)
    stratify = y if len(classes) > 1 and counts.min() >= 2 else None
    if stratify is None:
        warnings.warn(
            f"label has class counts {dict(zip(classes.tolist(), counts.tolist()))}; splitting"
            " without stratification", stacklevel=2)
    tr, te = train_test_split(idx, test_size=test_size, random_state=seed, stratify=stratify)
    return np.sort(tr), np.sort(te)


def fold_splits(y: np.ndarray, *, seed: int = 0, folds: int = 5) -> list[tuple[np.ndarray, np.ndarray]]:
    """Seeded stratified k-fold split of row indices -> `folds` pairs `(train_idx, test_idx)`,
    sorted int64; every user is held out exactly once. Needs at least `folds` users per class."""
    from sklearn.model_selection import StratifiedKFold

    y = np.asarray(y)
    if folds < 2:
        raise ValueError(f"folds must be at least 2, got {folds}")
    counts = np.unique(y, return_counts=True)[1]
    if len(counts) < 2 or counts.min() < folds:
        raise ValueError(f"{folds}-fold probes need at least {folds} users of each class; the label"
                         f" has class counts {counts.tolist()}")
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return [(np.sort(tr), np.sort(te)) for tr, te in cv.split(np.zeros(len(y)), y)]


def cross_validate(X: np.ndarray, y: np.ndarray, splits: list[tuple[np.ndarray, np.ndarray]], *,
                   seed: int = 0, models: tuple[str, ...] = MODELS) -> dict:
    """`fit_probe` on every fold of `splits` (from `fold_splits`) -> the same keys, with each
    model's `roc_auc`/`pr_auc` the mean over folds, `roc_auc_std`/`pr_auc_std` their standard
    deviation and `roc_auc_folds` the per-fold values; `n_test` counts every held-out user once
    (all of them), `n_train` is the mean training size."""
    runs = [fit_probe(X, y, seed=seed, split=sp, models=models) for sp in splits]
    out = {"models": {}, "folds": len(splits), "n_train": int(round(np.mean([r["n_train"] for r in runs]))),
           "n_test": int(sum(r["n_test"] for r in runs)), "n_pos_test": int(sum(r["n_pos_test"] for r in runs)),
           "split": split_digest(np.concatenate([te for _, te in splits]))}
    out["test_prevalence"] = out["n_pos_test"] / max(out["n_test"], 1)
    for name in models:
        stats = {}
        for metric in ("roc_auc", "pr_auc"):
            vals = np.array([r["models"][name][metric] for r in runs], dtype=np.float64)
            ok = vals[~np.isnan(vals)]
            stats[metric] = float(ok.mean()) if len(ok) else float("nan")
            stats[f"{metric}_std"] = float(ok.std()) if len(ok) else float("nan")
            if metric == "roc_auc":
                stats["roc_auc_folds"] = vals.tolist()
        out["models"][name] = stats
    return out


def split_digest(test_idx: np.ndarray) -> str:
    """Short fingerprint of a held-out set (identical across feature sets of one probe)."""
    return hashlib.sha256(np.asarray(test_idx, dtype=np.int64).tobytes()).hexdigest()[:12]


# logistic regression's inverse L2 strength, chosen per fit by inner cross-validation on the
# training users: the best C differs by 10^5 between feature sets (measured on the quickstart book:
# aggregates for default_12m peak at C = 0.003, embeddings for ltv_positive at 100), so one fixed
# C under-fits some feature sets and over-fits others
C_GRID = tuple(float(c) for c in np.logspace(-4, 2, 7))  # decade steps: the curves are smooth
INNER_FOLDS = 4
FALLBACK_C = 1.0  # too few users of a class for inner folds: scikit-learn's default


def _logreg(seed: int, y_train: np.ndarray):
    """Median imputation, standardization and L2 logistic regression, with C from C_GRID by
    seeded stratified inner k-fold ROC-AUC on the training users alone (refitted on all of them)."""
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    def pipeline(c: float):
        # Newton-Cholesky: exact in a few steps for these few features, where lbfgs needs
        # thousands at large C
        return make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True), StandardScaler(),
                             LogisticRegression(C=c, solver="newton-cholesky", max_iter=1000))

    k = min(INNER_FOLDS, int(np.unique(y_train, return_counts=True)[1].min()))
    if k < 2:
        return pipeline(FALLBACK_C)
    return GridSearchCV(pipeline(FALLBACK_C), {"logisticregression__C": list(C_GRID)}, scoring="roc_auc",
                        cv=StratifiedKFold(n_splits=k, shuffle=True, random_state=seed))


def _models(seed: int, y_train: np.ndarray) -> dict:
    from sklearn.ensemble import HistGradientBoostingClassifier

    n_train = len(y_train)
    return {
        # small books: shallow trees, a leaf floor (20 users, less on tiny books so trees can
        # still split) and L2 keep the boosted model from memorising
        "gbm": HistGradientBoostingClassifier(
            learning_rate=0.05, max_iter=200, max_leaf_nodes=15,
            min_samples_leaf=int(np.clip(n_train // 20, 2, 20)),
            l2_regularization=1.0, random_state=seed),
        "logreg": _logreg(seed, y_train),
    }


def _scores(y_true: np.ndarray, p: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import average_precision_score, roc_auc_score

    if len(np.unique(y_true)) < 2:  # AUC undefined on a one-class held-out set
        return {"roc_auc": float("nan"), "pr_auc": float("nan")}
    return {"roc_auc": float(roc_auc_score(y_true, p)), "pr_auc": float(average_precision_score(y_true, p))}


def fit_probe(
    X: np.ndarray,
    y: np.ndarray,
    *,
    seed: int = 0,
    test_size: float = 0.3,
    split: tuple[np.ndarray, np.ndarray] | None = None,
    models: tuple[str, ...] = MODELS,
) -> dict:
    """Fit gradient boosting and standardized logistic regression (its L2 strength chosen by inner
    cross-validation on the training users) on a seeded user split.

    Args:
        X: (U, F) features; NaN allowed (boosting handles it, logistic regression imputes medians).
        y: (U,) 0/1 labels.
        split: precomputed `(train_idx, test_idx)`; default `split_users(y, seed, test_size)`.

    Returns `{"models": {"gbm": {"roc_auc", "pr_auc"}, "logreg": {...}}, "n_train", "n_test",
    "n_pos_test", "test_prevalence", "split": digest}`; scores are on the held-out users only.
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y).astype(np.int64)
    if X.ndim != 2 or X.shape[0] != y.shape[0]:
        raise ValueError(f"X must be (U, F) with U = len(y) = {len(y)}, got {X.shape}")
    if len(np.unique(y)) < 2:
        raise ValueError(f"label has a single class ({np.unique(y).tolist()}): nothing to probe")
    unknown = set(models) - set(MODELS)
    if unknown:
        raise ValueError(f"unknown probe models {sorted(unknown)}; valid: {', '.join(MODELS)}")
    tr, te = split if split is not None else split_users(y, seed=seed, test_size=test_size)
    out = {"models": {}, "n_train": int(len(tr)), "n_test": int(len(te)),
           "n_pos_test": int(y[te].sum()), "test_prevalence": float(y[te].mean()),
           "split": split_digest(te)}
    if len(np.unique(y[tr])) < 2:
        for name in models:
            out["models"][name] = {"roc_auc": float("nan"), "pr_auc": float("nan")}
        return out
    cols = ~np.all(np.isnan(X[tr]), axis=0)  # all-missing columns carry nothing (and break binning)
    X = X[:, cols] if cols.any() else np.zeros((len(y), 1))
    built = _models(seed, y[tr])
    for name in models:
        model = built[name]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=UserWarning)
            model.fit(X[tr], y[tr])
        out["models"][name] = _scores(y[te], model.predict_proba(X[te])[:, 1])
    return out
