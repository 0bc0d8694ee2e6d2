"""The python models' execute() in process (a fake backend utils module): per-request errors,
packing of concurrent requests, and the numbers of the native forward."""

from __future__ import annotations

import json
import shutil
import sys

import numpy as np
import pytest

from pragmatiq import api
from pragmatiq.triton_models import embedder_model, encoder_model, tokenizer_model
from pragmatiq.triton_models.packed_io import TENSOR_NAMES
from tests.triton_models import fake_pb


@pytest.fixture(autouse=True)
def backend_utils(monkeypatch):
    monkeypatch.setitem(sys.modules, "triton_python_backend_utils", fake_pb.module())


@pytest.fixture(scope="module")
def model_dirs(tiny_run, tmp_path_factory):
    """Version directories as pragmatiq-export lays them out."""
    root = tmp_path_factory.mktemp("repo")
    (root / "tok/1").mkdir(parents=True)
    shutil.copy2(tiny_run / "vocab.json", root / "tok/1")
    (root / "enc/1").mkdir(parents=True)
    for name in ("model.safetensors", "model.json"):
        shutil.copy2(tiny_run / name, root / "enc/1")
    return root


def _request(records) -> fake_pb.Request:
    body = records if isinstance(records, str) else json.dumps(records)
    return fake_pb.Request(records_json=np.array([body.encode()], dtype=np.object_))


def _tokenizer(model_dirs, **params):
    m = tokenizer_model.TritonPythonModel()
    m.initialize(fake_pb.model_args(model_dirs / "tok", parameters=params))
    return m


def test_tokenizer_answers_good_requests_and_names_the_bad_ones(model_dirs, tiny_records):
    bad_ts = [dict(tiny_records[0], events=[dict(tiny_records[0]["events"][0], ts="yesterday")])]
    responses = _tokenizer(model_dirs, max_users="4").execute([
        _request(tiny_records[:2]), _request("{oops"), _request([{"events": []}]), _request(bad_ts),
        _request(tiny_records), _request(tiny_records[2:3])])
    assert [r.has_error() for r in responses] == [False, True, True, True, True, False]
    assert "not valid JSON" in responses[1].error.message()
    assert responses[1].error.code() == fake_pb.TritonError.INVALID_ARG
    assert "record 0.user_id" in responses[2].error.message()
    assert "record 0" in responses[3].error.message() and "ts" in responses[3].error.message()
    assert "5 users is over this model's limit of 4" in responses[4].error.message()
    assert list(responses[0].outputs) == list(TENSOR_NAMES) + ["user_ids"]
    assert responses[5].outputs["user_ids"].tolist() == [tiny_records[2]["user_id"].encode()]


def test_encoder_packs_requests_and_matches_in_process(model_dirs, tiny_run, tiny_records):
    toks = _tokenizer(model_dirs).execute([_request(tiny_records[:3]), _request(tiny_records[3:])])
    enc = encoder_model.TritonPythonModel()
    enc.initialize(fake_pb.model_args(model_dirs / "enc", parameters={"num_threads": "1"}))
    broken = {k: v for k, v in toks[0].outputs.items() if k != "user_ids"}
    broken["cu_events"] = broken["cu_events"][:-1]
    out = enc.execute([fake_pb.Request(**toks[0].outputs), fake_pb.Request(**broken),
                       fake_pb.Request(**toks[1].outputs)])
    assert [r.has_error() for r in out] == [False, True, False]
    assert "packed tensors: cu_events" in out[1].error.message()
    served = np.concatenate([out[0].outputs["embeddings"], out[2].outputs["embeddings"]])
    expected, _ = api.embed_records(tiny_run, tiny_records)
    assert served.shape == expected.shape == (5, 64)
    np.testing.assert_allclose(served, expected, atol=1e-5)


def test_tutorial_model_reads_the_run_from_its_version_directory(model_dirs, tiny_run, tiny_records, tmp_path,
                                                                 monkeypatch):
    monkeypatch.delenv("PRAGMATIQ_RUN", raising=False)
    model_dir = tmp_path / "pragmatiq_embedder"
    shutil.copytree(tiny_run, model_dir / "1/run", ignore=shutil.ignore_patterns("checkpoints"))
    m = embedder_model.TritonPythonModel()
    m.initialize(fake_pb.model_args(model_dir))
    good, bad = m.execute([_request(tiny_records), _request("[1]")])
    assert good.outputs["user_ids"].tolist() == [r["user_id"].encode() for r in tiny_records]
    np.testing.assert_allclose(good.outputs["embeddings"], api.embed_records(tiny_run, tiny_records)[0], atol=1e-5)
    assert bad.has_error() and "record 0" in bad.error.message()


def test_tutorial_model_explains_a_missing_run(tmp_path, monkeypatch):
    monkeypatch.setenv("PRAGMATIQ_RUN", str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="PRAGMATIQ_RUN must point at a trained run"):
        embedder_model.TritonPythonModel().initialize(fake_pb.model_args(tmp_path))
