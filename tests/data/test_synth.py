"""The synthetic bank: contract, determinism, planted signal, no leakage, prevalences."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from pragmatiq.data import schema
from pragmatiq.data.synth import load_synth_config, synthesize
from pragmatiq.data.synth.block import KEYS

SMALL = {"n_users": 240, "seed": 3, "block_size": 60, "mule_rings_per_1000": 10.0}  # 2 rings


@pytest.fixture(scope="module")
def small_book(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth_small")
    synthesize(SMALL, out, n_workers=1, progress=False)
    return out


@pytest.fixture(scope="module")
def book(tmp_path_factory) -> Path:
    """2,000 users: enough positives for prevalence bands and AUCs (about 3 s)."""
    out = tmp_path_factory.mktemp("synth_book")
    synthesize({"n_users": 2000, "seed": 0}, out, n_workers=2, progress=False)
    return out


def field_is(fields, key: str, value: str) -> np.ndarray:
    """(E,) bool: the event's `fields[key] == value`."""
    ex = pc.map_lookup(fields.combine_chunks() if isinstance(fields, pa.ChunkedArray)
                       else fields, key, "all")
    hit = pc.equal(pc.list_flatten(ex), value).to_numpy(zero_copy_only=False)
    out = np.zeros(len(ex), bool)
    out[pc.list_parent_indices(ex).to_numpy()[hit]] = True
    return out


def _digest(directory: Path) -> dict[str, str]:
    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*")) if p.is_file()
    }


# ---------------------------------------------------------------- contract
def test_writes_exact_schemas(small_book):
    expected = {schema.EVENTS_FILE: schema.EVENTS, schema.PROFILES_FILE: schema.PROFILES,
                schema.TRANSFERS_FILE: schema.TRANSFERS}
    expected |= {f"labels/{t}.parquet": s for t, s in schema.LABEL_SCHEMAS.items()}
    for name, sch in expected.items():
        got = pq.read_schema(small_book / name).remove_metadata()
        assert got.equals(sch), f"{name}: {got} != {sch}"
        assert pq.read_metadata(small_book / name).num_rows > 0, name
    assert sorted(p.name for p in (small_book / "labels").iterdir()) == sorted(
        f"{t}.parquet" for t in schema.LABEL_SCHEMAS)


def test_events_contiguous_time_ordered_and_complete(small_book):
    ev = pq.read_table(small_book / schema.EVENTS_FILE)
    uid = ev.column("user_id").to_numpy(zero_copy_only=False)
    ts = ev.column("ts").cast(pa.int64()).to_numpy()
    starts = np.flatnonzero(np.r_[True, uid[1:] != uid[:-1]])
    assert len(starts) == len(set(uid)), "a user's events are split into several runs"
    same = uid[1:] == uid[:-1]
    assert (np.diff(ts)[same] >= 0).all(), "events not time-ordered within a user"
    assert set(ev.column("source").unique().to_pylist()) == set(schema.SOURCES)
    for col in ev.columns:
        assert col.null_count == 0
    fields = ev.column("fields").combine_chunks()
    assert fields.items.null_count == 0 and np.diff(fields.offsets.to_numpy()).min() >= 4
    profiles = pq.read_table(small_book / schema.PROFILES_FILE)
    assert set(uid) <= set(profiles.column("user_id").to_pylist())
    assert profiles.column("user_id").to_pylist() == sorted(profiles.column("user_id").to_pylist())
    manifest = json.loads((small_book / "manifest.json").read_text())
    lo, hi = (np.datetime64(manifest["window"][k], "us").astype(np.int64) for k in ("start", "end"))
    assert ts.min() >= lo and ts.max() < hi
    # 25 months of history: the first users' events span the window.
    assert (ts.max() - ts.min()) / 86_400e6 > 700


def test_fields_per_source_are_realistic_raw_strings(small_book):
    ev = pq.read_table(small_book / schema.EVENTS_FILE)
    src = ev.column("source").to_numpy(zero_copy_only=False)
    rows = [r for s in schema.SOURCES for r in ev.take(np.flatnonzero(src == s)[:300]).to_pylist()]
    seen = {s: set() for s in schema.SOURCES}
    for r in rows:
        keys = [k for k, _ in r["fields"]]
        seen[r["source"]].update(keys)
        f = dict(r["fields"])
        assert all(isinstance(v, str) and v for v in f.values())
        if r["source"] == "transaction":
            assert ("counterparty" in f) == (f["txn_type"] == "p2p_out")
            assert ("merchant" in f) != ("counterparty" in f)
            assert len(f["mcc"]) == 4 and f["mcc"].isdigit()
            whole, cents = f["amount"].split(".")
            assert whole.isdigit() and len(cents) == 2
    for s in schema.SOURCES:
        assert seen[s] <= set(KEYS[schema.SOURCES.index(s)])
        assert len(seen[s]) >= len(KEYS[schema.SOURCES.index(s)]) - 1, (s, seen[s])
    merchants = pc.unique(pc.list_flatten(pc.map_lookup(ev.column("fields"), "merchant", "all")))
    assert any(m.as_py().startswith("TESCO STORES ") for m in merchants)
    # National chains trade at home only: no Polish grocer on a payment in pounds.
    gbp = field_is(ev.column("fields"), "currency", "GBP")
    merchant = pc.map_lookup(ev.column("fields"), "merchant", "first").to_numpy(
        zero_copy_only=False)
    assert gbp.any() and not any(str(m).startswith("BIEDRONKA") for m in merchant[gbp])
    prof = pq.read_table(small_book / schema.PROFILES_FILE).slice(0, 1).to_pylist()[0]
    assert {k for k, _ in prof["attributes"]} == {
        "age_band", "country", "occupation", "income_band", "kyc_tier", "marital_status",
        "housing", "device_count"}
    assert prof["lifelong"][0]["key"] == "account_opened"


def test_manifest_is_complete_and_time_free(small_book):
    m = json.loads((small_book / "manifest.json").read_text())
    assert m["config"] == load_synth_config(SMALL).to_dict()
    assert m["counts"]["users"] == SMALL["n_users"]
    assert m["counts"]["events"] == pq.read_metadata(small_book / "events.parquet").num_rows
    assert set(m["label_prevalence"]) == set(schema.LABEL_SCHEMAS)
    assert {"pragmatiq", "pyarrow"} <= set(m["versions"])
    text = json.dumps(m).lower()
    assert "created" not in text and "generated_at" not in text and "hostname" not in text


# ---------------------------------------------------------------- determinism
def test_same_seed_byte_identical_for_any_worker_count(small_book, tmp_path):
    synthesize(SMALL, tmp_path / "w2", n_workers=2, progress=False)
    assert _digest(small_book) == _digest(tmp_path / "w2")


def test_other_seed_other_book(small_book, tmp_path):
    synthesize({**SMALL, "seed": 4}, tmp_path / "s4", n_workers=1, progress=False)
    a, b = _digest(small_book), _digest(tmp_path / "s4")
    assert a["events.parquet"] != b["events.parquet"]


# ---------------------------------------------------------------- config
def test_config_sources_and_errors(tmp_path):
    assert load_synth_config(None).n_users == load_synth_config({}).n_users
    p = tmp_path / "c.yaml"
    p.write_text("n_users: 17\nseed: 5\n")
    assert (load_synth_config(p).n_users, load_synth_config(str(p)).seed) == (17, 5)
    with pytest.raises(ValueError, match="unknown synth config keys.*n_user.*valid keys.*n_users"):
        load_synth_config({"n_user": 10})
    with pytest.raises(ValueError, match="persona_shares.*sum to"):
        load_synth_config({"persona_shares": {"student": 0.5, "retiree": 0.2}})
    with pytest.raises(ValueError, match="default_rate"):
        load_synth_config({"default_rate": -0.1})
    with pytest.raises(ValueError, match="n_users"):
        load_synth_config({"n_users": 0})


# ---------------------------------------------------------------- labels
def test_prevalence_bands(book):
    prev = json.loads((book / "manifest.json").read_text())["label_prevalence"]
    assert 0.015 <= prev["default_12m"] <= 0.05
    assert 0.08 <= prev["churn_6m"] <= 0.14
    assert 0.72 <= prev["ltv_positive"] <= 0.83
    assert 0 < prev["aml"] < 0.03 and 0 < prev["fraud"] < 0.01
    assert 0.2 < prev["recurring"] < 0.8


def _history_features(book: Path, task: str):
    """Hand-built features from each labelled user's history truncated at its eval_ts."""
    lab = pq.read_table(book / "labels" / f"{task}.parquet")
    cut = lab.column("eval_ts")[0]
    assert pc.all(pc.equal(lab.column("eval_ts"), cut)).as_py()
    ev = pq.read_table(book / "events.parquet",
                       filters=[("ts", "<", cut.as_py())])  # the forecast cut
    users = lab.column("user_id").to_numpy(zero_copy_only=False)
    row = pc.index_in(ev.column("user_id"), pa.array(users)).to_numpy(zero_copy_only=False)
    keep = ~np.isnan(row.astype(float))
    row = np.nan_to_num(row.astype(float)).astype(int)
    ts = ev.column("ts").cast(pa.int64()).to_numpy()
    cut_us = pa.scalar(cut.as_py(), pa.timestamp("us")).cast(pa.int64()).as_py()
    fields = ev.column("fields")
    src = ev.column("source").to_numpy(zero_copy_only=False)

    def has(key, value):
        return field_is(fields, key, value)

    def count(mask):
        return np.bincount(row[keep & mask], minlength=len(users)).astype(float)

    day = 86_400e6
    recent, prior = ts >= cut_us - 60 * day, (ts < cut_us - 60 * day) & (ts >= cut_us - 240 * day)
    n = count(np.ones(len(ts), bool))
    hour = (ts // 3_600_000_000) % 24
    X = np.stack([
        np.log1p(n),
        np.log1p(count(recent)) - np.log1p(count(prior) / 3),
        np.log1p(count(recent & (src == "app"))) - np.log1p(count(prior & (src == "app")) / 3),
        count(has("merchant", "OVERDRAFT FEE")) / (1 + n) * 100,
        count(has("mcc", "7995")) / (1 + n) * 100,
        count(hour < 5) / (1 + n),
        np.log1p(count(has("txn_type", "salary"))),
        count(has("merchant", "QUICKCASH LOANS")),
        count(has("comm_event", "unsubscribed")),
    ], axis=1)
    return X, lab.column("label").to_numpy()


@pytest.mark.parametrize("task", ["default_12m", "churn_6m"])
def test_labels_learnable_from_history_before_eval(book, task):
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    X, y = _history_features(book, task)
    X = (X - X.mean(0)) / (X.std(0) + 1e-9)
    p = cross_val_predict(LogisticRegression(max_iter=2000), X, y, method="predict_proba",
                          cv=StratifiedKFold(5, shuffle=True, random_state=0))[:, 1]
    auc = roc_auc_score(y, p)
    assert auc > 0.65, f"{task}: AUC {auc:.3f} from pre-eval history"
    # Not from counts alone: the number of events says little.
    assert roc_auc_score(y, X[:, 0]) < auc - 0.05


def test_no_post_eval_leakage(tmp_path):
    """Outcomes are drawn after the cut from their own stream: reseeding them changes the
    labels and the post-eval history but not one byte of the history before eval_ts (for
    churn: among users whose default outcome did not move it), and no outcome marker
    (collections, missed-payment fees, account closure) precedes the cut."""
    cfg = {"n_users": 600, "seed": 1}
    a, b = tmp_path / "a", tmp_path / "b"
    synthesize(cfg, a, progress=False)
    synthesize({**cfg, "outcome_seed": 777}, b, progress=False)
    lab = {d: {t: pq.read_table(d / "labels" / f"{t}.parquet") for t in
               ("default_12m", "churn_6m")} for d in (a, b)}
    for t in ("default_12m", "churn_6m"):
        assert lab[a][t].column("user_id").equals(lab[b][t].column("user_id"))
        assert not lab[a][t].column("label").equals(lab[b][t].column("label")), t

    def before(d, cut, users=None):
        t = pq.read_table(d / "events.parquet", filters=[("ts", "<", cut)])
        if users is not None:
            t = t.filter(pc.is_in(t.column("user_id"), pa.array(users)))
        return t

    cut_d = lab[a]["default_12m"].column("eval_ts")[0].as_py()
    assert before(a, cut_d).equals(before(b, cut_d))
    # Churn cut (later): users whose default label is 0 in both books.
    da, db = (lab[d]["default_12m"].to_pydict() for d in (a, b))
    moved = {u for u, x, y in zip(da["user_id"], da["label"], db["label"]) if x or y}
    users = [u for u in lab[a]["churn_6m"].column("user_id").to_pylist() if u not in moved]
    cut_c = lab[a]["churn_6m"].column("eval_ts")[0].as_py()
    assert before(a, cut_c, users).equals(before(b, cut_c, users))
    # No outcome markers before the cut, yet they do occur after it.
    ev = pq.read_table(a / "events.parquet")
    ts = ev.column("ts").cast(pa.int64()).to_numpy()
    markers = {
        cut_d: [("template", "collections_notice"), ("merchant", "MISSED PAYMENT FEE")],
        cut_c: [("action", "close_account")],
    }
    labelled = pa.array(lab[a]["churn_6m"].column("user_id").to_pylist())
    in_table = pc.is_in(ev.column("user_id"), labelled).to_numpy(zero_copy_only=False)
    for cut, pairs in markers.items():
        cut_us = np.datetime64(cut, "us").astype(np.int64)
        for key, value in pairs:
            hit = field_is(ev.column("fields"), key, value)
            if key == "action":  # users who churned before the cut are not in the table
                hit &= in_table
            assert not (hit & (ts < cut_us)).any(), (key, value)
            assert hit.any(), (key, value)


def test_fraud_episodes_and_mule_rings(book):
    fraud = pq.read_table(book / "labels" / "fraud.parquet")
    pos = fraud.filter(pc.equal(fraud.column("label"), 1))
    assert 10 <= len(set(pos.column("user_id").to_pylist())) <= 80
    # Every fraudulent payment follows a new-device login within two hours.
    ev = pq.read_table(book / "events.parquet",
                       filters=[("user_id", "in", pos.column("user_id").unique().to_pylist())])
    logins = ev.filter(pa.array(field_is(ev.column("fields"), "action", "new_device_login")))
    login_ts = {}
    for u, t in zip(logins.column("user_id").to_pylist(), logins.column("ts").to_pylist()):
        login_ts.setdefault(u, []).append(t)
    for u, t in zip(pos.column("user_id").to_pylist(), pos.column("ts").to_pylist()):
        assert any(0 <= (t - s).total_seconds() <= 7200 for s in login_ts[u]), u
    # Mule rings (visible only in transfers): money comes in and leaves again within hours,
    # minus a cut. Count such pass-throughs per receiving user.
    aml = pq.read_table(book / "labels" / "aml.parquet")
    mules = set(aml.filter(pc.equal(aml.column("label"), 1)).column("user_id").to_pylist())
    assert mules
    tr = pq.read_table(book / "transfers.parquet").to_pydict()
    out_by: dict[str, list] = {}
    for f, t, a in zip(tr["from_user"], tr["ts"], tr["amount"]):
        out_by.setdefault(f, []).append((t, a))
    passes: dict[str, int] = {}
    for to, t, a in zip(tr["to_user"], tr["ts"], tr["amount"]):
        if any(0 < (t2 - t).total_seconds() <= 12 * 3600 and 0.85 * a <= a2 < a
               for t2, a2 in out_by.get(to, ())):
            passes[to] = passes.get(to, 0) + 1
    assert np.mean([passes.get(u, 0) >= 3 for u in mules]) >= 0.8
    assert sum(n >= 3 for u, n in passes.items() if u not in mules) <= 20  # of 2,000 users


def test_book_passes_validate(book):
    validate = pytest.importorskip("pragmatiq.data.validate")
    report = validate.validate_dataset(book)
    assert report.exit_code == 0 and not report.errors, report.findings
    assert not report.warnings, report.findings


def test_synth_never_imports_torch():
    import subprocess
    import sys

    code = ("import sys, pragmatiq.data.synth, pragmatiq.data.synth.calibrate; "
            "sys.exit('torch' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
