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


# ---------------------------------------------------------------- bad input: device, run, label file

@pytest.mark.parametrize("spec", ["gpu", "junk", "", "CPU", "cuda:-1"])
def test_a_device_that_is_not_one_is_refused(spec):
    from pragmatiq._hardware import check_device

    with pytest.raises(ValueError, match=f"device {spec!r} is not a device: use cpu, cuda"):
        check_device(spec)


def test_cuda_devices_are_checked_against_the_machine(monkeypatch):
    import torch

    from pragmatiq._hardware import check_device

    assert check_device("cpu") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for spec in ("cuda", "cuda:0", "cuda:7"):
        with pytest.raises(ValueError, match=f"device '{spec}': (this torch build has no CUDA|torch .* sees no CUDA "
                                             "GPU).*; use cpu"):
            check_device(spec)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert check_device("cuda:1") == torch.device("cuda", 1) and check_device("cuda").type == "cuda"
    with pytest.raises(ValueError, match="device 'cuda:7': this machine has 2 CUDA GPU\\(s\\), cuda:0 to cuda:1"):
        check_device("cuda:7")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(ValueError, match="device 'mps': Apple's MPS is not available"):
        check_device("mps")
    with pytest.raises(ValueError, match="pragmatiq runs on cpu, cuda or cuda:N .*not meta"):
        check_device("meta")


def test_embed_and_embed_records_check_the_device_first(tiny_tok, tiny_run, tiny_records, tmp_path, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # as on any laptop
    for device in ("gpu", "cuda", "cuda:7"):
        result = CliRunner().invoke(cli, ["embed", str(tiny_tok), "--run", str(tiny_run), "--out",
                                          str(tmp_path / "e.parquet"), "--device", device])
        assert result.exit_code == 2 and result.output.startswith(f"error: device '{device}'"), result.output
        assert "Traceback" not in result.output
        with pytest.raises(ValueError, match=f"device '{device}'"):
            api.embed_records(tiny_run, tiny_records, device=device)
    assert not (tmp_path / "e.parquet").exists()


def _damaged_copy(run, tmp_path, damage: str):
    import json
    import shutil

    out = tmp_path / f"run-{damage}"
    shutil.copytree(run, out)
    if damage == "weights":
        data = (out / "model.safetensors").read_bytes()
        (out / "model.safetensors").write_bytes(data[:len(data) // 2])
    elif damage == "empty weights":
        (out / "model.safetensors").write_bytes(b"")
    elif damage == "model.json":
        (out / "model.json").write_text((out / "model.json").read_text()[:60])
    elif damage == "shapes":
        (out / "model.json").write_text(json.dumps(json.loads((out / "model.json").read_text()) | {"d_model": 32}))
    else:  # a vocab.json of another tokenization
        from pragmatiq.tokenizer.vocab import Vocab

        Vocab.build([("mcc", "categorical", ["5411", "5812"])], None, 0, {}).save(out / "vocab.json")
    return out


@pytest.mark.parametrize("damage, message", [
    ("weights", r"model\.safetensors is damaged \(truncated"),
    ("empty weights", r"model\.safetensors is damaged .*header too small; 0 bytes"),
    ("model.json", r"model\.json is damaged: not valid JSON"),
    ("shapes", r"model\.safetensors does not match .*model\.json"),
    ("vocab", r"vocab\.json does not belong to the model in .*: it has 8 token ids, the model"),
])
def test_a_damaged_run_is_refused_before_any_work(tiny_book, tiny_run, tiny_records, tmp_path, damage, message):
    run = _damaged_copy(tiny_run, tmp_path, damage)
    with pytest.raises(ValueError, match=message):
        api.embed(tiny_book, run, tmp_path / "e.parquet", progress=False)
    assert not list(tmp_path.glob(".e.parquet.tokens")) and not (tmp_path / "e.parquet").exists()
    with pytest.raises(ValueError, match=message):
        api.embed_records(run, tiny_records)
    result = CliRunner().invoke(cli, ["embed", str(tiny_book), "--run", str(run), "--out", str(tmp_path / "e.parquet")])
    assert result.exit_code == 2 and result.output.startswith("error: ") and "Traceback" not in result.output


def test_an_out_that_is_a_directory_or_unwritable_is_refused_before_any_work(tiny_book, tiny_run, tmp_path):
    with pytest.raises(ValueError, match="is a directory: pass the parquet file to write"):
        api.embed(tiny_book, tiny_run, tmp_path, progress=False)
    assert not list(tmp_path.iterdir())  # nothing tokenized or written
    (tmp_path / "file").touch()  # an --out nobody can write: under a file
    with pytest.raises(OSError, match=f"--out {tmp_path / 'file' / 'e.parquet'}: cannot write there"):
        api.embed(tiny_book, tiny_run, tmp_path / "file" / "e.parquet", progress=False)
    assert [p.name for p in tmp_path.iterdir()] == ["file"]


def _label(tiny_book, tmp_path, users=None, eval_ts=None) -> Path:
    table = pq.read_table(tiny_book / "labels" / "churn_6m.parquet")
    for name, values in (("user_id", users), ("eval_ts", eval_ts)):
        if values is not None:
            i = table.column_names.index(name)
            table = table.set_column(i, table.schema.field(i), pa.array(values, table.schema.field(i).type))
    path = tmp_path / "label.parquet"
    pq.write_table(table, path)
    return path


def test_labelled_users_missing_from_the_book_warn_and_none_is_an_error(tiny_book, tiny_run, tmp_path):
    ids = pq.read_table(tiny_book / "labels" / "churn_6m.parquet").column("user_id").to_pylist()
    label = _label(tiny_book, tmp_path, users=["ghost0", "ghost1"] + ids[2:])
    with pytest.warns(UserWarning, match=rf"2 of {len(ids)} labelled users of {label} are not in {tiny_book} "
                                         r"\(e.g. 'ghost0', 'ghost1'\): they get no embedding"):
        summary = api.embed(tiny_book, tiny_run, tmp_path / "e.parquet", label=label, progress=False)
    assert summary["users"] == len(ids) - 2
    label = _label(tiny_book, tmp_path, users=[f"x{i}" for i in range(len(ids))])
    with pytest.raises(ValueError, match=f"none of the {len(ids)} labelled users of {label} is in {tiny_book}"):
        api.embed(tiny_book, tiny_run, tmp_path / "f.parquet", label=label, progress=False)
    pq.write_table(pq.read_table(label).slice(0, 0), label)
    with pytest.raises(ValueError, match=f"{label}: no rows"):
        api.embed(tiny_book, tiny_run, tmp_path / "f.parquet", label=label, progress=False)
    assert not (tmp_path / "f.parquet").exists()


def test_a_null_eval_ts_is_one_line_naming_the_file_column_and_count(tiny_book, tiny_run, tmp_path):
    ts = pq.read_table(tiny_book / "labels" / "churn_6m.parquet").column("eval_ts").to_pylist()
    label = _label(tiny_book, tmp_path, eval_ts=[None] + ts[1:])
    result = CliRunner().invoke(cli, ["embed", str(tiny_book), "--run", str(tiny_run), "--label", str(label),
                                      "--out", str(tmp_path / "e.parquet")])
    assert result.exit_code == 2, result.output
    assert result.output.startswith(f"error: {label}: column eval_ts has 1 null(s) of {len(ts)} (users '")


def test_eval_ts_before_every_event_of_a_user_warns_with_the_count(tiny_book, tiny_run, tmp_path):
    from datetime import datetime

    ts = pq.read_table(tiny_book / "labels" / "churn_6m.parquet").column("eval_ts").to_pylist()
    label = _label(tiny_book, tmp_path, eval_ts=[datetime(1990, 1, 1)] * 3 + ts[3:])
    with pytest.warns(UserWarning, match=rf"{label}: eval_ts of 3 of {len(ts)} labelled users is at or before their "
                                         "first event"):
        api.embed(tiny_book, tiny_run, tmp_path / "e.parquet", label=label, progress=False)
