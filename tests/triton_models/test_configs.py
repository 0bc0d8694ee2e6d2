"""config.pbtxt text parses as Triton's ModelConfig and wires the ensemble correctly."""

from __future__ import annotations

from pathlib import Path

import pytest

from pragmatiq.triton_models import configs
from pragmatiq.triton_models.packed_io import TENSOR_NAMES

pytest.importorskip("tritonclient.grpc")
from google.protobuf import text_format  # noqa: E402
from tritonclient.grpc import model_config_pb2  # noqa: E402

DEPLOY = Path(__file__).parents[2] / "deploy/triton/model_repository/pragmatiq_embedder"


def parse(text: str):
    return text_format.Parse(text, model_config_pb2.ModelConfig())


def test_tokenizer_outputs_every_packed_tensor_and_user_ids():
    cfg = parse(configs.tokenizer_config(params={"max_users": "10"}))
    assert cfg.backend == "python" and cfg.max_batch_size == 0
    assert [i.name for i in cfg.input] == ["records_json"]
    assert [o.name for o in cfg.output] == list(TENSOR_NAMES) + ["user_ids"]
    assert cfg.parameters["max_users"].string_value == "10"


def test_encoder_with_dynamic_batching_takes_ragged_inputs():
    cfg = parse(configs.encoder_config(dim=64, instances=2))
    assert cfg.max_batch_size > 0 and cfg.HasField("dynamic_batching")
    assert all(i.allow_ragged_batch for i in cfg.input)
    assert list(cfg.output[0].dims) == [64]
    assert cfg.instance_group[0].kind == model_config_pb2.ModelInstanceGroup.KIND_CPU
    assert cfg.instance_group[0].count == 2


def test_encoder_without_batching_on_gpu():
    cfg = parse(configs.encoder_config(dim=32, device="cuda", dynamic_batching=False))
    assert cfg.max_batch_size == 0 and not cfg.HasField("dynamic_batching")
    assert list(cfg.output[0].dims) == [-1, 32]
    assert cfg.instance_group[0].kind == model_config_pb2.ModelInstanceGroup.KIND_GPU


def test_ensemble_routes_every_tensor_from_tokenizer_to_encoder():
    cfg = parse(configs.ensemble_config("e", dim=16, encoder="enc_onnx"))
    assert cfg.platform == "ensemble" and cfg.name == "e"
    tok, enc = cfg.ensemble_scheduling.step
    assert tok.model_name == configs.TOKENIZER and enc.model_name == "enc_onnx"
    assert dict(tok.input_map) == {"records_json": "records_json"}
    assert set(tok.output_map) == set(TENSOR_NAMES) | {"user_ids"}
    assert set(enc.input_map) == set(TENSOR_NAMES)
    assert [o.name for o in cfg.output] == ["embeddings", "user_ids"]
    assert list(cfg.output[0].dims) == [-1, 16]


def test_tutorial_layout_is_the_generated_config():
    text = (DEPLOY / "config.pbtxt").read_text()
    assert text == configs.embedder_config()
    cfg = parse(text)
    assert cfg.name == "pragmatiq_embedder" and len(cfg.instance_group) == 0  # GPU if present, else CPU
    assert [list(o.dims) for o in cfg.output] == [[-1, -1], [-1]]
    assert "pragmatiq.triton_models.embedder_model import TritonPythonModel" in (DEPLOY / "1/model.py").read_text()
