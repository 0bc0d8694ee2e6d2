"""Bad input never crashes the tokenizer: it maps to [UNK] or is dropped, as documented."""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pragmatiq import api
from pragmatiq.data import schema
from pragmatiq.tokenizer import TokenDataset, Vocab, records_to_batch
from pragmatiq.tokenizer.vocab import UNK

T0 = 1_700_000_000_000_000


def _write(d, events, profiles):
    d.mkdir()
    pq.write_table(pa.table(events, schema=schema.EVENTS), d / "events.parquet")
    pq.write_table(pa.table(profiles, schema=schema.PROFILES), d / "profiles.parquet")


def _amounts(n):
    return [{"amount": f"{i * 1.37:.2f}", "mcc": "5411", "merchant": f"SHOP {i % 7}"} for i in range(n)]


def test_bad_values_map_to_unk_and_nothing_crashes(tmp_path):
    good = _amounts(300)
    bad_fields = [
        None,  # null map
        [("amount", None)],  # null value: dropped
        [("amount", "NaN")], [("amount", "inf")], [("amount", "1e400")], [("amount", "-42.10")],
        [("amount", "12.00"), ("amount", "13.00")],  # duplicate key in one map
        [("merchant", "")],  # empty text
        [("amount", "")],  # empty number
        [("brand_new_key", "x")],  # a key only this user has
    ]
    n_bad = len(bad_fields)
    users = ["a"] * 300 + ["b"] * n_bad
    ts = [T0 + i * 1_000_000 for i in range(300)] + [-10**15 + i for i in range(n_bad)]  # b: before 1970
    sources = ["transaction"] * 300 + ["transaction"] * (n_bad - 1) + ["martian"]  # unknown source
    fields = [list(f.items()) for f in good] + bad_fields
    _write(tmp_path / "d", {"user_id": users, "ts": ts, "source": sources, "fields": fields},
           {"user_id": ["a", "b", "c"], "as_of": [T0] * 3,  # c: a profile with no events
            "attributes": [[("country", "GB")], [], None], "lifelong": [[], None, []]})
    m = api.tokenize(tmp_path / "d", tmp_path / "t", progress=False)
    assert m["users"] == 3
    ds = TokenDataset(tmp_path / "t")
    v = ds.vocab
    b = ds[ds.user_ids.index("b")]
    assert b["n_events"] == n_bad
    ntok = b["event_ntok"].tolist()
    assert ntok[0] == 1  # null map: just the source token
    per_event = np.split(b["value_ids"], np.cumsum(ntok)[:-1])
    amount_zero = v.keys["amount"].offset
    assert len(per_event[1]) == 1  # null value: a missing one, as in a served request's records
    assert per_event[2][1] == UNK and per_event[3][1] == UNK and per_event[4][1] == UNK  # NaN, inf, 1e400
    assert v.keys["amount"].offset < per_event[5][1] < amount_zero + v.keys["amount"].n_values  # negative: a bucket
    assert len(per_event[6]) == 3  # both duplicate keys kept
    assert per_event[7][1] == UNK and per_event[8][1] == UNK  # empty text / number
    # an unknown source seen at fit time is just another source value (validate flags it)
    assert per_event[9][0] == v.keys["source"].offset + v.keys["source"].values.index("martian")
    assert b["key_ids"][-1] == v.keys["brand_new_key"].key_id  # keys seen at fit get their own id
    c = ds[ds.user_ids.index("c")]
    assert c["n_events"] == 0 and c["n_tokens"] == 0 and len(c["profile_key_ids"]) == 0


def test_vocabulary_drift_at_encode_time_is_unk_with_a_summary(tmp_path, capsys):
    _write(tmp_path / "d", {"user_id": ["a"] * 50, "ts": [T0 + i for i in range(50)],
                            "source": ["app"] * 50, "fields": [[("screen", "home")]] * 50},
           {"user_id": ["a"], "as_of": [T0], "attributes": [[]], "lifelong": [[]]})
    api.tokenize(tmp_path / "d", tmp_path / "t", progress=False)
    v = Vocab.load(tmp_path / "t" / "vocab.json")
    batch = records_to_batch([{"user_id": "z", "events": [
        {"ts": T0, "source": "app", "fields": {"screen": "never-seen", "new_key": "1"}}]}], v)
    assert batch.value_ids.tolist() == [v.keys["source"].offset, UNK, UNK]
    _write(tmp_path / "d2", {"user_id": ["a"] * 3, "ts": [T0, T0 + 1, T0 + 2], "source": ["app"] * 3,
                             "fields": [[("screen", "settings")], [("screen", "other")], [("x", "1")]]},
           {"user_id": ["a"], "as_of": [T0], "attributes": [[]], "lifelong": [[]]})
    m = api.tokenize(tmp_path / "d2", tmp_path / "t2", vocab=tmp_path / "t" / "vocab.json", progress=False)
    assert m["unk"] == {"unknown-key:x": 1, "unseen-value:screen": 2}
    assert "unseen-value [UNK] for key 'screen'" in capsys.readouterr().err


def test_caps_events_tokens_profile(tmp_path):
    n = 40
    many = [[(f"k{j:02d}", "v") for j in range(30)]] * n  # 30 fields per event: above the 24 cap
    _write(tmp_path / "d", {"user_id": ["a"] * n, "ts": [T0 + i for i in range(n)],
                            "source": ["app"] * n, "fields": many},
           {"user_id": ["a"], "as_of": [T0],
            "attributes": [[(f"attr{j:03d}", "x") for j in range(250)]], "lifelong": [[]]})
    api.tokenize(tmp_path / "d", tmp_path / "t", config={"max_events": 10}, progress=False)
    row = TokenDataset(tmp_path / "t")[0]
    assert row["n_events"] == 10  # most recent 10
    assert (row["event_ntok"] == 24).all()
    assert row["key_ids"][0] == TokenDataset(tmp_path / "t").vocab.keys["source"].key_id  # source kept
    assert len(row["profile_key_ids"]) == 200
