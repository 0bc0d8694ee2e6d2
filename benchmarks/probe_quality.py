"""Probe quality on the quickstart book: 5-fold cross-validated ROC-AUC of the pretrained
embeddings against the raw-count and hand-crafted baselines, and of the embeddings beside the
hand-crafted aggregates against the aggregates alone, on all three tasks.

    python benchmarks/probe_quality.py [--from QUICKSTART_DIR] [--folds 5] [--n-users 2000] [--seed 0]

Without `--from`, builds the quickstart's book and run (synthetic bank, seed 0, nano with the
quickstart's defaults; `--seed N` pretrains it with seed N, on the same book, and writes
probe_quality-seedN.json) in a temporary directory first; with it, probes an existing
`pragmatiq quickstart --out DIR` output. One 70/30 split (what the quickstart prints) holds out
~50 churners, so its ROC-AUC moves by about +-0.04 with the split; the fold mean is the number
to compare feature sets by.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import table, write_result  # noqa: E402

from pragmatiq import api  # noqa: E402
from pragmatiq._memory import release_memory, tune_malloc  # noqa: E402
from pragmatiq.quickstart import PROBE_TASKS  # noqa: E402


def _build(out: Path, n_users: int, seed: int) -> Path:
    api.synthesize({"n_users": n_users, "seed": 0}, out=out / "data", n_workers=2, progress=False)
    api.tokenize(out / "data", out / "tok", n_workers=2, progress=False)
    api.pretrain(out / "tok", "nano", model_size="nano", config={"seed": seed}, runs_root=out / "runs",
                 resume=False, progress=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--from", dest="src", type=Path, default=None, help="a quickstart output directory")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--n-users", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0, help="pretraining seed of the run it builds (the book keeps seed 0)")
    args = ap.parse_args()
    if args.src and args.seed:
        ap.error("--seed applies to the run this script builds; --from probes a run that exists")
    tune_malloc()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.src or _build(Path(tmp), args.n_users, args.seed)
        results = {}
        for task in PROBE_TASKS:
            labels = root / "data" / "labels" / f"{task}.parquet"
            results[task] = api.probe(root / "data", root / "runs" / "nano", labels, tok_dir=root / "tok", seed=0,
                                      progress=False, n_workers=2, folds=args.folds)
            release_memory()
    rows = [("task", "users", "features", "gbm ROC-AUC", "logreg ROC-AUC", "beats")]
    summary = {}
    sets = ("embedding", "counts", "aggregates", "embedding+aggregates")
    for task, res in results.items():
        by = {(r["features"], r["model"]): r for r in res["rows"]}
        best = {f: max(by[(f, m)]["roc_auc"] for m in ("gbm", "logreg")) for f in sets}
        summary[task] = {"best_roc_auc": best, "embedding_beats_counts": best["embedding"] > best["counts"],
                         "embedding_beats_aggregates": best["embedding"] > best["aggregates"],
                         "combined_beats_aggregates": best["embedding+aggregates"] > best["aggregates"]}
        flags = {"embedding": ("counts: yes" if summary[task]["embedding_beats_counts"] else "counts: NO"),
                 "embedding+aggregates": ("aggregates: yes" if summary[task]["combined_beats_aggregates"]
                                          else "aggregates: NO")}
        for f in sets:
            cells = [f"{by[(f, m)]['roc_auc']:.3f} ± {by[(f, m)]['roc_auc_std']:.3f}" for m in ("gbm", "logreg")]
            rows.append((task, res["n_users"], f, *cells, flags.get(f, "")))
    print(table(rows))
    name = "probe_quality" + (f"-seed{args.seed}" if args.seed else "")
    print("wrote", write_result(name, {"folds": args.folds, "n_users": args.n_users, "pretrain_seed": args.seed,
                                       "source": str(args.src) if args.src else "built",
                                       "summary": summary, "probes": results}))


if __name__ == "__main__":
    main()
