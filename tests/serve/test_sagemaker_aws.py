"""SageMaker / S3 request shapes against moto.

AWS is SIMULATED here (moto's in-process mock, fake credentials): these tests check the
requests we send and that a mock SageMaker accepts them, not that a real endpoint serves.
moto's instance-type list is dated: `ml.g4dn.xlarge` passes, `ml.g5.*` is rejected with a
ValidationException, so every endpoint and training job below uses `ml.g4dn.xlarge`.
"""

from __future__ import annotations

import io
import json
import tarfile

import pytest

boto3 = pytest.importorskip("boto3")
moto = pytest.importorskip("moto")

from click.testing import CliRunner  # noqa: E402

from pragmatiq.serve import sagemaker as smh  # noqa: E402
from pragmatiq.serve.sagemaker.cli import sagemaker_cli  # noqa: E402

REGION = "us-east-1"
BUCKET = "pragmatiq-test-bucket"
ROLE = "arn:aws:iam::123456789012:role/SageMakerExecutionRole"
TRAIN_IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.4.0-gpu-py311"
SERVE_IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/pragmatiq-triton:latest"
INSTANCE = "ml.g4dn.xlarge"  # moto rejects ml.g5.*


@pytest.fixture
def aws(monkeypatch):
    """moto-simulated AWS with fake credentials and one bucket."""
    for k, v in {"AWS_DEFAULT_REGION": REGION, "AWS_ACCESS_KEY_ID": "testing",
                 "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing"}.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with moto.mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET)
        yield {"s3": s3, "sm": boto3.client("sagemaker", region_name=REGION)}


def _keys(s3, prefix=""):
    resp = s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    return sorted(o["Key"] for o in resp.get("Contents", []))


def test_upload_directory_mirrors_tree(aws, tmp_path):
    data = tmp_path / "data"
    (data / "labels").mkdir(parents=True)
    (data / "events.parquet").write_bytes(b"PAR1events")
    (data / "profiles.parquet").write_bytes(b"PAR1profiles")
    (data / "labels" / "churn.parquet").write_bytes(b"PAR1churn")
    uri = smh.upload_directory(data, BUCKET, "data")
    assert uri == f"s3://{BUCKET}/data"
    assert _keys(aws["s3"]) == ["data/events.parquet", "data/labels/churn.parquet",
                                "data/profiles.parquet"]
    body = aws["s3"].get_object(Bucket=BUCKET, Key="data/labels/churn.parquet")["Body"].read()
    assert body == b"PAR1churn"


def test_upload_archive_multipart(aws, tmp_path):
    archive = tmp_path / "model.tar.gz"
    archive.write_bytes(b"x" * (11 * 1024 * 1024))
    uri = smh.upload_file(archive, BUCKET, "triton/model.tar.gz",
                          multipart_threshold=5 * 1024 * 1024)
    assert uri == f"s3://{BUCKET}/triton/model.tar.gz"
    head = aws["s3"].head_object(Bucket=BUCKET, Key="triton/model.tar.gz")
    assert head["ContentLength"] == archive.stat().st_size
    assert "-" in head["ETag"]  # a multipart upload's ETag is "<md5>-<parts>"


def test_upload_errors(aws, tmp_path):
    with pytest.raises(FileNotFoundError):
        smh.upload_directory(tmp_path / "missing", BUCKET)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="empty"):
        smh.upload_directory(tmp_path / "empty", BUCKET)
    with pytest.raises(ValueError, match="s3://"):
        smh.parse_s3_uri("https://bucket/key")


def _source_dir(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "train.py").write_text("import os\nprint(os.environ['SM_CHANNEL_DATA'])\n")
    (src / "requirements.txt").write_text("pragmatiq[serve]\n")
    return src


def test_training_job_spot_checkpoint_torchrun(aws, tmp_path):
    out = smh.create_training_job(
        job_name="pragmatiq-pretrain-1", image_uri=TRAIN_IMAGE, role_arn=ROLE,
        data_uri=f"s3://{BUCKET}/data", output_uri=f"s3://{BUCKET}/runs",
        source_dir=_source_dir(tmp_path), instance_type=INSTANCE, instance_count=2,
        spot=True, max_run_s=3600, max_wait_s=7200, checkpoint_uri=f"s3://{BUCKET}/ckpt",
        hyperparameters={"max_steps": 4000},
    )
    desc = aws["sm"].describe_training_job(TrainingJobName="pragmatiq-pretrain-1")
    assert desc["TrainingJobArn"] == out["TrainingJobArn"]
    assert desc["EnableManagedSpotTraining"] is True
    assert desc["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 7200}
    assert desc["CheckpointConfig"] == {"S3Uri": f"s3://{BUCKET}/ckpt",
                                        "LocalPath": "/opt/ml/checkpoints"}
    assert desc["ResourceConfig"]["InstanceCount"] == 2
    assert desc["ResourceConfig"]["InstanceType"] == INSTANCE
    assert desc["AlgorithmSpecification"]["TrainingImage"] == TRAIN_IMAGE
    (channel,) = desc["InputDataConfig"]
    assert channel["ChannelName"] == "data"  # -> SM_CHANNEL_DATA in the container
    assert channel["DataSource"]["S3DataSource"]["S3Uri"] == f"s3://{BUCKET}/data"
    hp = desc["HyperParameters"]
    submit = f"s3://{BUCKET}/runs/pragmatiq-pretrain-1/source/sourcedir.tar.gz"
    # values are JSON-encoded, as the SageMaker SDK sends them
    assert hp["sagemaker_program"] == '"train.py"'
    assert hp["sagemaker_submit_directory"] == json.dumps(submit)
    assert hp["sagemaker_torch_distributed_enabled"] == "true"
    assert hp["sagemaker_instance_type"] == json.dumps(INSTANCE)
    assert hp["sagemaker_region"] == json.dumps(REGION)
    assert hp["max_steps"] == "4000"
    # the source dir landed in S3 as a tarball with train.py at its root
    blob = aws["s3"].get_object(Bucket=BUCKET, Key=submit.split(f"{BUCKET}/")[1])["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        assert sorted(tar.getnames()) == ["requirements.txt", "train.py"]
    done = smh.wait_training_job("pragmatiq-pretrain-1", poll_s=0)
    assert smh.model_artifact(done).endswith("/output/model.tar.gz")


def test_training_request_every_key_in_service_model(aws):
    req = smh.training_job_request(
        job_name="j", image_uri=TRAIN_IMAGE, role_arn=ROLE, data_uri="s3://b/d",
        output_uri="s3://b/o", submit_uri="s3://b/s/sourcedir.tar.gz", region=REGION,
        instance_type=INSTANCE, spot=True, checkpoint_uri="s3://b/c", tags={"team": "ml"},
    )
    shape = aws["sm"].meta.service_model.operation_model("CreateTrainingJob").input_shape

    def check(value, shape, path):
        if shape.type_name == "structure":
            assert set(value) <= set(shape.members), (path, set(value) - set(shape.members))
            assert set(shape.required_members) <= set(value), path
            for k, v in value.items():
                check(v, shape.members[k], f"{path}.{k}")
        elif shape.type_name == "list":
            for i, v in enumerate(value):
                check(v, shape.member, f"{path}[{i}]")

    check(req, shape, "CreateTrainingJob")
    assert req["StoppingCondition"]["MaxWaitTimeInSeconds"] == 2 * 24 * 3600  # default 2x
    assert "sagemaker_torch_distributed_enabled" not in req["HyperParameters"]  # one instance


def test_training_request_rejects_bad_spot():
    common = dict(job_name="j", image_uri=TRAIN_IMAGE, role_arn=ROLE, data_uri="s3://b/d",
                  output_uri="s3://b/o", submit_uri="s3://b/s.tgz", region=REGION)
    with pytest.raises(ValueError, match="checkpoint"):
        smh.training_job_request(**common, spot=True)
    with pytest.raises(ValueError, match="max_wait_s"):
        smh.training_job_request(**common, spot=True, checkpoint_uri="s3://b/c",
                                 max_run_s=100, max_wait_s=50)


def test_real_time_endpoint(aws):
    dep = smh.deploy("pragmatiq-embedder", image_uri=SERVE_IMAGE,
                     model_data_url=f"s3://{BUCKET}/triton/model.tar.gz", role_arn=ROLE,
                     instance_type=INSTANCE, delay_s=0.01)
    assert dep.status == "InService"
    model = aws["sm"].describe_model(ModelName="pragmatiq-embedder")
    container = model["PrimaryContainer"]
    assert container["Image"] == SERVE_IMAGE
    assert container["ModelDataUrl"] == f"s3://{BUCKET}/triton/model.tar.gz"
    env = container["Environment"]
    assert env["SAGEMAKER_TRITON_DEFAULT_MODEL_NAME"] == "pragmatiq_embedder"
    assert env["PRAGMATIQ_RUN"] == "/opt/ml/model/pragmatiq_embedder/1/run"
    assert int(env["SAGEMAKER_TRITON_SHM_DEFAULT_BYTE_SIZE"]) == smh.shm_bytes_for(256, 2048)
    assert model["ExecutionRoleArn"] == ROLE
    cfg = aws["sm"].describe_endpoint_config(EndpointConfigName="pragmatiq-embedder")
    (variant,) = cfg["ProductionVariants"]
    assert (variant["VariantName"], variant["ModelName"], variant["InstanceType"],
            variant["InitialInstanceCount"]) == ("main", "pragmatiq-embedder", INSTANCE, 1)
    ep = aws["sm"].describe_endpoint(EndpointName="pragmatiq-embedder")
    assert ep["EndpointConfigName"] == "pragmatiq-embedder"


def test_moto_rejects_g5_instance_types(aws):
    """Documented limitation of the simulation, not of our code: real SageMaker has ml.g5."""
    smh.create_model("m", image_uri=SERVE_IMAGE, model_data_url="s3://b/m.tar.gz",
                     role_arn=ROLE)
    with pytest.raises(Exception, match="ml.g5.xlarge"):
        smh.create_endpoint_config("c", "m", instance_type="ml.g5.xlarge")


def test_multi_model_endpoint_and_add_model(aws, tmp_path):
    prefix = f"s3://{BUCKET}/mme"
    dep = smh.deploy_multi_model("pragmatiq-mme", model_prefix=prefix, image_uri=SERVE_IMAGE,
                                 role_arn=ROLE, instance_type=INSTANCE, delay_s=0.01)
    container = aws["sm"].describe_model(ModelName="pragmatiq-mme")["PrimaryContainer"]
    assert container["Mode"] == "MultiModel"
    assert container["ModelDataUrl"] == prefix + "/"  # the prefix, not one archive
    assert "SAGEMAKER_TRITON_DEFAULT_MODEL_NAME" not in container["Environment"]
    assert dep.multi_model and dep.model_data_url == prefix + "/"
    for name in ("run-a", "run-b.tar.gz"):
        archive = tmp_path / f"{name}.tgz"
        archive.write_bytes(name.encode())
        target = smh.add_model(prefix, archive, name)
        assert target == ("run-a.tar.gz" if name == "run-a" else name)
    assert _keys(aws["s3"], "mme/") == ["mme/run-a.tar.gz", "mme/run-b.tar.gz"]


def test_delete_is_idempotent(aws, tmp_path):
    archive = tmp_path / "model.tar.gz"
    archive.write_bytes(b"archive")
    url = smh.upload_file(archive, BUCKET, "triton/model.tar.gz")
    smh.deploy("ep", image_uri=SERVE_IMAGE, model_data_url=url, role_arn=ROLE,
               instance_type=INSTANCE, model_name="ep-model", config_name="ep-config",
               wait=False)
    first = smh.delete_deployment("ep", s3_uris=[url])
    assert first == {"endpoint": ["ep"], "endpoint_config": ["ep-config"],
                     "model": ["ep-model"], "s3": [url]}
    assert aws["sm"].list_endpoints()["Endpoints"] == []
    assert aws["sm"].list_models()["Models"] == []
    assert _keys(aws["s3"], "triton/") == []
    second = smh.delete_deployment("ep", s3_uris=[url])
    assert second == {"endpoint": [], "endpoint_config": [], "model": [], "s3": []}


def test_shm_bytes_for():
    floor = 16 * 1024 * 1024
    assert smh.shm_bytes_for(1, 10) == floor
    small, big = smh.shm_bytes_for(64, 512), smh.shm_bytes_for(256, 2048)
    assert floor < small < big and big % (1024 * 1024) == 0
    assert smh.shm_bytes_for(256, 2048, dim=1024) > big
    with pytest.raises(ValueError):
        smh.shm_bytes_for(0, 10)


def test_cli_upload_deploy_add_delete(aws, tmp_path):
    runner = CliRunner()
    data = tmp_path / "data"
    data.mkdir()
    (data / "events.parquet").write_bytes(b"PAR1")
    res = runner.invoke(sagemaker_cli, ["upload", str(data), "--bucket", BUCKET])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output) == {"s3_uri": f"s3://{BUCKET}/data"}

    res = runner.invoke(sagemaker_cli, [
        "train", "--job-name", "cli-job", "--image-uri", TRAIN_IMAGE, "--role", ROLE,
        "--data", f"s3://{BUCKET}/data", "--output", f"s3://{BUCKET}/runs",
        "--source-dir", str(_source_dir(tmp_path)), "--instance-type", INSTANCE,
        "--spot", "--checkpoint", f"s3://{BUCKET}/ckpt", "--hp", "max_steps=10", "--wait",
    ])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["status"] == "Completed"

    res = runner.invoke(sagemaker_cli, [
        "deploy", "--endpoint", "cli-ep", "--image-uri", SERVE_IMAGE, "--role", ROLE,
        "--instance-type", INSTANCE, "--model-data", f"s3://{BUCKET}/triton/model.tar.gz",
        "--shm-bytes", "1073741824", "--no-wait",
    ])
    assert res.exit_code == 0, res.output
    env = aws["sm"].describe_model(ModelName="cli-ep")["PrimaryContainer"]["Environment"]
    assert env["SAGEMAKER_TRITON_SHM_DEFAULT_BYTE_SIZE"] == "1073741824"

    res = runner.invoke(sagemaker_cli, [
        "deploy-multi-model", "--endpoint", "cli-mme", "--image-uri", SERVE_IMAGE, "--role",
        ROLE, "--instance-type", INSTANCE, "--model-prefix", f"s3://{BUCKET}/mme/",
        "--no-wait",
    ])
    assert res.exit_code == 0, res.output
    archive = tmp_path / "a.tar.gz"
    archive.write_bytes(b"a")
    res = runner.invoke(sagemaker_cli, ["add-model", str(archive), "--model-prefix",
                                        f"s3://{BUCKET}/mme/", "--name", "run-a"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output) == {"target_model": "run-a.tar.gz"}

    for ep in ("cli-ep", "cli-mme"):
        res = runner.invoke(sagemaker_cli, ["delete", "--endpoint", ep])
        assert res.exit_code == 0, res.output
        assert json.loads(res.output)["endpoint"] == [ep]
    res = runner.invoke(sagemaker_cli, ["delete", "--endpoint", "cli-ep"])
    assert res.exit_code == 0 and json.loads(res.output)["endpoint"] == []


def test_cli_user_error_is_one_line(aws):
    res = CliRunner().invoke(sagemaker_cli, [
        "deploy", "--endpoint", "x", "--image-uri", SERVE_IMAGE, "--role", ROLE,
        "--model-data", "s3://b/m.tar.gz", "--instance-type", "ml.g5.xlarge", "--no-wait",
    ])
    assert res.exit_code == 2
    assert res.output.startswith("error: ") and "ml.g5.xlarge" in res.output


def test_missing_boto3_names_the_extra(monkeypatch):
    import sys

    from pragmatiq._optional import MissingExtraError

    monkeypatch.setitem(sys.modules, "boto3", None)  # import boto3 -> ImportError
    with pytest.raises(MissingExtraError, match=r'pip install "pragmatiq\[sagemaker\]"'):
        smh.delete_prefix("s3://bucket/prefix")


def test_failed_training_job_raises_with_reason():
    class FakeSM:
        def describe_training_job(self, TrainingJobName):
            return {"TrainingJobStatus": "Failed", "FailureReason": "AlgorithmError: OOM"}

    with pytest.raises(RuntimeError, match="ended Failed: AlgorithmError: OOM"):
        smh.wait_training_job("j", sm=FakeSM(), poll_s=0)


def test_cli_invoke_writes_npy(aws, tmp_path):
    """`pragmatiq sagemaker invoke` against moto's runtime, answer queued via moto's API."""
    requests = pytest.importorskip("requests")
    import numpy as np

    body = {"model_name": "pragmatiq_embedder", "model_version": "1", "outputs": [
        {"name": "embeddings", "datatype": "FP32", "shape": [2, 3], "data": [1, 2, 3, 4, 5, 6]},
        {"name": "user_ids", "datatype": "BYTES", "shape": [2], "data": ["u1", "u2"]},
    ]}
    requests.post(
        "http://motoapi.amazonaws.com/moto-api/static/sagemaker/endpoint-results",
        json={"region": REGION, "results": [{"Body": json.dumps(body),
                                             "ContentType": "application/json",
                                             "InvokedProductionVariant": "main",
                                             "CustomAttributes": ""}]},
    ).raise_for_status()
    records = tmp_path / "users.json"
    records.write_text(json.dumps([{"user_id": "u1", "events": [], "attributes": {},
                                    "lifelong": []},
                                   {"user_id": "u2", "events": [], "attributes": {},
                                    "lifelong": []}]))
    out = tmp_path / "emb.npy"
    res = CliRunner().invoke(sagemaker_cli, ["invoke", "--endpoint", "ep", "--records",
                                             str(records), "--target-model", "run-a.tar.gz",
                                             "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output) == {"user_ids": ["u1", "u2"], "shape": [2, 3], "out": str(out)}
    np.testing.assert_array_equal(np.load(out), np.arange(1, 7, dtype=np.float32).reshape(2, 3))
