"""Label tables checked against the book before a probe: labelled users missing from it warn
with their count and examples (none there, or no rows: an error), a null eval_ts is an error
naming the file, column and count, and eval_ts outside the events' range warns (after the last
event: leakage; before a user's first event: an empty history). Valid tables stay silent."""

from __future__ import annotations

import warnings
from datetime import datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from pragmatiq.eval import probe
from pragmatiq.eval import run as R
from pragmatiq.eval.labels import book_spans, read_cut_table, read_label_table

COUNTS = {"feature_sets": ("counts",), "progress": False, "cache": False}


def _churn(book):
    return pq.read_table(book / "labels" / "churn_6m.parquet")


def _write(tmp_path, table, name="churn_6m.parquet"):
    path = tmp_path / name
    pq.write_table(table, path)
    return path


def _set(table, name, values):
    i = table.column_names.index(name)
    return table.set_column(i, table.schema.field(i), pa.array(values, table.schema.field(i).type))


def test_a_valid_table_probes_silently(synth_book):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = probe(synth_book, None, synth_book / "labels" / "churn_6m.parquet", **COUNTS)
    assert res["n_users"] == res["n_labeled"] == _churn(synth_book).num_rows


def test_labelled_users_missing_from_the_book_warn_with_count_and_examples(synth_book, tmp_path):
    table = _churn(synth_book)
    ids = table.column("user_id").to_pylist()
    ghosts = [f"ghost{i}" for i in range(10)]
    path = _write(tmp_path, _set(table, "user_id", ghosts + ids[10:]))
    with pytest.warns(UserWarning, match=rf"10 of {len(ids)} labelled users of {path} are not in {synth_book} "
                                         r"\(e.g. 'ghost0', 'ghost1', 'ghost2', ...\): they are left out"):
        res = probe(synth_book, None, path, **COUNTS)
    assert res["n_users"] == len(ids) - 10 and res["n_no_history"] == 10


def test_no_labelled_user_in_the_book_or_no_rows_is_an_error(synth_book, tmp_path):
    table = _churn(synth_book)
    path = _write(tmp_path, _set(table, "user_id", [f"x{i}" for i in range(table.num_rows)]))
    with pytest.raises(ValueError, match=rf"none of the {table.num_rows} labelled users of {path} is in "
                                         rf"{synth_book} \(its users look like 'u"):
        probe(synth_book, None, path, **COUNTS)
    empty = _write(tmp_path, table.slice(0, 0), "empty.parquet")
    with pytest.raises(ValueError, match=f"{empty}: no rows"):
        probe(synth_book, None, empty, **COUNTS)


def test_a_null_eval_ts_names_the_file_column_and_count(synth_book, tmp_path):
    table = _churn(synth_book)
    ts = table.column("eval_ts").to_pylist()
    ts[3] = ts[7] = None
    path = _write(tmp_path, _set(table, "eval_ts", ts))
    who = table.column("user_id")
    message = (rf"{path}: column eval_ts has 2 null\(s\) of {table.num_rows} \(users '{who[3]}', '{who[7]}'\)")
    with pytest.raises(ValueError, match=message):
        read_label_table(path)
    with pytest.raises(ValueError, match=message):
        read_cut_table(path)  # embed --label's reader


def test_eval_ts_after_the_last_event_warns_of_leakage_with_the_share(synth_book, tmp_path):
    table = _churn(synth_book)
    n = table.num_rows
    late = [datetime(2031, 1, 1)] * (n // 4) + table.column("eval_ts").to_pylist()[n // 4:]
    path = _write(tmp_path, _set(table, "eval_ts", late))
    share = f"{(n // 4) / n:.0%}"
    with pytest.warns(UserWarning, match=rf"eval_ts of {n // 4} of {n} labelled users \({share}\) is after the last "
                                         r"event of .*events.parquet .*\(leakage\)"):
        probe(synth_book, None, path, **COUNTS)


def test_eval_ts_before_a_users_first_event_warns_with_the_count(synth_book, tmp_path):
    table = _churn(synth_book)
    early = [datetime(1990, 1, 1)] * 5 + table.column("eval_ts").to_pylist()[5:]
    path = _write(tmp_path, _set(table, "eval_ts", early))
    with pytest.warns(UserWarning, match=rf"eval_ts of 5 of {table.num_rows} labelled users is at or before their "
                                         r"first event \(e.g. user .*eval_ts 1990-01-01"):
        probe(synth_book, None, path, **COUNTS)


def test_book_spans_cover_users_with_a_profile_only(hand_book):
    spans = book_spans(hand_book)
    ids = spans.user_ids.to_pylist()
    assert sorted(ids) == ["a", "b", "c", "z"]
    c = ids.index("c")  # profile, no events
    assert spans.first_us[c] == np.iinfo(np.int64).max
    ev = pq.read_table(hand_book / "events.parquet")
    assert spans.last_event_us == pc.cast(pc.max(ev["ts"]), pa.int64()).as_py()


def test_probe_checks_the_device_first(synth_book):
    R._CACHE.clear()
    with pytest.raises(ValueError, match="device 'gpu' is not a device: use cpu, cuda"):
        probe(synth_book, "no-run", synth_book / "labels" / "churn_6m.parquet", device="gpu", progress=False)
