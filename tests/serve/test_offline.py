"""`pragmatiq embed`: token-budget batches into a parquet, the served path's numbers, label cuts,
and torchrun sharding with parts merged by rank 0."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from pragmatiq import api
from pragmatiq.cli import cli
from pragmatiq.data.records import records_from_data
from pragmatiq.serve.offline import embeddings_table, merge_parts, read_embeddings


def test_embeddings_equal_the_served_path(tiny_book, tiny_run, tmp_path):
    summary = api.embed(tiny_book, tiny_run, tmp_path / "e.parquet", token_budget=2048, progress=False)
    ids, vectors = read_embeddings(tmp_path / "e.parquet")
    assert summary["users"] == len(ids) == 24 and summary["dim"] == vectors.shape[1] == 64
    assert ids == sorted(ids) and vectors.dtype == np.float32
    served, served_ids = api.embed_records(tiny_run, records_from_data(tiny_book, users=ids))
    assert served_ids == ids
    np.testing.assert_allclose(vectors, served, atol=1e-5)
    assert not list(tmp_path.glob(".*tokens"))  # temporary shards removed


def test_token_directory_gives_the_same_embeddings(tiny_book, tiny_tok, tiny_run, tmp_path):
    api.embed(tiny_tok, tiny_run, tmp_path / "a.parquet", progress=False)
    api.embed(tiny_book, tiny_run, tmp_path / "b.parquet", progress=False)
    (ia, a), (ib, b) = read_embeddings(tmp_path / "a.parquet"), read_embeddings(tmp_path / "b.parquet")
    assert ia == ib
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_label_file_cuts_histories(tiny_book, tiny_run, tmp_path):
    label = tiny_book / "labels" / "churn_6m.parquet"
    api.embed(tiny_book, tiny_run, tmp_path / "cut.parquet", label=label, progress=False)
    api.embed(tiny_book, tiny_run, tmp_path / "full.parquet", progress=False)
    ids, cut = read_embeddings(tmp_path / "cut.parquet")
    full_ids, full = read_embeddings(tmp_path / "full.parquet")
    assert set(ids) == set(pq.read_table(label).column("user_id").to_pylist()) & set(api.embed_records(
        tiny_run, records_from_data(tiny_book))[1])
    rows = [full_ids.index(u) for u in ids]
    assert np.abs(cut - full[rows]).max() > 1e-3  # the histories really were cut


def test_merge_parts_keeps_first_and_sorts(tmp_path):
    a = embeddings_table(["u3", "u1"], np.array([[3, 3], [1, 1]], np.float32))
    b = embeddings_table(["u1", "u2"], np.array([[9, 9], [2, 2]], np.float32))
    pq.write_table(a, tmp_path / "a.parquet")
    pq.write_table(b, tmp_path / "b.parquet")
    assert merge_parts([tmp_path / "a.parquet", tmp_path / "b.parquet"], tmp_path / "m.parquet") == 3
    ids, vectors = read_embeddings(tmp_path / "m.parquet")
    assert ids == ["u1", "u2", "u3"] and vectors[:, 0].tolist() == [1, 2, 3]
    assert pq.read_schema(tmp_path / "m.parquet").field("embedding").type == pa.list_(pa.float32(), 2)


def test_cli_errors_are_one_line(tiny_run, tmp_path):
    result = CliRunner().invoke(cli, ["embed", str(tmp_path / "nope"), "--run", str(tiny_run),
                                      "--out", str(tmp_path / "e.parquet")])
    assert result.exit_code == 2 and "no such data or token directory" in result.output
    assert "Traceback" not in result.output


@pytest.mark.slow
def test_torchrun_two_ranks_equal_one_process(tiny_tok, tiny_run, tmp_path):
    torchrun = Path(sys.executable).parent / "torchrun"
    out = tmp_path / "ddp.parquet"
    subprocess.run([str(torchrun), "--nproc_per_node", "2", "--master_port", "29531", "-m", "pragmatiq", "embed",
                    str(tiny_tok), "--run-dir", str(tiny_run), "--out", str(out), "--token-budget", "1024"],
                   check=True, capture_output=True, timeout=400)
    api.embed(tiny_tok, tiny_run, tmp_path / "one.parquet", token_budget=1024, progress=False)
    (ids, ddp), (one_ids, one) = read_embeddings(out), read_embeddings(tmp_path / "one.parquet")
    assert ids == one_ids and len(ids) == 24
    np.testing.assert_allclose(ddp, one, atol=1e-5)
    assert not list(tmp_path.glob("*.part-*"))


def test_a_bare_cuda_device_is_this_processs_gpu(monkeypatch):
    """`--device cuda` names no GPU: cuda:0 alone, cuda:LOCAL_RANK under torchrun (set_device
    needs an index, and every rank on GPU 0 would share one card)."""
    from pragmatiq.serve.offline import process_device

    monkeypatch.setenv("LOCAL_RANK", "3")
    assert process_device("cuda", world=1) == "cuda:0"
    assert process_device("cuda", world=4) == "cuda:3"
    assert process_device("cuda:1", world=4) == "cuda:1" and process_device("cpu", world=4) == "cpu"
