"""Bad input to `tokenize` is refused up front with one line naming the file, the column and the
fix (or warned about), never a traceback from deep inside and never silently wrong tokens."""

import hashlib
import json
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from pragmatiq import api
from pragmatiq.data import schema
from pragmatiq.tokenizer import TokenDataset, load_tokenizer_config
from pragmatiq.tokenizer.fit import Fitter

T0 = 1_700_000_000_000_000
MINUTE = 60_000_000
USERS = ("u1", "u2", "u3")


def events_table(users=USERS, per_user=30, amount=lambda i: f"{i * 1.37:.2f}") -> pa.Table:
    """`per_user` time-ordered transactions per user, users contiguous."""
    rows = [(u, T0 + k * 10**9 + i * MINUTE, k * per_user + i) for k, u in enumerate(users) for i in range(per_user)]
    return pa.table({
        "user_id": [r[0] for r in rows],
        "ts": pa.array([r[1] for r in rows], pa.int64()).cast(schema.TS),
        "source": ["transaction"] * len(rows),
        "fields": pa.array([[("amount", amount(r[2])), ("mcc", "5411")] for r in rows], schema.STR_MAP),
    }, schema=schema.EVENTS)


def profiles_table(users=USERS) -> pa.Table:
    n = len(users)
    return pa.table({
        "user_id": list(users), "as_of": pa.array([T0 + 10**10] * n, pa.int64()).cast(schema.TS),
        "attributes": pa.array([[("country", "GB")]] * n, schema.STR_MAP),
        "lifelong": pa.array([[{"key": "account_opened", "ts": T0 - 10**12}]] * n, schema.LIFELONG),
    }, schema=schema.PROFILES)


def write(d, events=None, profiles=None, **kw):
    d.mkdir(parents=True)
    pq.write_table(events if events is not None else events_table(), d / schema.EVENTS_FILE, **kw)
    pq.write_table(profiles if profiles is not None else profiles_table(), d / schema.PROFILES_FILE, **kw)
    return d


def with_column(table: pa.Table, name: str, values) -> pa.Table:
    return table.set_column(table.schema.get_field_index(name), name, values)


def tokenize(d, out, **kw):
    return api.tokenize(d, out, progress=False, **kw)


def digest(d):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(d.iterdir())
            if p.name != "manifest.json"}


# ---------------------------------------------------------------- A1: user grouping and time order
@pytest.mark.parametrize("order", ["interleaved", "shuffled"])
def test_events_not_grouped_by_user_are_refused(tmp_path, order):
    perm = {"interleaved": np.argsort(np.tile(np.arange(30), 3), kind="stable"),  # u1 u2 u3 u1 ...: time-sorted
            "shuffled": np.random.default_rng(0).permutation(90)}[order]
    ev = events_table().take(perm)
    d = write(tmp_path / "d", ev)
    with pytest.raises(ValueError) as exc:
        tokenize(d, tmp_path / "t")
    msg = str(exc.value)
    assert f"{d / 'events.parquet'}[user_id]: the events of 3 of 3 users are not contiguous" in msg
    assert "blocks" in msg and 'sort_by([("user_id", "ascending"), ("ts", "ascending")])' in msg
    assert not (tmp_path / "t" / "manifest.json").exists()  # refused before any work


@pytest.mark.parametrize("profiles", ["trailing space", "two missing"])
def test_users_with_events_but_no_profile_are_refused(tmp_path, profiles):
    # ids written two ways would otherwise become two users each: one history, one profile
    users = {"trailing space": tuple(f"{u} " for u in USERS), "two missing": USERS[:1]}[profiles]
    d = write(tmp_path / "d", profiles=profiles_table(users))
    with pytest.raises(ValueError) as exc:
        tokenize(d, tmp_path / "t")
    n = {"trailing space": 3, "two missing": 2}[profiles]
    msg = str(exc.value)
    assert f"events.parquet[user_id]: users with events but no row in profiles.parquet ({n}" in msg, msg
    assert "add a profiles.parquet row" in msg
    assert not (tmp_path / "t" / "manifest.json").exists()


@pytest.mark.parametrize("n_workers", [1, 2])
def test_time_order_within_a_user_is_checked(tmp_path, n_workers):
    ev = events_table()
    ev = ev.take(np.r_[np.arange(30), [31, 30], np.arange(32, 90)])  # u2's first two events swapped
    d = write(tmp_path / "d", ev)
    with pytest.raises(ValueError, match=r"events.parquet\[ts\]: timestamps go backwards within a user's events "
                                         r"\(e.g. row 31, user_id='u2'") as exc:
        tokenize(d, tmp_path / "t", n_workers=n_workers)
    assert "sort_by" in str(exc.value)


# ---------------------------------------------------------------- A2-A11: the data contract, up front
def _mutations():
    ev, pr = events_table(), profiles_table()
    seconds = pc.cast(pc.divide(pc.cast(ev["ts"], pa.int64()), 1_000_000), pa.int64())
    ts_null = pa.array([None] + ev["ts"].to_pylist()[1:], schema.TS)
    uid_null = pa.array(ev["user_id"].to_pylist()[:5] + [None] + ev["user_id"].to_pylist()[6:])
    as_of_null = pa.array([None] + pr["as_of"].to_pylist()[1:], schema.TS)
    fields_json = pa.array([json.dumps(dict(f)) for f in ev["fields"].to_pylist()])
    return {
        "A2 epoch seconds": (with_column(ev, "ts", seconds), None, "events.parquet[ts]",
                             ["is int64 (epoch numbers)", "1_000_000", "epoch seconds"]),
        "A3 null ts": (with_column(ev, "ts", ts_null), None, "events.parquet[ts]",
                       ["required column 'ts' has nulls (1 row; e.g. row 0 (user_id='u1'))", "pc.is_valid"]),
        "A6 null user_id": (with_column(ev, "user_id", uid_null), None, "events.parquet[user_id]",
                            ["required column 'user_id' has nulls (1 row; e.g. row 5", "pc.is_valid"]),
        "A7 categorical user_id": (with_column(ev, "user_id", pc.dictionary_encode(ev["user_id"])), None,
                                   "events.parquet[user_id]", ["(a pandas categorical)", "pa.string()"]),
        "A8 JSON fields": (with_column(ev, "fields", fields_json), None, "events.parquet[fields]",
                           ["column 'fields' is string", "map<string, string>"]),
        "A9 ISO ts": (with_column(ev, "ts", pc.strftime(ev["ts"], "%Y-%m-%dT%H:%M:%S")), None, "events.parquet[ts]",
                      ["(timestamps written as text)", 'pc.cast(table["ts"], pa.timestamp("us"))']),
        "A10 no fields": (ev.drop(["fields"]), None, "events.parquet[fields]", ["is missing", "add 'fields'"]),
        "A10 no source": (ev.drop(["source"]), None, "events.parquet[source]", ["is missing"]),
        "A10 no lifelong": (None, pr.drop(["lifelong"]), "profiles.parquet[lifelong]", ["is missing"]),
        "null as_of": (None, with_column(pr, "as_of", as_of_null), "profiles.parquet[as_of]",
                       ["required column 'as_of' has nulls"]),
        "int as_of": (None, with_column(pr, "as_of", pc.cast(pr["as_of"], pa.int64())), "profiles.parquet[as_of]",
                      ["epoch numbers"]),
        "A5 duplicate profiles": (None, pa.concat_tables([pr, pr.slice(1, 1)]), "profiles.parquet[user_id]",
                                  ["more than one profile row", "'u2' (2 rows)", "drop_duplicates"]),
    }


@pytest.mark.parametrize("case", list(_mutations()))
def test_contract_violations_are_one_clear_error(tmp_path, case):
    ev, pr, where, phrases = _mutations()[case]
    d = write(tmp_path / "d", ev, pr)
    with pytest.raises(ValueError) as exc:
        tokenize(d, tmp_path / "t")
    msg = str(exc.value)
    assert msg.startswith(f"{d}/{where}: "), msg
    for phrase in phrases:
        assert phrase in msg, msg
    assert f"pragmatiq validate {d}" in msg and "\n" not in msg
    assert not (tmp_path / "t").exists()  # nothing written


def test_every_contract_violation_is_named_at_once(tmp_path):
    ev = events_table().drop(["source"])
    d = write(tmp_path / "d", ev, pa.concat_tables([profiles_table(), profiles_table(("u1",))]))
    with pytest.raises(ValueError) as exc:
        tokenize(d, tmp_path / "t")
    assert "events.parquet[source]" in str(exc.value) and "profiles.parquet[user_id]" in str(exc.value)


def test_nulls_are_found_without_parquet_statistics(tmp_path):
    ev = events_table()
    ev = with_column(ev, "ts", pa.array(ev["ts"].to_pylist()[:40] + [None] + ev["ts"].to_pylist()[41:], schema.TS))
    d = write(tmp_path / "d", ev, write_statistics=False)
    assert pq.ParquetFile(d / "events.parquet").metadata.row_group(0).column(1).statistics is None
    with pytest.raises(ValueError, match=r"events.parquet\[ts\]: required column 'ts' has nulls \(1 row; e.g. row 40 "
                                         r"\(user_id='u2'\)\)"):
        tokenize(d, tmp_path / "t")


@pytest.mark.parametrize("damage", ["truncated", "zero bytes", "csv"])
def test_unreadable_files_are_named(tmp_path, damage):
    d = write(tmp_path / "d")
    name = "profiles.parquet" if damage == "zero bytes" else "events.parquet"
    path = d / name
    data = path.read_bytes()
    path.write_bytes({"truncated": data[: len(data) // 2], "zero bytes": b"",
                      "csv": b"user_id,ts\nu1,2024-01-01\n"}[damage])
    with pytest.raises(ValueError) as exc:
        tokenize(d, tmp_path / "t")
    msg = str(exc.value)
    assert msg.startswith(f"{path}: ")
    assert {"truncated": "truncated (no parquet footer)", "zero bytes": "file is empty (0 bytes)",
            "csv": "it looks like CSV"}[damage] in msg


def test_types_the_tokenizer_converts_exactly_are_still_accepted(tmp_path):
    """pandas' ns timestamps, timezone-aware times, large strings and integer ids encode exactly
    as the contract's types do (validate still reports them)."""
    users = ("1", "2", "3")
    ev, pr = events_table(users), profiles_table(users)
    tokenize(write(tmp_path / "ref", ev, pr), tmp_path / "t_ref")
    ref = digest(tmp_path / "t_ref")
    int_ids = (with_column(ev, "user_id", pc.cast(ev["user_id"], pa.int64())),
               with_column(pr, "user_id", pc.cast(pr["user_id"], pa.int64())))
    sub_us = pc.add(pc.cast(pc.cast(ev["ts"], pa.timestamp("ns")), pa.int64()), 999)  # sub-µs digits: truncated
    variants = {
        "ns": (with_column(ev, "ts", pc.cast(ev["ts"], pa.timestamp("ns"))), pr),
        "ns with sub-µs digits": (with_column(ev, "ts", pc.cast(sub_us, pa.timestamp("ns"))), pr),
        "tz": (with_column(ev, "ts", pc.cast(ev["ts"], pa.timestamp("us", tz="UTC"))), pr),
        "large_string": (with_column(ev, "user_id", pc.cast(ev["user_id"], pa.large_string())), pr),
        "int ids": int_ids,
    }
    for name, (e, p) in variants.items():
        d = write(tmp_path / name.replace(" ", "_"), e, p)
        tokenize(d, tmp_path / f"t_{name.replace(' ', '_')}")
        assert digest(tmp_path / f"t_{name.replace(' ', '_')}") == ref, name


def test_an_empty_events_file_is_a_warning(tmp_path, capsys):
    d = write(tmp_path / "d", events_table().slice(0, 0))
    m = tokenize(d, tmp_path / "t")
    assert m["users"] == 3 and m["tokens"] == 0
    assert f"warning: {d / 'events.parquet'} has no rows: users are encoded from their profiles alone" in (
        capsys.readouterr().err)


# ---------------------------------------------------------------- J: the output directory
def test_output_that_would_damage_the_dataset_is_refused(tmp_path):
    d = write(tmp_path / "d")
    (d / "manifest.json").write_text('{"synth": true}')
    (d / "labels").mkdir()
    with pytest.raises(ValueError, match="is the data directory itself: the token files would replace the "
                                         "dataset's manifest.json"):
        tokenize(d, d)
    with pytest.raises(ValueError, match="is the dataset's label directory"):
        tokenize(d, d / "labels")
    other = write(tmp_path / "other")
    with pytest.raises(ValueError, match=r"holds a dataset \(events.parquet, profiles.parquet\)"):
        tokenize(d, other)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="is a file"):
        tokenize(d, tmp_path / "file")
    assert (d / "manifest.json").read_text() == '{"synth": true}'
    assert sorted(p.name for p in d.iterdir()) == ["events.parquet", "labels", "manifest.json", "profiles.parquet"]
    tokenize(d, d / "tokens")  # a directory of its own, even inside the data directory, is fine


# ---------------------------------------------------------------- K: damaged token directories
def test_token_dataset_names_missing_or_damaged_files(tmp_path):
    d = write(tmp_path / "d")
    tokenize(d, tmp_path / "t")
    band = sorted((tmp_path / "t").glob("band-*.parquet"))[0]

    def damaged(how):
        t = tmp_path / how
        shutil.copytree(tmp_path / "t", t)
        return t

    t = damaged("no_index")
    (t / "index.parquet").unlink()
    with pytest.raises(FileNotFoundError, match=f"{t / 'index.parquet'} not found: .*re-tokenize: pragmatiq "
                                                f"tokenize {d} --out {t}"):
        TokenDataset(t)
    t = damaged("bad_index")
    (t / "index.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(ValueError, match=f"{t / 'index.parquet'} is not readable parquet"):
        TokenDataset(t)
    t = damaged("no_band")
    (t / band.name).unlink()
    with pytest.raises(FileNotFoundError, match=f"{t / band.name} not found"):
        TokenDataset(t)
    t = damaged("truncated_band")
    data = (t / band.name).read_bytes()
    (t / band.name).write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=f"{t / band.name} is not readable parquet .*re-tokenize"):
        TokenDataset(t)
    t = damaged("short_band")
    pq.write_table(pq.read_table(t / band.name).slice(0, 0), t / band.name)
    with pytest.raises(ValueError, match=f"{t / band.name} holds 0 users but .* refers to row"):
        TokenDataset(t)
    t = damaged("bad_manifest")
    (t / "manifest.json").write_text("{")
    with pytest.raises(ValueError, match=f"{t / 'manifest.json'} is not valid JSON"):
        TokenDataset(t)
    assert len(TokenDataset(tmp_path / "t")) == 3


# ---------------------------------------------------------------- F6: label tables that cut histories
def _labels(path, users, eval_ts):
    pq.write_table(pa.table({"user_id": pa.array(list(users), pa.string()), "eval_ts": pa.array(eval_ts, schema.TS),
                             "label": pa.array([0] * len(users), pa.int8())}), path)
    return path


def test_a_label_table_matching_no_user_is_refused(tmp_path):
    d = write(tmp_path / "d")
    label = _labels(tmp_path / "ghosts.parquet", ["g1", "g2"], [T0 + 10 * MINUTE] * 2)
    with pytest.raises(ValueError, match=f"none of the 2 users in {label} .*is in {d} .*no history would be cut"):
        tokenize(d, tmp_path / "t", cuts=label)
    empty = _labels(tmp_path / "empty.parquet", [], [])
    with pytest.raises(ValueError, match="has no rows: no history would be cut"):
        tokenize(d, tmp_path / "t", cuts=empty)


def test_partial_label_coverage_is_reported(tmp_path, capsys):
    d = write(tmp_path / "d")
    label = _labels(tmp_path / "l.parquet", ["u1", "ghost"], [T0 + 10 * MINUTE] * 2)
    m = tokenize(d, tmp_path / "t", cuts=label)
    assert m["cut"] is True and m["cut_users"] == 1
    err = capsys.readouterr().err
    assert (f"warning: {label}: histories cut at eval_ts for 1 of the 3 users of {d}; 2 users have no row there "
            "and keep their whole history (e.g. 'u2', 'u3'); 1 labelled user is not in the data (e.g. 'ghost')") in err
    ds = TokenDataset(tmp_path / "t")
    assert ds[ds.user_ids.index("u1")]["n_events"] == 10 and ds[ds.user_ids.index("u2")]["n_events"] == 30


def test_label_table_with_null_eval_ts_is_refused(tmp_path):
    d = write(tmp_path / "d")
    label = _labels(tmp_path / "l.parquet", USERS, [T0, None, None])
    with pytest.raises(ValueError, match=r"l.parquet\[eval_ts\]: 2 of 3 rows have no eval_ts \(e.g. rows 1, 2\)"):
        tokenize(d, tmp_path / "t", cuts=label)


def test_label_cuts_are_the_earliest_per_user(tmp_path):
    from pragmatiq.tokenizer import load_cuts

    label = _labels(tmp_path / "l.parquet", ["a", "b", "a"], [T0 + 5, T0 + 7, T0 + 3])
    assert load_cuts(label) == {"a": T0 + 3, "b": T0 + 7}
    ints = tmp_path / "ints.parquet"
    pq.write_table(pa.table({"user_id": [1, 2], "eval_ts": pa.array([T0, T0], schema.TS)}), ints)
    assert load_cuts(ints) == {"1": T0, "2": T0}  # integer ids read as their text, like the data's


# ---------------------------------------------------------------- B: numeric keys that partly fail to parse
def test_partly_unparsable_numbers_warn_naming_key_share_and_examples(tmp_path, capsys):
    amount = lambda i: f"{1000 + i * 13.37:,.2f}" if i % 10 == 0 else f"{i * 1.37:.2f}"  # noqa: E731
    d = write(tmp_path / "d", events_table(per_user=100, amount=amount))
    tokenize(d, tmp_path / "t")
    err = capsys.readouterr().err
    assert ("warning: events.parquet fields key 'amount': 10.0% of its 300 values do not parse as numbers "
            "(e.g. '1,000.00', '1,133.70', '1,267.40')") in err
    assert "so it is encoded as categorical instead of numeric buckets" in err
    assert "`kinds: {amount: numeric}`" in err
    assert TokenDataset(tmp_path / "t").vocab.keys["amount"].kind == "categorical"
    tokenize(d, tmp_path / "t2", config={"kinds": {"amount": "numeric"}})  # the suggested fix: no warning
    assert "do not parse" not in capsys.readouterr().err
    assert TokenDataset(tmp_path / "t2").vocab.keys["amount"].kind == "numeric"


def test_fitter_warns_only_between_the_thresholds():
    def warnings_for(values):
        f = Fitter(load_tokenizer_config())
        f.add(pa.array(["k"] * len(values)), pa.array(values))
        f.build()
        return f.warnings

    nums = [f"{i * 1.37:.2f}" for i in range(200)]
    assert warnings_for(nums) == []  # numeric
    assert warnings_for(nums[:199] + ["NaN"]) == []  # 0.5% bad: numeric, the bad one is a counted [UNK]
    assert len(warnings_for(nums[:100] + ["NaN"] * 100)) == 1  # half: warned
    assert "'NaN'" in warnings_for(nums[:100] + ["NaN"] * 100)[0]
    assert warnings_for(nums[:20] + [f"SHOP {i}" for i in range(180)]) == []  # mostly text: not a number key
    assert warnings_for([str(i % 30) for i in range(150)] + ["x"] * 50) == []  # codes: categorical
    # numbers written for people on every row: however few parse or distinct they are, warned
    assert "'£1,234.50'" in warnings_for(["£1,234.50"] * 200)[0]
    assert len(warnings_for([f"£{1000 + i * 13.37:,.2f}" for i in range(200)])) == 1
    assert len(warnings_for([f"EUR {i * 1.37:.2f}" for i in range(200)])) == 1
    assert warnings_for([f"TESCO {i % 40}" for i in range(200)]) == []  # merchant names with numbers


# ---------------------------------------------------------------- H: tokenizer settings
@pytest.mark.parametrize("setting, value, message", [
    ("n_buckets", "lots", "n_buckets must be an integer, got 'lots'"),
    ("n_buckets", -5, "n_buckets must be >= 1, got -5"),
    ("numeric_min_parse", 1.5, r"numeric_min_parse must be in \(0.0, 1.0\], got 1.5"),
    ("max_event_tokens", 1, r"max_event_tokens must be in \[2, 127\], got 1"),
    ("max_text_pieces", 0, r"max_text_pieces must be in \[1, 128\]"),
    ("max_events", 0, "max_events must be >= 1"),
    ("seed", True, "seed must be an integer, got True"),
    ("nemotron", "yes", "nemotron must be true or false"),
    ("calendar_tz", "Mars/Olympus", "calendar_tz 'Mars/Olympus' is not a timezone"),
    ("kinds", ["amount"], "kinds must be a mapping of key: kind"),
    ("kinds", {"amount": "money"}, "kind of key 'amount' is 'money'"),
])
def test_config_values_are_checked_by_name(setting, value, message):
    with pytest.raises(ValueError, match=f"tokenizer config: {message}"):
        load_tokenizer_config({setting: value})


def test_config_file_errors_name_the_file(tmp_path):
    listed = tmp_path / "list.yaml"
    listed.write_text("- n_buckets\n- seed\n")
    with pytest.raises(ValueError, match=f"{listed}: expected a mapping of tokenizer settings"):
        load_tokenizer_config(listed)
    bad = tmp_path / "bad.yaml"
    bad.write_text("n_buckets: -1\n")
    with pytest.raises(ValueError, match=f"{bad}: tokenizer config: n_buckets must be >= 1"):
        load_tokenizer_config(bad)
    cfg = load_tokenizer_config({"n_buckets": np.int64(8), "numeric_min_parse": 1})
    assert cfg.n_buckets == 8 and type(cfg.n_buckets) is int and cfg.numeric_min_parse == 1


def test_a_null_field_value_is_a_missing_value(tmp_path, capsys):
    # ("mcc", null) encodes as if the event had no mcc (no [UNK], no 'None' value), as a served
    # request's {"mcc": null} does
    fields = pa.array([[("amount", f"{i * 1.37:.2f}"), ("mcc", None if i % 2 else "5411")] for i in range(90)],
                      schema.STR_MAP)
    with_nulls = write(tmp_path / "d", with_column(events_table(), "fields", fields))
    without = pa.array([[("amount", f"{i * 1.37:.2f}")] + ([] if i % 2 else [("mcc", "5411")]) for i in range(90)],
                       schema.STR_MAP)
    absent = write(tmp_path / "e", with_column(events_table(), "fields", without))
    tokenize(with_nulls, tmp_path / "t1")
    tokenize(absent, tmp_path / "t2")
    assert "[UNK]" not in capsys.readouterr().err
    assert json.loads((tmp_path / "t1" / "manifest.json").read_text())["unk"] == {}
    assert digest(tmp_path / "t1") == digest(tmp_path / "t2")
