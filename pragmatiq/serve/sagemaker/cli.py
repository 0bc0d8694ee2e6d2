"""`pragmatiq sagemaker ...`: thin click commands over `pragmatiq.serve.sagemaker`.

The group object is `sagemaker_cli`; `pragmatiq/cli.py` registers it with
`cli.add_command(sagemaker_cli, "sagemaker")`. Results go to stdout as JSON; errors caused
by the user's input print one line (`error: ...`) and exit 2.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from pragmatiq.cli_output import emit as _emit
from pragmatiq.cli_output import user_errors
from pragmatiq.serve.sagemaker import endpoints, s3, training
# the package re-exports the function `invoke`, which shadows the module of that name
from pragmatiq.serve.sagemaker.invoke import invoke as invoke_endpoint

_region = click.option("--region", default=None, help="AWS region (default: AWS_DEFAULT_REGION).")


# AWS errors (botocore's, imported lazily) and RuntimeError from waits are user-facing here too
_user_errors = user_errors(extra=(RuntimeError,), modules=("botocore", "boto3"))


def _pairs(values: tuple[str, ...], what: str) -> dict[str, str]:
    out = {}
    for v in values:
        key, sep, value = v.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{v!r}: expected KEY=VALUE", param_hint=what)
        out[key] = value
    return out


@click.group("sagemaker")
def sagemaker_cli() -> None:
    """Amazon SageMaker: upload to S3, train, deploy Triton endpoints, invoke, delete."""


@sagemaker_cli.command("upload")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--bucket", required=True)
@click.option("--prefix", default="data", show_default=True, help="S3 key prefix.")
@_region
@_user_errors
def upload_cmd(path: Path, bucket: str, prefix: str, region: str | None) -> None:
    """Upload a data directory or an archive to s3://BUCKET/PREFIX/ (multipart when large)."""
    _emit({"s3_uri": s3.upload_directory(path, bucket, prefix, region=region)})


@sagemaker_cli.command("train")
@click.option("--job-name", required=True)
@click.option("--image-uri", required=True,
              help="PyTorch training DLC image URI (region-specific).")
@click.option("--role", "role_arn", required=True, help="SageMaker execution role ARN.")
@click.option("--data", "data_uri", required=True, help="s3:// prefix of the data channel.")
@click.option("--output", "output_uri", required=True, help="s3:// prefix for model.tar.gz.")
@click.option("--source-dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              required=True)
@click.option("--entry-point", default="train.py", show_default=True)
@click.option("--instance-type", default="ml.g5.2xlarge", show_default=True)
@click.option("--instance-count", default=1, show_default=True, type=click.IntRange(min=1))
@click.option("--volume-gb", default=100, show_default=True, type=click.IntRange(min=1))
@click.option("--max-run", "max_run_s", default=24 * 3600, show_default=True, type=click.IntRange(min=1))
@click.option("--spot/--no-spot", default=False, show_default=True,
              help="Managed spot training (needs --checkpoint).")
@click.option("--max-wait", "max_wait_s", default=None, type=click.IntRange(min=1),
              help="Spot: max seconds waiting + running (default 2x --max-run).")
@click.option("--checkpoint", "checkpoint_uri", default=None,
              help="s3:// prefix synced with /opt/ml/checkpoints.")
@click.option("--distributed/--no-distributed", default=None,
              help="torchrun on every host/GPU (default: on when --instance-count > 1).")
@click.option("--hp", "hps", multiple=True, help="Extra hyperparameter KEY=VALUE (repeatable).")
@click.option("--wait/--no-wait", default=False, show_default=True)
@_region
@_user_errors
def train_cmd(job_name, image_uri, role_arn, data_uri, output_uri, source_dir, entry_point,
              instance_type, instance_count, volume_gb, max_run_s, spot, max_wait_s,
              checkpoint_uri, distributed, hps, wait, region) -> None:
    """Pack SOURCE_DIR to S3 and start a training job running ENTRY_POINT."""
    out = training.create_training_job(
        job_name=job_name, image_uri=image_uri, role_arn=role_arn, data_uri=data_uri,
        output_uri=output_uri, source_dir=source_dir, entry_point=entry_point, region=region,
        instance_type=instance_type, instance_count=instance_count, volume_gb=volume_gb,
        max_run_s=max_run_s, spot=spot, max_wait_s=max_wait_s, checkpoint_uri=checkpoint_uri,
        distributed=distributed, hyperparameters=_pairs(hps, "--hp"),
    )
    result = {"TrainingJobName": out["TrainingJobName"], "TrainingJobArn": out["TrainingJobArn"]}
    if wait:
        desc = training.wait_training_job(job_name, region=region)
        result.update(status=desc["TrainingJobStatus"], model_data=training.model_artifact(desc))
    _emit(result)


def _deploy_options(fn):
    for opt in reversed([
        click.option("--endpoint", "endpoint_name", required=True),
        click.option("--image-uri", required=True, help="The pragmatiq serving image in ECR."),
        click.option("--role", "role_arn", required=True, help="SageMaker execution role ARN."),
        click.option("--instance-type", default="ml.g5.xlarge", show_default=True),
        click.option("--instance-count", default=1, show_default=True, type=click.IntRange(min=1)),
        click.option("--max-users", default=256, show_default=True, type=click.IntRange(min=1),
                     help="Largest request (users) for shared-memory sizing."),
        click.option("--max-events", default=2048, show_default=True, type=click.IntRange(min=1),
                     help="Largest history (events per user) for shared-memory sizing."),
        click.option("--shm-bytes", default=None, type=click.IntRange(min=1),
                     help="SAGEMAKER_TRITON_SHM_DEFAULT_BYTE_SIZE (overrides the sizing)."),
        click.option("--env", "envs", multiple=True, help="Extra container env KEY=VALUE."),
        click.option("--wait/--no-wait", default=True, show_default=True),
        _region,
    ]):
        fn = opt(fn)
    return fn


@sagemaker_cli.command("deploy")
@_deploy_options
@click.option("--model-data", "model_data_url", required=True,
              help="s3:// URI of the single-model archive (model.tar.gz).")
@click.option("--run-path", default=endpoints.DEFAULT_RUN_PATH, show_default=True,
              help="PRAGMATIQ_RUN inside the container.")
@_user_errors
def deploy_cmd(endpoint_name, image_uri, role_arn, instance_type, instance_count, max_users,
               max_events, shm_bytes, envs, wait, region, model_data_url, run_path) -> None:
    """Create model + endpoint config + real-time endpoint from one archive."""
    env = endpoints.model_environment(run_path=run_path, shm_bytes=shm_bytes,
                                      max_users=max_users, max_events=max_events,
                                      extra=_pairs(envs, "--env"))
    dep = endpoints.deploy(endpoint_name, image_uri=image_uri, model_data_url=model_data_url,
                           role_arn=role_arn, instance_type=instance_type,
                           instance_count=instance_count, environment=env, wait=wait,
                           region=region)
    _emit(dep.to_dict())


@sagemaker_cli.command("deploy-multi-model")
@_deploy_options
@click.option("--model-prefix", required=True,
              help="s3:// prefix holding the <NAME>.tar.gz archives.")
@_user_errors
def deploy_multi_model_cmd(endpoint_name, image_uri, role_arn, instance_type, instance_count,
                           max_users, max_events, shm_bytes, envs, wait, region,
                           model_prefix) -> None:
    """Create a multi-model endpoint (Mode=MultiModel) over an S3 prefix of archives."""
    env = endpoints.model_environment(multi_model=True, shm_bytes=shm_bytes,
                                      max_users=max_users, max_events=max_events,
                                      extra=_pairs(envs, "--env"))
    dep = endpoints.deploy_multi_model(endpoint_name, model_prefix=model_prefix,
                                       image_uri=image_uri, role_arn=role_arn,
                                       instance_type=instance_type,
                                       instance_count=instance_count, environment=env,
                                       wait=wait, region=region)
    _emit(dep.to_dict())


@sagemaker_cli.command("add-model")
@click.argument("archive", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--model-prefix", required=True, help="The multi-model endpoint's s3:// prefix.")
@click.option("--name", default=None, help="Target model name (default: the archive's name).")
@_region
@_user_errors
def add_model_cmd(archive: Path, model_prefix: str, name: str | None, region) -> None:
    """Upload ARCHIVE as <prefix>/<NAME>.tar.gz; prints the TargetModel to invoke it with."""
    _emit({"target_model": endpoints.add_model(model_prefix, archive, name, region=region)})


@sagemaker_cli.command("invoke")
@click.option("--endpoint", "endpoint_name", required=True)
@click.option("--records", "records_path", required=True, type=click.File("r"),
              help="JSON file with an array of user records ('-' for stdin).")
@click.option("--target-model", default=None, help="Multi-model endpoints: <NAME>.tar.gz.")
@click.option("--binary/--json", default=False, show_default=True,
              help="binary+json content type instead of plain JSON.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the [n_users, dim] float32 matrix here (.npy).")
@_region
@_user_errors
def invoke_cmd(endpoint_name, records_path, target_model, binary, out, region) -> None:
    """Embed the users in RECORDS; prints user ids and the embedding shape (or the vectors)."""
    import numpy as np

    records = json.load(records_path)
    if isinstance(records, dict):
        records = [records]
    emb = invoke_endpoint(endpoint_name, records, target_model=target_model, binary=binary,
                          region=region)
    result = {"user_ids": emb.user_ids, "shape": list(emb.vectors.shape)}
    if out is not None:
        np.save(out, emb.vectors)
        result["out"] = str(out)
    else:
        result["embeddings"] = emb.vectors.tolist()
    _emit(result)


@sagemaker_cli.command("delete")
@click.option("--endpoint", "endpoint_name", required=True)
@click.option("--config", "config_name", default=None,
              help="Endpoint config (default: discovered from the endpoint).")
@click.option("--model", "model_names", multiple=True,
              help="Model name(s) (default: discovered from the endpoint config).")
@click.option("--s3", "s3_uris", multiple=True, help="s3:// URI or prefix to delete as well.")
@_region
@_user_errors
def delete_cmd(endpoint_name, config_name, model_names, s3_uris, region) -> None:
    """Delete the endpoint, its config and its model(s) (and S3 artifacts); idempotent."""
    _emit(endpoints.delete_deployment(endpoint_name, config_name=config_name,
                                      model_names=list(model_names) or None,
                                      s3_uris=list(s3_uris), region=region))
