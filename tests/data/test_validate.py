"""`validate_dataset`: one test per finding, each on a tiny dataset broken in one way."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

import pragmatiq
from pragmatiq.data import schema
from pragmatiq.data.validate import Finding, ValidationReport, validate_dataset
from pragmatiq.data.validate import scan as scan_mod
from pragmatiq.data.validate.events import RunTracker

from .conftest import T0, USERS, tiny_churn, tiny_events, tiny_profiles, write_tiny


def checks(report: ValidationReport, severity: str | None = None) -> set[tuple[str, str]]:
    """{(file, check)} of the report's findings (of one severity if given)."""
    return {(f.file, f.check) for f in report.findings if severity in (None, f.severity)}


def only(report: ValidationReport, check: str) -> Finding:
    found = [f for f in report.findings if f.check == check]
    assert len(found) == 1, [f.line() for f in report.findings]
    return found[0]


def with_column(table: pa.Table, name: str, values: pa.Array | list) -> pa.Table:
    arr = values if isinstance(values, pa.Array | pa.ChunkedArray) else pa.array(values)
    return table.set_column(table.schema.get_field_index(name), name, arr)


def apply_fix(table: pa.Table, fix: str) -> pa.Table:
    """Run a finding's fix code on `table` exactly as printed."""
    scope = {"table": table, "pa": pa, "pc": pc, "pragmatiq": pragmatiq}
    exec(fix, scope)  # noqa: S102 - the fix is code we generated for the user to paste
    return scope["table"]


# ---------------------------------------------------------------- clean datasets


def test_tiny_dataset_is_clean(tiny_dataset):
    report = validate_dataset(tiny_dataset)
    assert report.findings == []
    assert report.exit_code == 0 and not report.unusable


def test_tutorial_snippet_validates(tmp_path):
    """The tutorial's exact code (fields inferred as a struct of strings) plus profiles."""
    (tmp_path / "data").mkdir()
    events = pa.table({
        "user_id": ["u1", "u1"],
        "ts": pa.array([1_700_000_000_000_000, 1_700_003_600_000_000], type=pa.timestamp("us")),
        "source": ["transaction", "app"],            # groups schemas: transaction / app / trading …
        "fields": [                                   # map<string,string> per event
            {"amount": "42.10", "mcc": "5411", "merchant": "TESCO STORES 4521"},
            {"screen": "home", "action": "view"},
        ],
    })
    pq.write_table(events, tmp_path / "data/events.parquet")
    assert pa.types.is_struct(events.schema.field("fields").type)
    profiles = pa.table({
        "user_id": ["u1"],
        "as_of": pa.array([1_700_100_000_000_000], type=pa.timestamp("us")),
        "attributes": [{"age_band": "25-34", "country": "GB"}],
        "lifelong": [[{"key": "account_opened", "ts": datetime(2020, 5, 1)}]],
    })
    pq.write_table(profiles, tmp_path / "data/profiles.parquet")
    report = validate_dataset(tmp_path / "data")
    assert report.findings == [], [f.line() for f in report.findings]
    assert report.exit_code == 0


def test_timezone_aware_timestamps_are_valid(tmp_path):
    ev = tiny_events()
    ev = with_column(ev, "ts", pc.assume_timezone(ev["ts"], "UTC"))
    labels = tiny_churn()
    labels = with_column(labels, "eval_ts", pc.cast(labels["eval_ts"], pa.timestamp("us", tz="Europe/London")))
    report = validate_dataset(write_tiny(tmp_path, events=ev, labels={"churn_6m": labels}))
    assert report.findings == [], [f.line() for f in report.findings]


def test_struct_fields_with_non_string_values_is_wrong_dtype(tmp_path):
    ev = tiny_events().drop_columns(["fields"])
    ev = ev.append_column("fields", pa.array([{"amount": 42.1}] * ev.num_rows))
    f = only(validate_dataset(write_tiny(tmp_path, events=ev)), "wrong-dtype")
    assert f.column == "fields" and "schema=pragmatiq.data.schema.EVENTS" in f.fix


# ---------------------------------------------------------------- files


def test_missing_directory_is_unusable(tmp_path):
    report = validate_dataset(tmp_path / "nope")
    assert report.unusable and report.exit_code == 2
    assert only(report, "missing-directory")
    (tmp_path / "afile").write_text("x")
    assert validate_dataset(tmp_path / "afile").exit_code == 2


@pytest.mark.parametrize("missing", ["events", "profiles"])
def test_missing_required_file(tmp_path, missing):
    root = write_tiny(tmp_path, **{missing: None})
    report = validate_dataset(root)
    f = only(report, "missing-file")
    assert f.file == f"{missing}.parquet" and f.severity == "error"
    assert report.unusable and report.exit_code == 2


def test_optional_files_may_be_absent(tmp_path):
    root = write_tiny(tmp_path, transfers=None, labels={})
    assert validate_dataset(root).findings == []


def test_corrupt_required_file_is_unusable(tmp_path):
    root = write_tiny(tmp_path)
    (root / "events.parquet").write_text("user_id,ts,source\nu1,2024-01-01,app\n")
    report = validate_dataset(root)
    f = only(report, "corrupt-file")
    assert f.file == "events.parquet" and "CSV" in f.message
    assert report.exit_code == 2
    # the rest of the dataset is still checked
    assert ("profiles.parquet", "no-events") not in checks(report)


def test_corrupt_label_file_is_an_error_not_unusable(tmp_path):
    root = write_tiny(tmp_path)
    (root / "labels/churn_6m.parquet").write_bytes(b"PAR1 garbage garbage")
    report = validate_dataset(root)
    assert only(report, "corrupt-file").file == "labels/churn_6m.parquet"
    assert report.exit_code == 1


def test_corrupt_pages_are_reported_while_streaming(tmp_path):
    root = write_tiny(tmp_path)
    path = root / "events.parquet"
    data = bytearray(path.read_bytes())
    data[8:120] = bytes((b * 7 + 13) % 256 for b in data[8:120])  # first page header; footer intact
    path.write_bytes(bytes(data))
    report = validate_dataset(root)
    f = only(report, "corrupt-file")
    assert f.file == "events.parquet" and "read failed after row 0" in f.message
    assert report.exit_code == 2
    # a half-read events file must not make every profile look eventless
    assert "no-events" not in {x.check for x in report.findings}


def test_truncated_file(tmp_path):
    root = write_tiny(tmp_path)
    path = root / "profiles.parquet"
    path.write_bytes(path.read_bytes()[:100])
    f = only(validate_dataset(root), "corrupt-file")
    assert f.file == "profiles.parquet" and "truncated" in f.message


def test_zero_byte_file(tmp_path):
    root = write_tiny(tmp_path)
    (root / "profiles.parquet").write_bytes(b"")
    report = validate_dataset(root)
    f = only(report, "empty-file")
    assert f.file == "profiles.parquet" and report.exit_code == 2


def test_parquet_with_no_rows(tmp_path):
    root = write_tiny(tmp_path, events=tiny_events().slice(0, 0))
    report = validate_dataset(root)
    assert only(report, "empty-file").file == "events.parquet"
    assert report.exit_code == 1
    # every profile then has no events
    assert only(report, "no-events").count == 3


def test_non_parquet_file_in_labels_is_ignored_with_warning(tmp_path):
    root = write_tiny(tmp_path)
    (root / "labels/churn_6m.csv").write_text("user_id,label\nu1,0\n")
    report = validate_dataset(root)
    assert only(report, "ignored-file").severity == "warning"
    assert report.exit_code == 0


# ---------------------------------------------------------------- columns and dtypes


def test_missing_column(tmp_path):
    report = validate_dataset(write_tiny(tmp_path, events=tiny_events().drop_columns(["source"])))
    f = only(report, "missing-column")
    assert (f.file, f.column, f.severity) == ("events.parquet", "source", "error")
    assert report.exit_code == 1


@pytest.mark.parametrize("unit", ["ns", "ms"])
def test_pandas_timestamp_units_with_exact_cast(tmp_path, unit):
    ev = tiny_events()
    bad = with_column(ev, "ts", pc.cast(ev["ts"], pa.timestamp(unit)))
    report = validate_dataset(write_tiny(tmp_path, events=bad))
    f = only(report, "wrong-dtype")
    assert f.column == "ts" and f"timestamp[{unit}]" in f.message
    assert ("pandas' default unit" in f.message) == (unit == "ns")
    assert 'pc.cast(table["ts"], pa.timestamp("us")' in f.fix
    assert apply_fix(bad, f.fix).equals(ev)
    assert report.exit_code == 1
    assert checks(report, "error") == {("events.parquet", "wrong-dtype")}  # content still checked


def test_int_user_ids_with_exact_cast(tmp_path):
    ev = tiny_events()
    bad = with_column(ev, "user_id", pa.array([1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3], pa.int64()))
    report = validate_dataset(write_tiny(tmp_path, events=bad))
    f = only(report, "wrong-dtype")
    assert f.column == "user_id" and 'pc.cast(table["user_id"], pa.string())' in f.fix
    assert apply_fix(bad, f.fix)["user_id"].type == pa.string()
    # ids cast to strings are compared with profiles: "1" is not "u1"
    assert only(report, "unknown-user").count == 3


@pytest.mark.parametrize("fmt", ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%d/%m/%Y %H:%M:%S"])
def test_string_timestamps_with_exact_parse(tmp_path, fmt):
    ev = tiny_events()
    bad = with_column(ev, "ts", [t.strftime(fmt) for t in ev["ts"].to_pylist()])
    f = only(validate_dataset(write_tiny(tmp_path, events=bad)), "wrong-dtype")
    assert f.column == "ts" and "string" in f.message
    assert apply_fix(bad, f.fix).equals(ev), f.fix


def test_epoch_seconds_timestamps_with_exact_cast(tmp_path):
    ev = tiny_events()
    bad = with_column(ev, "ts", pc.divide(pc.cast(ev["ts"], pa.int64()), 1_000_000))
    f = only(validate_dataset(write_tiny(tmp_path, events=bad)), "wrong-dtype")
    assert "epoch seconds" in f.fix
    assert apply_fix(bad, f.fix).equals(ev), f.fix


def test_label_mistyped_as_int64(tmp_path):
    good = tiny_churn()
    bad = with_column(good, "label", pa.array([0, 1, 0], pa.int64()))
    report = validate_dataset(write_tiny(tmp_path, labels={"churn_6m": bad}))
    f = only(report, "wrong-dtype")
    assert (f.file, f.column) == ("labels/churn_6m.parquet", "label")
    assert apply_fix(bad, f.fix).equals(good)


def test_empty_python_lifelong_lists_get_a_cast(tmp_path):
    good = tiny_profiles()
    bad = with_column(good, "lifelong", pa.array([[], [], []]))  # pyarrow infers list<null>
    f = only(validate_dataset(write_tiny(tmp_path, profiles=bad)), "wrong-dtype")
    assert f.column == "lifelong" and "pragmatiq.data.schema.LIFELONG" in f.fix
    assert apply_fix(bad, f.fix).schema.field("lifelong").type.equals(schema.LIFELONG)


def test_categorical_source_is_wrong_dtype_but_still_checked(tmp_path):
    ev = tiny_events()
    src = pc.if_else(pc.equal(ev["source"], "app"), "App", ev["source"])
    bad = with_column(ev, "source", src.combine_chunks().dictionary_encode())
    report = validate_dataset(write_tiny(tmp_path, events=bad))
    f = only(report, "wrong-dtype")
    assert "pandas categorical" in f.message
    fixed = apply_fix(bad, f.fix)
    assert fixed["source"].type == pa.string()
    f = only(report, "unknown-source")
    assert f.count == 3 and "utf8_lower" in f.fix
    assert apply_fix(fixed, f.fix).equals(ev)


# ---------------------------------------------------------------- events content


def test_nulls_in_required_columns(tmp_path):
    ev = tiny_events()
    ev = with_column(ev, "user_id", pa.array(["u1", None] + ev["user_id"].to_pylist()[2:]))
    ev = with_column(ev, "ts", pa.array([None] + ev["ts"].to_pylist()[1:], pa.timestamp("us")))
    report = validate_dataset(write_tiny(tmp_path, events=ev))
    nulls = {f.column: f for f in report.findings if f.check == "null-values"}
    assert set(nulls) == {"user_id", "ts"}
    assert nulls["user_id"].count == 1 and nulls["user_id"].examples == ("row 1 (user_id=None)",)
    assert report.exit_code == 1


def test_null_and_empty_fields(tmp_path):
    ev = tiny_events()
    fields = ev["fields"].to_pylist()
    fields[0], fields[5] = None, []
    report = validate_dataset(write_tiny(tmp_path, events=with_column(ev, "fields", pa.array(fields, schema.STR_MAP))))
    null = only(report, "null-values")
    assert (null.column, null.severity, null.count) == ("fields", "error", 1)
    empty = only(report, "empty-fields")
    assert (empty.severity, empty.count) == ("warning", 1) and "row 5" in empty.examples[0]


def test_nested_fields_are_a_wrong_dtype_not_a_crash(tmp_path):
    ev = tiny_events().drop_columns(["fields"])
    ev = ev.append_column("fields", pa.array([{"card": {"mcc": "5411"}}] * ev.num_rows))
    report = validate_dataset(write_tiny(tmp_path, events=ev))
    assert checks(report) == {("events.parquet", "wrong-dtype")}


def test_empty_struct_fields_are_empty(tmp_path):
    ev = tiny_events().drop_columns(["fields"])
    rows = [{"amount": "1.00"}] * ev.num_rows
    rows[2] = {}
    report = validate_dataset(write_tiny(tmp_path, events=ev.append_column("fields", pa.array(rows))))
    assert only(report, "empty-fields").count == 1


def test_unknown_source(tmp_path):
    ev = tiny_events()
    src = ev["source"].to_pylist()
    src[1], src[2], src[6] = "transfer", "transfer", "Card"
    report = validate_dataset(write_tiny(tmp_path, events=with_column(ev, "source", src)))
    f = only(report, "unknown-source")
    assert f.count == 3 and f.severity == "error"
    assert any("'transfer'" in e for e in f.examples) and any("'Card'" in e for e in f.examples)
    assert "'transaction'" in f.fix


def _reorder(table: pa.Table, order: list[int]) -> pa.Table:
    return table.take(pa.array(order))


def test_events_not_contiguous(tmp_path):
    # u1's last event moved after u2's events
    order = [0, 1, 2, 4, 5, 6, 7, 3, 8, 9, 10, 11]
    ev = _reorder(tiny_events(), order)
    report = validate_dataset(write_tiny(tmp_path, events=ev))
    f = only(report, "not-contiguous")
    assert f.count == 1 and f.examples == ("'u1'",) and f.unit == "users"
    assert "sort_by" in f.fix


def test_timestamps_out_of_order_within_user(tmp_path):
    ev = _reorder(tiny_events(), [0, 2, 1, 3, 4, 5, 6, 7, 8, 9, 10, 11])
    report = validate_dataset(write_tiny(tmp_path, events=ev))
    f = only(report, "ts-out-of-order")
    assert f.count == 1 and f.examples[0].startswith("row 2 (user_id='u1')")
    assert "not-contiguous" not in {x.check for x in report.findings}


def test_checks_hold_across_batch_boundaries(tmp_path, monkeypatch):
    """Runs and ordering are tracked across record batches (here 2 rows each)."""
    monkeypatch.setattr(scan_mod, "BATCH_ROWS", 2)
    assert validate_dataset(write_tiny(tmp_path / "ok")).findings == []
    ev = _reorder(tiny_events(), [0, 1, 4, 5, 2, 3, 6, 7, 8, 9, 10, 11])  # u1 | u2 | u1 | u2
    report = validate_dataset(write_tiny(tmp_path / "bad", events=ev))
    assert only(report, "not-contiguous").count == 2
    ev = _reorder(tiny_events(), [0, 2, 1, 3, 4, 5, 6, 7, 8, 9, 10, 11])  # rows 1|2 swapped
    assert only(validate_dataset(write_tiny(tmp_path / "bad2", events=ev)), "ts-out-of-order").count == 1


def test_run_tracker_folds_heads_without_losing_repeats():
    runs = RunTracker(cap=1)  # fold after every batch
    for batch in (["a", "a", "b"], ["b", "c"], ["c", "a"], ["d", None, "b"]):
        runs.update(pa.array(batch, pa.string()))
    assert sorted(runs.split_users().to_pylist()) == ["a", "b"]
    assert sorted(runs.users().to_pylist()) == ["a", "b", "c", "d"]


def test_implausible_event_times(tmp_path):
    ev = tiny_events()
    # epoch milliseconds read as microseconds land in January 1970
    ms = pc.cast(pc.divide(pc.cast(ev["ts"], pa.int64()), 1000), pa.timestamp("us"))
    report = validate_dataset(write_tiny(tmp_path, events=with_column(ev, "ts", ms), labels={}))
    f = only(report, "implausible-ts")
    assert f.count == ev.num_rows and f.severity == "warning"
    # epoch nanoseconds read as microseconds land beyond Python's datetime: still reported
    ns = pc.cast(pc.multiply(pc.cast(ev["ts"], pa.int64()), 1000), pa.timestamp("us"))
    ns = _reorder(with_column(ev, "ts", ns), [1, 0] + list(range(2, 12)))
    report = validate_dataset(write_tiny(tmp_path / "ns", events=ns, labels={}))
    assert "us since epoch" in only(report, "implausible-ts").examples[0]
    assert "us since epoch" in only(report, "ts-out-of-order").examples[0]


def _one_user_report(tmp_path, fields: list) -> ValidationReport:
    """Validate one user's transactions, a minute apart, with these `fields` (one map per event)."""
    n = len(fields)
    events = pa.table({
        "user_id": ["u1"] * n,
        "ts": pa.array([T0 + timedelta(minutes=i) for i in range(n)], pa.timestamp("us")),
        "source": ["transaction"] * n,
        "fields": fields,
    }, schema=schema.EVENTS)
    return validate_dataset(write_tiny(tmp_path, events=events, profiles=tiny_profiles(("u1",)),
                                       transfers=None, labels={}))


def test_identifier_field_is_flagged_but_repeating_text_and_amounts_are_not(tmp_path):
    n = 600
    report = _one_user_report(tmp_path, [[("txn_id", f"T{100000 + i}"), ("merchant", f"SHOP {i % 40}"),
                                          ("amount", f"{i * 1.37:.2f}")] for i in range(n)])
    f = only(report, "identifier-field")
    assert "'txn_id'" in f.message and f.count == n and f.severity == "warning"
    assert f.examples[0] == "'T100000'"
    assert report.exit_code == 0


@pytest.mark.parametrize("bad, share, example", [
    (lambda i: f"{1000 + i * 13.37:,.2f}", "10.0%", "'1,000.00'"),  # thousands separators
    (lambda i: "NaN", "10.0%", "'NaN'"),
])
def test_measurement_key_with_unparsable_numbers_warns(tmp_path, bad, share, example):
    report = _one_user_report(tmp_path, [[("amount", bad(i) if i % 10 == 0 else f"{i * 1.37:.2f}"),
                                          ("mcc", str(5000 + i % 7))] for i in range(300)])
    f = only(report, "unparsable-numbers")
    assert f.severity == "warning" and f.column == "fields" and f.count == 30 and f.unit == "values"
    assert f"key 'amount' looks numeric but {share} of its 300 values" in f.message
    assert f.examples[0] == example and "kinds: {amount: numeric}" in f.fix
    assert report.exit_code == 0


def test_measurement_key_formatted_on_every_row_warns(tmp_path):
    report = _one_user_report(tmp_path, [[("amount", f"£{1000 + i * 13.37:,.2f}"), ("mcc", str(5000 + i % 7))]
                                         for i in range(300)])
    f = only(report, "unparsable-numbers")
    assert "key 'amount' looks numeric but 100.0% of its 300 values" in f.message and f.examples[0] == "'£1,000.00'"


def test_clean_or_textual_keys_are_not_unparsable_numbers(tmp_path):
    report = _one_user_report(tmp_path, [
        [("amount", "N/A" if i == 7 else f"{i * 1.37:.2f}"),  # one bad value: numeric, an [UNK]
         ("merchant", f"SHOP {i}" if i % 5 else str(i)),  # text with some numbers
         ("mcc", "x" if i % 2 else str(5000 + i % 7))]  # codes
        for i in range(300)])
    assert "unparsable-numbers" not in {f.check for f in report.findings}


def test_identifier_needs_enough_occurrences(tmp_path):
    ev = tiny_events()  # 12 events, all values unique per key: too few to judge
    assert "identifier-field" not in {f.check for f in validate_dataset(write_tiny(tmp_path, events=ev)).findings}


# ---------------------------------------------------------------- profiles and cross-file


def test_duplicate_profiles(tmp_path):
    prof = pa.concat_tables([tiny_profiles(), tiny_profiles(("u2",))])
    f = only(validate_dataset(write_tiny(tmp_path, profiles=prof)), "duplicate-profile")
    assert f.count == 1 and f.examples == ("'u2' (2 rows)",) and f.severity == "error"


def test_event_users_missing_from_profiles(tmp_path):
    report = validate_dataset(write_tiny(tmp_path, profiles=tiny_profiles(("u1", "u2")),
                                         transfers=None, labels={}))
    f = only(report, "unknown-user")
    assert (f.file, f.count, f.examples, f.severity) == ("events.parquet", 1, ("'u3'",), "error")


def test_label_users_missing_from_profiles(tmp_path):
    labels = with_column(tiny_churn(), "user_id", ["u1", "u2", "ghost"])
    f = only(validate_dataset(write_tiny(tmp_path, labels={"churn_6m": labels})), "unknown-user")
    assert (f.file, f.examples, f.severity) == ("labels/churn_6m.parquet", ("'ghost'",), "error")


def test_profiles_without_events_warn(tmp_path):
    report = validate_dataset(write_tiny(tmp_path, profiles=tiny_profiles(USERS + ("u4",))))
    f = only(report, "no-events")
    assert (f.file, f.examples, f.severity) == ("profiles.parquet", ("'u4'",), "warning")
    assert report.exit_code == 0


def test_identifier_attribute_is_flagged(tmp_path):
    users = tuple(f"u{i}" for i in range(600))
    prof = tiny_profiles(users)
    prof = with_column(prof, "attributes", pa.array(
        [[("email", f"{u}@example.com"), ("country", "GB")] for u in users], schema.STR_MAP))
    report = validate_dataset(write_tiny(tmp_path, profiles=prof))
    f = only(report, "identifier-field")
    assert (f.file, f.column) == ("profiles.parquet", "attributes") and "'email'" in f.message


# ---------------------------------------------------------------- transfers


def test_transfers_nulls_types_and_unknown_counterparties(tmp_path):
    tr = pa.table({"from_user": ["u1", "u2", None], "to_user": ["u2", "ext-9", "u1"],
                   "ts": pa.array([T0] * 3, pa.timestamp("us")), "amount": pa.array([10, 20, 30])})
    report = validate_dataset(write_tiny(tmp_path, transfers=tr))
    assert only(report, "null-values").column == "from_user"
    assert only(report, "wrong-dtype").fix == (
        'table = table.set_column(table.schema.get_field_index("amount"), "amount", '
        'pc.cast(table["amount"], pa.float64()))')
    f = only(report, "unknown-user")
    assert (f.file, f.examples, f.severity) == ("transfers.parquet", ("'ext-9'",), "warning")


# ---------------------------------------------------------------- labels


def test_label_missing_column(tmp_path):
    labels = tiny_churn().drop_columns(["eval_ts"])
    f = only(validate_dataset(write_tiny(tmp_path, labels={"churn_6m": labels})), "missing-column")
    assert (f.file, f.column) == ("labels/churn_6m.parquet", "eval_ts")


def test_label_values_outside_0_1(tmp_path):
    labels = with_column(tiny_churn(), "label", pa.array([0, 2, -1], pa.int8()))
    uplift = pa.table({"user_id": ["u1"], "campaign_id": ["c7"], "ts": pa.array([T0], pa.timestamp("us")),
                       "treated": pa.array([3], pa.int8()), "y0": pa.array([0], pa.int8()),
                       "y1": pa.array([1], pa.int8())})
    report = validate_dataset(write_tiny(tmp_path, labels={"churn_6m": labels, "comm_uplift": uplift}))
    bad = {(f.file, f.column): f for f in report.findings if f.check == "not-binary"}
    assert set(bad) == {("labels/churn_6m.parquet", "label"), ("labels/comm_uplift.parquet", "treated")}
    assert bad[("labels/churn_6m.parquet", "label")].count == 2
    assert "label=2" in bad[("labels/churn_6m.parquet", "label")].examples[0]


def test_unknown_task_needs_only_user_id(tmp_path):
    extra = pa.table({"user_id": ["u1", "u2"], "score": [0.3, 0.9]})
    report = validate_dataset(write_tiny(tmp_path, labels={"churn_6m": tiny_churn(), "my_task": extra}))
    assert checks(report) == {("labels/my_task.parquet", "unknown-task")}
    assert report.exit_code == 0
    no_user = pa.table({"customer": ["u1"]})
    report = validate_dataset(write_tiny(tmp_path / "b", labels={"my_task": no_user}))
    assert only(report, "missing-column").column == "user_id"


def test_eval_ts_outside_data_time_range(tmp_path):
    labels = with_column(tiny_churn(), "eval_ts", pa.array(
        [T0 - timedelta(days=365), T0 + timedelta(days=1), T0 + timedelta(days=365)], pa.timestamp("us")))
    report = validate_dataset(write_tiny(tmp_path, labels={"churn_6m": labels}))
    found = {f.severity: f for f in report.findings if f.check == "eval-ts-out-of-range"}
    assert set(found) == {"error", "warning"}
    assert "u1" in found["error"].examples[0] and "u3" in found["warning"].examples[0]
    assert "2024-01-01 09:00:00" in found["error"].message  # names the events' span


# ---------------------------------------------------------------- reporting


def test_every_finding_is_reported_not_just_the_first(tmp_path):
    ev = _reorder(tiny_events(), [0, 1, 2, 4, 5, 6, 7, 3, 8, 9, 10, 11])
    ev = with_column(ev, "source", ["bogus"] + ev["source"].to_pylist()[1:])
    ev = with_column(ev, "ts", pc.cast(ev["ts"], pa.timestamp("ns")))
    prof = pa.concat_tables([tiny_profiles(("u1", "u2")), tiny_profiles(("u1",))])
    labels = with_column(tiny_churn(), "label", pa.array([0, 1, 5], pa.int8()))
    report = validate_dataset(write_tiny(tmp_path, events=ev, profiles=prof, labels={"churn_6m": labels}))
    assert {c for _, c in checks(report, "error")} >= {
        "wrong-dtype", "unknown-source", "not-contiguous", "duplicate-profile", "unknown-user",
        "not-binary"}


def test_finding_line_and_report_dict(tmp_path):
    f = Finding("error", "events.parquet", "ts", "wrong-dtype", "column 'ts' is timestamp[ns]",
                12, ("row 0", "row 1"), "cast it")
    assert f.line() == ("ERROR events.parquet[ts]: column 'ts' is timestamp[ns] "
                        "(12 rows; e.g. row 0, row 1) — fix: cast it")
    assert f.to_dict()["examples"] == ["row 0", "row 1"]
    assert f.line("data", severity=False).startswith("data/events.parquet[ts]: column 'ts' is timestamp[ns] ")
    report = validate_dataset(write_tiny(tmp_path, profiles=tiny_profiles(USERS + ("u4",))))
    d = json.loads(json.dumps(report.to_dict()))
    assert d["exit_code"] == 0 and d["n_warnings"] == 1 and d["findings"][0]["check"] == "no-events"
    assert report.findings[0].line().startswith("WARNING profiles.parquet[user_id]: ")


def test_streams_record_batches_and_never_reads_whole_files(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("validate must stream record batches, not read whole files")

    for method in ("read", "read_row_group", "read_row_groups"):
        monkeypatch.setattr(pq.ParquetFile, method, refuse)
    monkeypatch.setattr(pq, "read_table", refuse)
    bad = _reorder(tiny_events(), [0, 2, 1, 3, 4, 5, 6, 7, 8, 9, 10, 11])
    report = validate_dataset(write_tiny(tmp_path, events=bad))
    assert only(report, "ts-out-of-order").count == 1


def test_synthetic_bank_validates_clean(tmp_path):
    from pragmatiq import api

    api.synthesize({"n_users": 40, "seed": 1}, out=tmp_path / "bank", n_workers=1, progress=False)
    report = validate_dataset(tmp_path / "bank")
    assert report.findings == [], [f.line() for f in report.findings]


def test_validate_never_imports_torch():
    code = ("import sys; from pragmatiq.data.validate import validate_dataset; "
            "assert 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)

