"""Row ranges: the units, chunks and spans workers read must cut the data as a sequential read does."""

import multiprocessing as mp

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from pragmatiq.tokenizer.ranges import batch_units, cut_points, iter_rows, ordered_map, spans, user_chunks


def _sequential_user_chunks(users: pa.Array, chunk_rows: int) -> list[int]:
    """Chunk bounds as the streaming reader cut them: batches of chunk_rows, cut back to the
    first row of the last user, the rest carried into the next batch."""
    bounds, carry = [0], 0
    for start in range(0, len(users), chunk_rows):
        end = min(start + chunk_rows, len(users))
        table = users[carry:end]
        first_tail = int(np.argmax(pc.equal(table, table[len(table) - 1]).to_numpy(zero_copy_only=False)))
        if first_tail:
            carry += first_tail
            bounds.append(carry)
    if len(users) > carry:
        bounds.append(len(users))
    return bounds


@pytest.mark.parametrize("runs", [[1] * 20, [5, 1, 9, 2, 2, 30, 1], [50], [3, 3, 3, 3], []])
@pytest.mark.parametrize("chunk_rows", [1, 4, 7, 64])
def test_user_chunks_match_the_sequential_cut(runs, chunk_rows):
    users = pa.array(np.repeat([f"u{i}" for i in range(len(runs))], runs).tolist(), pa.string())
    bounds = user_chunks(users, chunk_rows)
    assert bounds.tolist() == _sequential_user_chunks(users, chunk_rows)
    # no user spans two chunks
    for a in bounds[1:-1]:
        assert users[int(a)] != users[int(a) - 1]


def test_spans_group_whole_chunks_after_each_cut():
    bounds = np.array([0, 10, 25, 30, 47, 60])
    got = spans(bounds, np.array([0, 20, 26, 59]))
    assert [(a, b) for a, b, _ in got] == [(0, 25), (25, 30), (30, 60)]
    for a, b, inner in got:
        assert inner[0] == a and inner[-1] == b and set(inner) <= set(bounds)
    assert spans(np.array([0]), np.array([0])) == []
    assert [(a, b) for a, b, _ in spans(bounds, np.array([0]))] == [(0, 60)]


@pytest.fixture(scope="module", params=[7, 50, 1000])
def parquet_file(tmp_path_factory, request):
    path = tmp_path_factory.mktemp("rows") / f"rg{request.param}.parquet"
    pq.write_table(pa.table({"x": np.arange(333)}), path, row_group_size=request.param)
    return pq.ParquetFile(path)


@pytest.mark.parametrize("batch_size", [1, 16, 40, 333])
def test_iter_rows_cuts_batches_from_start(parquet_file, batch_size):
    for start, stop in [(0, 333), (17, 200), (100, 101), (40, 40), (0, 1)]:
        got = [b.column(0).to_pylist() for b in iter_rows(parquet_file, start, stop, ["x"], batch_size)]
        want = [list(range(a, min(a + batch_size, stop))) for a in range(start, stop, batch_size)]
        assert got == want


@pytest.mark.parametrize("batch_size", [16, 64])
def test_batch_units_see_the_sequential_batches(parquet_file, batch_size):
    units = batch_units(parquet_file, batch_size, max_rows=100)
    assert units[0][0] == 0 and units[-1][1] == 333
    assert all(b == c for (_, b), (c, _) in zip(units[:-1], units[1:]))  # contiguous
    got = [b.column(0).to_pylist() for a, z in units for b in iter_rows(parquet_file, a, z, ["x"], batch_size)]
    want = [b.column(0).to_pylist() for b in parquet_file.iter_batches(batch_size=batch_size)]
    assert got == want
    assert set(cut_points(parquet_file, 100)) >= {0}


def _square(x):
    return x * x


def test_ordered_map_keeps_task_order_with_and_without_a_pool():
    tasks = [(i,) for i in range(20)]
    assert list(ordered_map(_square, tasks)) == [i * i for i in range(20)]
    with mp.get_context("fork").Pool(2) as pool:
        assert list(ordered_map(_square, tasks, pool, window=3)) == [i * i for i in range(20)]
