"""Fit + encode: vocabulary, determinism, records == batch, cuts, caps, dataset access."""

import hashlib
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pragmatiq import api
from pragmatiq.tokenizer import (RecordError, TokenDataset, Vocab, encode_records, load_tokenizer_config,
                                 records_to_batch)
from pragmatiq.tokenizer.vocab import EVT, MASK, PAD, SPECIALS, UNK, USR

from .conftest import _us, records_of


def _digest(d):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(d.iterdir())
            if p.name != "manifest.json"}


def test_vocab_layout_kinds_and_round_trip(tok, tmp_path):
    v = Vocab.load(tok / "vocab.json")
    assert (PAD, MASK, UNK, USR, EVT) == (0, 1, 2, 3, 4) and len(SPECIALS) == 5
    kinds = {k: s.kind for k, s in v.keys.items()}
    assert kinds["amount"] == "numeric" and kinds["price"] == "numeric"
    assert kinds["mcc"] == "categorical" and kinds["currency"] == "categorical"
    assert kinds["merchant"] == "text" and kinds["source"] == "categorical"
    assert kinds["profile.country"] == "categorical" and kinds["lifelong.kyc_passed"] == "categorical"
    ids = sorted(s.key_id for s in v.keys.values())
    assert ids == list(range(5, 5 + len(ids)))  # keys right after the specials
    assert v.keys["amount"].n_values == 65  # zero bucket + 64 percentile buckets
    assert len(v) <= 28_000 and v.bpe_offset < len(v)
    v.save(tmp_path / "v.json")
    again = Vocab.load(tmp_path / "v.json")
    assert again.sha256 == v.sha256 and again.to_dict() == v.to_dict()
    text = (tmp_path / "v.json").read_text().replace('"amount"', '"amount2"', 1)
    (tmp_path / "edited.json").write_text(text)
    with pytest.raises(ValueError, match="hash mismatch"):
        Vocab.load(tmp_path / "edited.json")


def test_unknown_config_key_is_an_error():
    with pytest.raises(ValueError, match="unknown tokenizer config key.*bogus"):
        load_tokenizer_config({"bogus": 1})
    assert load_tokenizer_config("configs/data/tokenizer_nemotron.yaml").nemotron


def test_byte_identical_for_any_worker_count(book, tok, tmp_path):
    api.tokenize(book, tmp_path / "w2", n_workers=2, progress=False)
    assert _digest(tok) == _digest(tmp_path / "w2")


def test_records_path_gives_the_batch_tokens_for_200_users(book, tok):
    ds = TokenDataset(tok)
    records = records_of(book)
    assert len(records) == 200
    rows = encode_records(records, ds.vocab)
    where = {u: i for i, u in enumerate(ds.user_ids)}
    for row in rows:
        ref = ds[where[row["user_id"]]]
        for name, value in ref.items():
            np.testing.assert_array_equal(np.asarray(row[name]), np.asarray(value), err_msg=name)


def test_dataset_rows_are_consistent(tok):
    ds = TokenDataset(tok)
    m = json.loads((tok / "manifest.json").read_text())
    assert len(ds) == m["users"] == 200
    total_tokens = 0
    for i in range(len(ds)):
        r = ds[i]
        assert len(r["event_ntok"]) == len(r["event_tau"]) == r["n_events"]
        assert r["event_ntok"].sum() == len(r["key_ids"]) == r["n_tokens"]
        assert (r["event_ntok"] >= 1).all() and (r["event_ntok"] <= 24).all()
        assert len(r["profile_key_ids"]) <= 200
        assert np.all(np.diff(r["event_tau"]) <= 0)  # time order: tau shrinks towards the latest
        if r["n_events"]:
            assert r["event_tau"][-1] == 0.0
        total_tokens += r["n_tokens"]
    assert total_tokens == m["tokens"]


def test_refuses_mismatched_vocabulary(tok):
    with pytest.raises(ValueError, match="re-tokenize"):
        TokenDataset(tok, expect_vocab_sha256="0" * 64)


def test_reused_vocabulary_is_copied_and_not_refitted(book, tok, tmp_path):
    m = api.tokenize(book, tmp_path / "t", vocab=tok / "vocab.json", progress=False)
    assert (tmp_path / "t" / "vocab.json").read_bytes() == (tok / "vocab.json").read_bytes()
    assert m["vocab_sha256"] == json.loads((tok / "manifest.json").read_text())["vocab_sha256"]


def test_cut_truncates_before_the_event_cap(book, tok, tmp_path):
    labels = pq.read_table(book / "labels" / "default_12m.parquet")
    cut = labels.column("eval_ts")[0].as_py()
    user = labels.column("user_id")[0].as_py()
    api.tokenize(book, tmp_path / "cut", vocab=tok / "vocab.json", progress=False,
                 cuts={user: cut}, config={"max_events": 5})
    ds = TokenDataset(tmp_path / "cut")
    row = ds[ds.user_ids.index(user)]
    events = pq.read_table(book / "events.parquet", filters=[("user_id", "=", user)])
    ts = events.column("ts").to_pylist()
    before = [t for t in ts if t < cut]
    assert row["n_events"] == min(5, len(before))  # the 5 most recent *pre-cut* events
    # tau is measured to the cut, so even the latest kept event is > 0
    latest = max(before)
    expected = 8 * np.log1p((cut - latest).total_seconds() / 8)
    assert row["event_tau"][-1] == pytest.approx(expected, rel=1e-5)
    profiles = pq.read_table(book / "profiles.parquet", filters=[("user_id", "=", user)]).to_pylist()[0]
    kept_marks = sum(1 for m in profiles["lifelong"] if m["ts"] < cut)
    v = ds.vocab
    life_ids = {s.key_id for k, s in v.keys.items() if k.startswith("lifelong.")}
    assert sum(k in life_ids for k in row["profile_key_ids"]) == kept_marks


def test_records_errors_name_record_and_field(tok):
    v = Vocab.load(tok / "vocab.json")
    ok = {"user_id": "u1", "events": [{"ts": 1718200000000000, "source": "transaction",
                                       "fields": {"amount": "42.50"}}], "attributes": {}, "lifelong": []}
    records_to_batch([ok], v)
    bad = [
        ({"events": []}, r"record 0\.user_id"),
        ({**ok, "events": [{"ts": 1718200000, "source": "app", "fields": {}}]}, "looks like seconds"),
        ({**ok, "events": [{"ts": 1718200000000, "source": "app", "fields": {}}]}, "milliseconds"),
        ({**ok, "events": [{"ts": "yesterday", "source": "app", "fields": {}}]}, "ISO-8601"),
        ({**ok, "events": [{"ts": 1718200000000000, "fields": {}}]}, r"events\[0\]\.source"),
        ({**ok, "events": [{"ts": 1718200000000000, "source": "app", "fields": {"a": [1]}}]}, r"fields\.a"),
    ]
    for rec, pattern in bad:
        with pytest.raises(RecordError, match=pattern):
            records_to_batch([ok, rec] if "record 0" not in pattern else [rec], v)
    with pytest.raises(RecordError, match="JSON array"):
        records_to_batch({"user_id": "u1"}, v)
    iso = {**ok, "events": [{"ts": "2024-06-12T13:46:40Z", "source": "transaction", "fields": {"amount": "42.50"}}]}
    a, b = records_to_batch([ok], v), records_to_batch([iso], v)
    assert a.event_hour.tolist() == b.event_hour.tolist()


def test_tutorial_dataset_tokenizes(tmp_path):
    """The tutorial's hand-built tables (fields inferred as a struct by pyarrow)."""
    d = tmp_path / "data"
    d.mkdir()
    events = pa.table({
        "user_id": ["u1", "u1"],
        "ts": pa.array([1_700_000_000_000_000, 1_700_003_600_000_000], type=pa.timestamp("us")),
        "source": ["transaction", "app"],
        "fields": [
            {"amount": "42.10", "mcc": "5411", "merchant": "TESCO STORES 4521"},
            {"screen": "home", "action": "view"},
        ],
    })
    pq.write_table(events, d / "events.parquet")
    profiles = pa.table({
        "user_id": ["u1"], "as_of": pa.array([1_700_003_600_000_000], pa.timestamp("us")),
        "attributes": pa.array([[("country", "GB")]], pa.map_(pa.string(), pa.string())),
        "lifelong": pa.array([[{"key": "account_opened", "ts": 1_600_000_000_000_000}]],
                             pa.list_(pa.struct([("key", pa.string()), ("ts", pa.timestamp("us"))]))),
    })
    pq.write_table(profiles, d / "profiles.parquet")
    m = api.tokenize(d, tmp_path / "tok", progress=False)
    assert m["users"] == 1 and m["events"] == 2
    row = TokenDataset(tmp_path / "tok")[0]
    assert row["event_ntok"].tolist()[1] == 3  # source + screen + action
    assert row["event_ntok"][0] >= 4  # source + amount + mcc + merchant pieces


def test_nemotron_mode_carries_raw_strings(book, tmp_path):
    api.tokenize(book, tmp_path / "nem", config="configs/data/tokenizer_nemotron.yaml", progress=False)
    ds = TokenDataset(tmp_path / "nem")
    v = ds.vocab
    row = next(ds[i] for i in range(len(ds)) if len(ds[i]["texts"]))
    text_keys = {s.key_id for s in v.keys.values() if s.kind == "text"}
    idx = row["text_index"]
    assert all(row["key_ids"][i] in text_keys for i in idx)
    assert all(row["value_ids"][i] == v.keys[v.id_to_token(int(row["key_ids"][i]))[1:-1]].offset for i in idx)
    assert all(isinstance(t, str) and t for t in row["texts"])
    from pragmatiq.tokenizer import collate

    batch = collate([row, row])
    assert batch.text_token_index.shape[0] == 2 * len(idx) and len(batch.texts) == 2 * len(idx)
    assert int(batch.text_token_index[len(idx)]) == int(idx[0]) + len(row["key_ids"])


def test_nemotron_off_is_byte_identical_to_default(book, tok, tmp_path):
    api.tokenize(book, tmp_path / "off", config={"nemotron": False}, progress=False)
    assert _digest(tok) == _digest(tmp_path / "off")


def test_records_path_one_user_of_many_events(tok):
    v = Vocab.load(tok / "vocab.json")
    rec = {"user_id": "u", "events": [
        {"ts": 1_700_000_000_000_000 + i * 60_000_000, "source": "transaction",
         "fields": {"amount": f"{i}.50", "merchant": "TESCO STORES 4521", "mcc": "5411"}}
        for i in range(1000)], "attributes": {"country": "GB"}, "lifelong": []}
    batch = records_to_batch([rec], v)
    assert batch.n_events == 1000 and batch.cu_events.tolist() == [0, 1000]
    assert _us is not None
