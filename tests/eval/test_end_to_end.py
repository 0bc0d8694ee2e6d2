"""probe() end to end on a tiny synthetic book with a tiny nano run, and no leakage through the
embedding path (events at or after eval_ts never reach the model).

The run is a freshly initialized nano model saved as a run directory (model.safetensors,
model.json, vocab.json): probes only need embeddings, not a good model.
"""

from __future__ import annotations

import shutil
from datetime import timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from pragmatiq.data import schema

torch = pytest.importorskip("torch")
tokenizer = pytest.importorskip("pragmatiq.tokenizer")
zoo = pytest.importorskip("pragmatiq.zoo")
if not hasattr(tokenizer, "tokenize_dataset") or not hasattr(zoo, "create_model"):
    pytest.skip("tokenizer or zoo not available yet", allow_module_level=True)

from pragmatiq.eval import embed_users, format_probe_table, probe  # noqa: E402

TASK = "ltv_positive"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(data_dir, tok_dir, run_dir): 60 users at ~4 events per user-month."""
    from pragmatiq.data.synth import synthesize

    root = tmp_path_factory.mktemp("e2e")
    data = root / "data"
    synthesize({"n_users": 60, "seed": 5, "events_per_user_month": 4.0}, out=data, n_workers=1,
               progress=False)
    tok = root / "tok"
    manifest = tokenizer.tokenize_dataset(data, tok, n_workers=1, progress=False)
    run = root / "run"
    torch.manual_seed(0)
    zoo.save_model(zoo.create_model("nano", vocab_size=manifest["vocab_size"]), run)
    shutil.copyfile(tok / "vocab.json", run / "vocab.json")
    return data, tok, run


def test_probe_reports_every_row(tiny):
    data, tok, run = tiny
    label = data / "labels" / f"{TASK}.parquet"
    res = probe(tok, run, label, seed=0, progress=False)  # a token dir: raw data from its manifest
    assert res["task"] == TASK and res["n_users"] == pq.read_table(label).num_rows
    got = [(r["features"], r["model"]) for r in res["rows"]]
    sets = ("embedding", "counts", "aggregates", "embedding+aggregates")
    assert got == [(f, m) for f in sets for m in ("gbm", "logreg")]
    for r in res["rows"]:
        assert 0.0 <= r["roc_auc"] <= 1.0 and 0.0 <= r["pr_auc"] <= 1.0, r
    width = {r["features"]: r["n_features"] for r in res["rows"]}
    assert width["embedding"] == zoo.get_config("nano", vocab_size=10).d_model
    assert width["embedding+aggregates"] == width["embedding"] + width["aggregates"]
    table = format_probe_table(res)
    assert table.count(TASK) == 8
    # same call from the raw data dir: same split, same numbers
    again = probe(data, run, label, seed=0, progress=False)
    assert again["split"] == res["split"] and again["rows"] == res["rows"]


def _plant_after_cut(data, out, label):
    """Copy the book with extra events at and after each labeled user's eval_ts."""
    shutil.copytree(data, out)
    ev = pq.read_table(data / schema.EVENTS_FILE)
    lab = pq.read_table(label)
    n = lab.num_rows
    planted = pa.table({
        "user_id": pa.concat_arrays([lab["user_id"].combine_chunks()] * 2),
        "ts": pa.concat_arrays([lab["eval_ts"].combine_chunks(),
                                pc.add(lab["eval_ts"], pa.scalar(timedelta(days=3))).combine_chunks()]),
        "source": pa.array(["transaction"] * n + ["app"] * n),
        "fields": pa.array([[("amount", "99999.00"), ("mcc", "7995"), ("txn_type", "card_payment")]] * n
                           + [[("screen", "close_account"), ("action", "tap")]] * n,
                           type=schema.STR_MAP),
    }, schema=schema.EVENTS)
    both = pa.concat_tables([ev, planted]).sort_by([("user_id", "ascending"), ("ts", "ascending")])
    pq.write_table(both, out / schema.EVENTS_FILE)
    return out


def test_embeddings_ignore_events_after_eval_ts(tiny, tmp_path):
    data, _, run = tiny
    label = data / "labels" / f"{TASK}.parquet"
    leak = _plant_after_cut(data, tmp_path / "leak", label)
    users = set(pq.read_table(label)["user_id"].to_pylist())
    u0, e0 = embed_users(data, run, cuts=label)
    u1, e1 = embed_users(leak, run, cuts=label)
    assert u0 == u1
    rows = [i for i, u in enumerate(u0) if u in users]
    np.testing.assert_allclose(e0[rows], e1[rows], rtol=0, atol=1e-6)
    # without the cut the planted events are seen, so the check above has teeth
    _, e2 = embed_users(leak, run, cuts=None)
    assert not np.allclose(e0[rows], e2[rows], atol=1e-4)
    # a user subset embeds only those users, with the same vectors
    some = [u0[i] for i in rows[:5]]
    u3, e3 = embed_users(data, run, cuts=label, users=some)
    assert u3 == sorted(some)
    np.testing.assert_allclose(e3, e0[rows[:5]], atol=1e-5)


def test_two_cuts_share_encoded_events(tiny):
    """A book embedded at two cuts with one event cache: the second cut reads the events the first
    encoded, and both give the embeddings of a call without any cache."""
    from pragmatiq.zoo.event_cache import EventStateCache

    data, _, run = tiny
    cache = EventStateCache()
    for task in ("default_12m", "churn_6m"):
        label = data / "labels" / f"{task}.parquet"
        before = cache.hits
        ids, shared = embed_users(data, run, cuts=label, event_cache=cache)
        fresh_ids, fresh = embed_users(data, run, cuts=label, event_cache=False)
        assert ids == fresh_ids
        np.testing.assert_allclose(shared, fresh, rtol=0, atol=1e-6)
    assert cache.hits - before > cache.misses / 2  # most of the second cut's events were held


def test_token_dir_with_another_vocab_is_refused(tiny, tmp_path):
    data, tok, run = tiny
    other = tmp_path / "run2"
    shutil.copytree(run, other)
    vocab = tokenizer.Vocab.load(run / "vocab.json")
    fitted = tokenizer.tokenize_dataset(data, tmp_path / "tok2", n_workers=1, progress=False,
                                        config={"target_vocab": 3000})
    if fitted["vocab_sha256"] == vocab.sha256:
        pytest.skip("config change did not change the vocabulary")
    shutil.copyfile(tmp_path / "tok2" / "vocab.json", other / "vocab.json")
    with pytest.raises(ValueError, match="re-tokenize"):
        embed_users(tok, other)


@pytest.mark.slow
def test_probe_with_a_trained_run(tiny, tmp_path):
    """A few real pretraining steps (pragmatiq.train) produce a run that probe() accepts."""
    from pragmatiq import train

    data, tok, _ = tiny
    run = train.pretrain(tok, "nano", model_size="nano", config={"max_steps": 3, "token_budget": 4096},
                         runs_root=tmp_path / "runs", progress=False)
    res = probe(tok, run, data / "labels" / f"{TASK}.parquet", seed=0, progress=False, cache=False)
    assert len(res["rows"]) == 8  # 4 feature sets x 2 models
    assert all(0.0 <= r["roc_auc"] <= 1.0 for r in res["rows"])
