"""Launch a SageMaker training job that runs our entry point in a PyTorch DLC.

This is what `sagemaker.pytorch.PyTorch(...).fit({"data": uri})` sends, written out as one
`CreateTrainingJob` request (no `sagemaker` SDK: it is a ~1 GB install):

- the source directory is packed as `sourcedir.tar.gz` and uploaded to S3; the PyTorch
  container downloads it, pip-installs its `requirements.txt` and runs `sagemaker_program`
  (hyperparameters `sagemaker_program`, `sagemaker_submit_directory`, ...);
- hyperparameter values are JSON-encoded strings, as the SDK sends them (`'"train.py"'`, `'true'`);
- the `data` channel is mounted at `/opt/ml/input/data/data` = `SM_CHANNEL_DATA`; the entry
  point writes to `SM_MODEL_DIR` (`/opt/ml/model`), tarred to `<output>/<job>/output/model.tar.gz`;
- several instances or GPUs: `sagemaker_torch_distributed_enabled=true` makes the container
  launch the entry point with `torchrun` on every host (the SDK's `distribution=
  {"torch_distributed": {"enabled": True}}`);
- managed spot: `EnableManagedSpotTraining` + `StoppingCondition.MaxWaitTimeInSeconds` (>= the
  max runtime) + `CheckpointConfig` (S3 URI synced with `/opt/ml/checkpoints`).
"""

from __future__ import annotations

import io
import json
import tarfile
import time
from pathlib import Path
from typing import Any

from pragmatiq.serve.sagemaker._aws import client as _client
from pragmatiq.serve.sagemaker.s3 import parse_s3_uri, s3_uri

CHECKPOINT_LOCAL_PATH = "/opt/ml/checkpoints"
DATA_CHANNEL = "data"
TERMINAL_STATUSES = ("Completed", "Failed", "Stopped")


def pack_source_dir(source_dir: str | Path, entry_point: str) -> bytes:
    """`source_dir` as a gzipped tar with its files at the archive root (`sourcedir.tar.gz`)."""
    source_dir = Path(source_dir)
    if not (source_dir / entry_point).is_file():
        raise FileNotFoundError(
            f"{source_dir / entry_point}: the entry point must be a file at the root of the "
            "source directory"
        )
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for f in sorted(source_dir.rglob("*")):
            if f.is_file() and "__pycache__" not in f.parts:
                tar.add(f, arcname=f.relative_to(source_dir).as_posix())
    return buf.getvalue()


def upload_source_dir(
    source_dir: str | Path, entry_point: str, code_uri: str, *, s3: Any = None,
    region: str | None = None,
) -> str:
    """Pack and upload the source dir to `<code_uri>/sourcedir.tar.gz`; return its URI."""
    bucket, prefix = parse_s3_uri(code_uri)
    key = f"{prefix.strip('/')}/sourcedir.tar.gz" if prefix.strip("/") else "sourcedir.tar.gz"
    s3 = s3 or _client("s3", region)
    s3.put_object(Bucket=bucket, Key=key, Body=pack_source_dir(source_dir, entry_point))
    return s3_uri(bucket, key)


def framework_hyperparameters(
    entry_point: str,
    submit_uri: str,
    region: str,
    *,
    job_name: str,
    distributed: bool = False,
    instance_type: str | None = None,
    log_level: int = 20,
) -> dict[str, str]:
    """The `sagemaker_*` hyperparameters SageMaker's PyTorch containers read, JSON-encoded."""
    hp: dict[str, Any] = {
        "sagemaker_program": entry_point,
        "sagemaker_submit_directory": submit_uri,
        "sagemaker_container_log_level": log_level,
        "sagemaker_job_name": job_name,
        "sagemaker_region": region,
    }
    if distributed:
        hp["sagemaker_torch_distributed_enabled"] = True
        if instance_type:
            hp["sagemaker_instance_type"] = instance_type
    return {k: json.dumps(v) for k, v in hp.items()}


def training_job_request(
    *,
    job_name: str,
    image_uri: str,
    role_arn: str,
    data_uri: str,
    output_uri: str,
    submit_uri: str,
    entry_point: str = "train.py",
    region: str,
    instance_type: str = "ml.g5.2xlarge",
    instance_count: int = 1,
    volume_gb: int = 100,
    max_run_s: int = 24 * 3600,
    spot: bool = False,
    max_wait_s: int | None = None,
    checkpoint_uri: str | None = None,
    distributed: bool | None = None,
    hyperparameters: dict[str, Any] | None = None,
    environment: dict[str, str] | None = None,
    tags: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The exact `CreateTrainingJob` parameters (pure: no AWS call).

    `distributed=None` turns torchrun on when `instance_count > 1`; pass True for one
    multi-GPU instance as well (torchrun then starts one process per GPU).
    """
    if spot and max_wait_s is None:
        max_wait_s = 2 * max_run_s
    if spot and max_wait_s < max_run_s:
        raise ValueError(
            f"max_wait_s ({max_wait_s}) must be >= max_run_s ({max_run_s}) for managed spot"
        )
    if spot and not checkpoint_uri:
        raise ValueError("managed spot training needs checkpoint_uri (an s3:// prefix) to resume")
    if distributed is None:
        distributed = instance_count > 1
    hp = {k: json.dumps(v) for k, v in (hyperparameters or {}).items()}
    hp.update(framework_hyperparameters(
        entry_point, submit_uri, region, job_name=job_name, distributed=distributed,
        instance_type=instance_type,
    ))
    stopping: dict[str, int] = {"MaxRuntimeInSeconds": int(max_run_s)}
    request: dict[str, Any] = {
        "TrainingJobName": job_name,
        "HyperParameters": hp,
        "AlgorithmSpecification": {
            "TrainingImage": image_uri,
            "TrainingInputMode": "File",
            "EnableSageMakerMetricsTimeSeries": True,
        },
        "RoleArn": role_arn,
        "InputDataConfig": [{
            "ChannelName": DATA_CHANNEL,
            "DataSource": {"S3DataSource": {
                "S3DataType": "S3Prefix",
                "S3Uri": data_uri,
                "S3DataDistributionType": "FullyReplicated",
            }},
        }],
        "OutputDataConfig": {"S3OutputPath": output_uri},
        "ResourceConfig": {
            "InstanceType": instance_type,
            "InstanceCount": int(instance_count),
            "VolumeSizeInGB": int(volume_gb),
        },
        "StoppingCondition": stopping,
    }
    if environment:
        request["Environment"] = dict(environment)
    if spot:
        request["EnableManagedSpotTraining"] = True
        stopping["MaxWaitTimeInSeconds"] = int(max_wait_s)
    if checkpoint_uri:
        request["CheckpointConfig"] = {"S3Uri": checkpoint_uri, "LocalPath": CHECKPOINT_LOCAL_PATH}
    if tags:
        request["Tags"] = [{"Key": k, "Value": v} for k, v in tags.items()]
    return request


def create_training_job(
    *,
    job_name: str,
    image_uri: str,
    role_arn: str,
    data_uri: str,
    output_uri: str,
    source_dir: str | Path,
    entry_point: str = "train.py",
    code_uri: str | None = None,
    region: str | None = None,
    sm: Any = None,
    s3: Any = None,
    **options: Any,
) -> dict[str, Any]:
    """Upload `source_dir` as sourcedir.tar.gz and start the training job.

    `code_uri` defaults to `<output_uri>/<job_name>/source`. `options` go to
    `training_job_request` (instance_type, instance_count, spot, max_wait_s, checkpoint_uri,
    distributed, hyperparameters, ...). Returns `{"TrainingJobName", "TrainingJobArn",
    "request"}`.
    """
    sm = sm or _client("sagemaker", region)
    region = region or sm.meta.region_name
    code_uri = code_uri or f"{output_uri.rstrip('/')}/{job_name}/source"
    submit_uri = upload_source_dir(source_dir, entry_point, code_uri, s3=s3, region=region)
    request = training_job_request(
        job_name=job_name, image_uri=image_uri, role_arn=role_arn, data_uri=data_uri,
        output_uri=output_uri, submit_uri=submit_uri, entry_point=entry_point, region=region,
        **options,
    )
    response = sm.create_training_job(**request)
    return {"TrainingJobName": job_name, "TrainingJobArn": response["TrainingJobArn"],
            "request": request}


def describe_training_job(job_name: str, *, region: str | None = None, sm: Any = None) -> dict:
    """`DescribeTrainingJob` without the response metadata."""
    sm = sm or _client("sagemaker", region)
    out = dict(sm.describe_training_job(TrainingJobName=job_name))
    out.pop("ResponseMetadata", None)
    return out


def wait_training_job(
    job_name: str, *, region: str | None = None, sm: Any = None, poll_s: float = 30.0,
    timeout_s: float | None = None,
) -> dict[str, Any]:
    """Poll until the job is Completed / Failed / Stopped; return the final description.

    Raises RuntimeError (with `FailureReason`) when the job did not complete.
    """
    sm = sm or _client("sagemaker", region)
    start = time.monotonic()
    while True:
        desc = describe_training_job(job_name, sm=sm)
        status = desc["TrainingJobStatus"]
        if status in TERMINAL_STATUSES:
            break
        if timeout_s is not None and time.monotonic() - start > timeout_s:
            raise TimeoutError(f"training job {job_name} still {status} after {timeout_s:.0f} s")
        time.sleep(poll_s)
    if status != "Completed":
        reason = desc.get("FailureReason", "no reason given")
        raise RuntimeError(f"training job {job_name} ended {status}: {reason}")
    return desc


def model_artifact(desc: dict[str, Any]) -> str:
    """The trained run's `model.tar.gz` URI from a training job description."""
    return desc["ModelArtifacts"]["S3ModelArtifacts"]
