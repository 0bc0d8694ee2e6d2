"""Label tables: what a probe accepts, and one clear error naming the file and column otherwise."""

from datetime import datetime

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pragmatiq.eval import read_label_table


def _write(tmp_path, **columns):
    path = tmp_path / "default_12m.parquet"
    pq.write_table(pa.table(columns), path)
    return path


def test_reads_users_labels_and_cuts(tmp_path):
    ts = pa.array([datetime(2024, 1, 1), datetime(2024, 2, 1)], pa.timestamp("ms"))
    table = read_label_table(_write(tmp_path, user_id=["a", "b"], label=[0, 1], eval_ts=ts))
    assert table.task == "default_12m" and table.n_users == 2 and table.label.tolist() == [0, 1]
    assert table.cuts() == {"a": 1704067200000000, "b": 1706745600000000}


@pytest.mark.parametrize("columns, message", [
    ({"user_id": ["a"]}, "missing column 'label'"),
    ({"label": [1]}, "missing column 'user_id'"),
    ({"user_id": ["a", "a"], "label": [0, 1]}, "user_id 'a' appears more than once"),
    ({"user_id": ["a"], "label": ["yes"]}, "column label is string; it must hold integers or booleans"),
    ({"user_id": ["a"], "label": [2]}, "label must be 0/1, row 0 \\(user a\\) has 2"),
    ({"user_id": ["a"], "label": [1], "eval_ts": ["2024-01-01"]}, "column eval_ts is string; it must be a timestamp"),
])
def test_bad_tables_name_the_file_and_the_column(tmp_path, columns, message):
    path = _write(tmp_path, **columns)
    with pytest.raises(ValueError, match=message) as err:
        read_label_table(path)
    assert str(path) in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="expected DATA/labels/<task>.parquet"):
        read_label_table(tmp_path / "churn_6m.parquet")
