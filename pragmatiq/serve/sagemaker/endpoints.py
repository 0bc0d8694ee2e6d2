"""Real-time and multi-model SageMaker endpoints serving a pragmatiq Triton archive.

One `CreateModel` (image + archive + environment), one `CreateEndpointConfig` (a single
production variant), one `CreateEndpoint`; then wait for `InService`. `delete_deployment`
removes all three (and optionally the S3 artifacts) and is safe to run twice.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pragmatiq.serve.sagemaker._aws import client as _client
from pragmatiq.serve.sagemaker._aws import client_error, is_not_found
from pragmatiq.serve.sagemaker.s3 import delete_prefix, parse_s3_uri, upload_file

MiB = 1024 * 1024
DEFAULT_MODEL_NAME = "pragmatiq_embedder"
# Where the tutorial's single-model archive puts the trained run once SageMaker unpacks it
# into /opt/ml/model.
DEFAULT_RUN_PATH = f"/opt/ml/model/{DEFAULT_MODEL_NAME}/1/run"
TRITON_SHM_FLOOR = 16 * MiB  # the SageMaker Triton image's default python-backend shm size


def shm_bytes_for(
    max_users: int,
    max_events: int,
    *,
    fields_per_event: int = 8,
    bytes_per_field: int = 32,
    tokens_per_field: int = 2,
    dim: int = 512,
    profile_bytes: int = 1024,
    safety: float = 2.0,
) -> int:
    """Python-backend shared memory (`SAGEMAKER_TRITON_SHM_DEFAULT_BYTE_SIZE`) for the
    largest request: `max_users` users of up to `max_events` events each.

    Every tensor that crosses a python-backend step of the ensemble lives in that region:
    the `records_json` request (~`bytes_per_field` of JSON per field plus per-event and
    per-profile overhead), the packed token tensors between tokenizer and encoder
    (~6 int64 values per token, `tokens_per_field` tokens per field plus one `[EVT]` per
    event), and the `[U, dim]` fp32 embeddings plus user ids on the way out. The sum is
    multiplied by `safety` (requests in flight overlap), rounded up to a MiB and never
    below Triton's 16 MiB default.
    """
    if max_users < 1 or max_events < 0:
        raise ValueError(f"need max_users >= 1 and max_events >= 0, got {max_users}, {max_events}")
    request = max_users * (max_events * (fields_per_event * bytes_per_field + 64) + profile_bytes)
    tokens = max_users * (max_events * (fields_per_event * tokens_per_field + 1) + 64)
    packed = tokens * 6 * 8
    outputs = max_users * (dim * 4 + 64)
    total = int(math.ceil((request + packed + outputs) * safety / MiB)) * MiB
    return max(TRITON_SHM_FLOOR, total)


def model_environment(
    *,
    multi_model: bool = False,
    model_name: str = DEFAULT_MODEL_NAME,
    run_path: str | None = DEFAULT_RUN_PATH,
    shm_bytes: int | None = None,
    max_users: int = 256,
    max_events: int = 2048,
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    """The container `Environment` of the SageMaker Triton image for our archive.

    Single-model: `SAGEMAKER_TRITON_DEFAULT_MODEL_NAME` picks the ensemble for
    `/invocations` (needed: the archive root holds several model directories). Multi-model:
    SageMaker itself sets `SAGEMAKER_MULTI_MODEL=true`; each archive carries its own run, so
    neither the default model name nor `PRAGMATIQ_RUN` applies. The shm size is
    `shm_bytes`, or `shm_bytes_for(max_users, max_events)`.
    """
    env: dict[str, str] = {}
    if not multi_model:
        env["SAGEMAKER_TRITON_DEFAULT_MODEL_NAME"] = model_name
        if run_path:
            env["PRAGMATIQ_RUN"] = run_path
    env["SAGEMAKER_TRITON_SHM_DEFAULT_BYTE_SIZE"] = str(
        shm_bytes if shm_bytes is not None else shm_bytes_for(max_users, max_events)
    )
    env.update(extra or {})
    return env


@dataclass
class Deployment:
    """What one deploy created: enough to invoke it and to delete it."""

    endpoint_name: str
    endpoint_config_name: str
    model_name: str
    model_data_url: str
    multi_model: bool = False
    status: str = "Creating"
    requests: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def create_model(
    model_name: str,
    *,
    image_uri: str,
    model_data_url: str,
    role_arn: str,
    environment: dict[str, str] | None = None,
    multi_model: bool = False,
    region: str | None = None,
    sm: Any = None,
) -> dict[str, Any]:
    """`CreateModel`; for a multi-model endpoint `model_data_url` is the S3 prefix holding
    the `<NAME>.tar.gz` archives and `Mode="MultiModel"`. Returns the request sent."""
    sm = sm or _client("sagemaker", region)
    container: dict[str, Any] = {"Image": image_uri, "ModelDataUrl": model_data_url}
    if multi_model:
        container["Mode"] = "MultiModel"
        if not model_data_url.endswith("/"):
            container["ModelDataUrl"] = model_data_url + "/"
    else:
        container["Mode"] = "SingleModel"
    container["Environment"] = dict(
        environment if environment is not None else model_environment(multi_model=multi_model)
    )
    request = {"ModelName": model_name, "PrimaryContainer": container, "ExecutionRoleArn": role_arn}
    sm.create_model(**request)
    return request


def create_endpoint_config(
    config_name: str,
    model_name: str,
    *,
    instance_type: str = "ml.g5.xlarge",
    instance_count: int = 1,
    variant_name: str = "main",
    region: str | None = None,
    sm: Any = None,
) -> dict[str, Any]:
    """`CreateEndpointConfig` with one production variant. Returns the request sent."""
    sm = sm or _client("sagemaker", region)
    request = {
        "EndpointConfigName": config_name,
        "ProductionVariants": [{
            "VariantName": variant_name,
            "ModelName": model_name,
            "InstanceType": instance_type,
            "InitialInstanceCount": int(instance_count),
        }],
    }
    sm.create_endpoint_config(**request)
    return request


def create_endpoint(
    endpoint_name: str, config_name: str, *, region: str | None = None, sm: Any = None
) -> dict[str, Any]:
    """`CreateEndpoint`. Returns the request sent."""
    sm = sm or _client("sagemaker", region)
    request = {"EndpointName": endpoint_name, "EndpointConfigName": config_name}
    sm.create_endpoint(**request)
    return request


def wait_endpoint(
    endpoint_name: str, *, region: str | None = None, sm: Any = None, delay_s: float = 30,
    max_attempts: int = 120,
) -> str:
    """Wait for `InService` (botocore's `endpoint_in_service` waiter); return the status."""
    sm = sm or _client("sagemaker", region)
    sm.get_waiter("endpoint_in_service").wait(
        EndpointName=endpoint_name,
        WaiterConfig={"Delay": delay_s, "MaxAttempts": max_attempts},
    )
    return sm.describe_endpoint(EndpointName=endpoint_name)["EndpointStatus"]


def deploy(
    endpoint_name: str,
    *,
    image_uri: str,
    model_data_url: str,
    role_arn: str,
    instance_type: str = "ml.g5.xlarge",
    instance_count: int = 1,
    environment: dict[str, str] | None = None,
    multi_model: bool = False,
    model_name: str | None = None,
    config_name: str | None = None,
    wait: bool = True,
    delay_s: float = 30,
    region: str | None = None,
    sm: Any = None,
) -> Deployment:
    """Model + endpoint config + endpoint from one archive (or, `multi_model`, one prefix).

    The model and the endpoint config are named after the endpoint unless given.
    """
    sm = sm or _client("sagemaker", region)
    model_name = model_name or endpoint_name
    config_name = config_name or endpoint_name
    dep = Deployment(endpoint_name, config_name, model_name, model_data_url, multi_model)
    dep.requests["CreateModel"] = create_model(
        model_name, image_uri=image_uri, model_data_url=model_data_url, role_arn=role_arn,
        environment=environment, multi_model=multi_model, sm=sm,
    )
    dep.model_data_url = dep.requests["CreateModel"]["PrimaryContainer"]["ModelDataUrl"]
    dep.requests["CreateEndpointConfig"] = create_endpoint_config(
        config_name, model_name, instance_type=instance_type, instance_count=instance_count,
        sm=sm,
    )
    dep.requests["CreateEndpoint"] = create_endpoint(endpoint_name, config_name, sm=sm)
    if wait:
        dep.status = wait_endpoint(endpoint_name, sm=sm, delay_s=delay_s)
    return dep


def deploy_multi_model(endpoint_name: str, *, model_prefix: str, **kwargs: Any) -> Deployment:
    """A multi-model endpoint over the archives under `model_prefix` (`s3://.../models/`)."""
    return deploy(endpoint_name, model_data_url=model_prefix, multi_model=True, **kwargs)


def add_model(
    model_prefix: str,
    archive: str | Path,
    name: str | None = None,
    *,
    region: str | None = None,
    s3: Any = None,
) -> str:
    """Upload an archive as `<model_prefix>/<name>.tar.gz`; return the `TargetModel` string.

    A multi-model endpoint loads it on the first request naming that target; nothing on the
    endpoint changes.
    """
    archive = Path(archive)
    if name is None:
        name = archive.name
    if not name.endswith(".tar.gz"):
        name += ".tar.gz"
    bucket, prefix = parse_s3_uri(model_prefix)
    prefix = prefix.strip("/")
    upload_file(archive, bucket, f"{prefix}/{name}" if prefix else name, region=region, s3=s3)
    return name


def _try_delete(fn, **kwargs) -> bool:
    try:
        fn(**kwargs)
        return True
    except client_error() as exc:
        if is_not_found(exc):
            return False
        raise


def delete_deployment(
    endpoint_name: str,
    *,
    config_name: str | None = None,
    model_names: list[str] | None = None,
    s3_uris: list[str] | tuple[str, ...] = (),
    region: str | None = None,
    sm: Any = None,
    s3: Any = None,
) -> dict[str, list[str]]:
    """Delete the endpoint, its endpoint config and its models, then the given S3 URIs.

    Names not passed are discovered from the endpoint (its config) and the config (its
    variants' models) while they still exist. Anything already gone is skipped, so this is
    idempotent. Returns what was deleted, by kind.
    """
    sm = sm or _client("sagemaker", region)
    ClientError = client_error()
    if config_name is None:
        try:
            config_name = sm.describe_endpoint(EndpointName=endpoint_name)["EndpointConfigName"]
        except ClientError as exc:
            if not is_not_found(exc):
                raise
            config_name = endpoint_name
    if model_names is None:
        try:
            variants = sm.describe_endpoint_config(EndpointConfigName=config_name)
            model_names = [v["ModelName"] for v in variants["ProductionVariants"]]
        except ClientError as exc:
            if not is_not_found(exc):
                raise
            model_names = [endpoint_name]
    deleted: dict[str, list[str]] = {"endpoint": [], "endpoint_config": [], "model": [], "s3": []}
    if _try_delete(sm.delete_endpoint, EndpointName=endpoint_name):
        deleted["endpoint"].append(endpoint_name)
    if _try_delete(sm.delete_endpoint_config, EndpointConfigName=config_name):
        deleted["endpoint_config"].append(config_name)
    for name in model_names:
        if _try_delete(sm.delete_model, ModelName=name):
            deleted["model"].append(name)
    for uri in s3_uris:
        if delete_prefix(uri, region=region, s3=s3):
            deleted["s3"].append(uri)
    return deleted
