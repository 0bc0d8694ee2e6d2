"""tritonserver flags (pure): loopback by default, the SageMaker frontend alone, multi-model."""

from __future__ import annotations

from pathlib import Path

from pragmatiq.serve.server import server_args


def test_loopback_http_and_grpc():
    args = server_args(Path("/r"), http_port=8000, grpc_port=8001)
    assert {"--model-repository=/r", "--http-address=127.0.0.1", "--grpc-address=127.0.0.1", "--http-port=8000",
            "--grpc-port=8001", "--disable-auto-complete-config", "--allow-metrics=false"} <= set(args)
    assert not any("sagemaker" in a or "model-control-mode" in a for a in args)


def test_a_protocol_without_port_is_off():
    assert "--allow-grpc=false" in server_args(Path("/r"), http_port=8000, grpc_port=None)


def test_sagemaker_frontend_alone():
    args = server_args(Path("/m"), http_port=None, grpc_port=None, sagemaker_port=8080)
    assert {"--allow-sagemaker=true", "--sagemaker-port=8080", "--allow-http=false", "--allow-grpc=false"} <= set(args)
    assert "--model-namespacing=true" not in args


def test_multi_model_uses_explicit_control_and_namespacing():
    args = server_args(Path("/empty"), http_port=None, grpc_port=None, sagemaker_port=8080, multi_model=True)
    assert {"--model-control-mode=explicit", "--model-namespacing=true"} <= set(args)
