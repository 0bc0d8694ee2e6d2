"""The SageMaker tutorial's notebook steps as one script, each step one call of ours.

    python deploy/sagemaker/notebook.py --bucket B --role ARN --train-image URI \
        --serve-image URI --archive export/sagemaker/model.tar.gz

1. synthesize (or take --data), validate, upload to s3://B/data
2. training job (PyTorch DLC, src/train.py, managed spot + checkpoints), wait, model.tar.gz
3. upload the Triton archive (`pragmatiq-export --run RUN --target sagemaker`), create model,
   endpoint config, endpoint; wait for InService
4. invoke with the tutorial's record; print the embedding shape
5. delete the endpoint, endpoint config and model (and, --delete-s3, the uploads)

Against real AWS this bills (a GPU training job and a real-time endpoint). In pragmatiq's
test suite it runs against moto, i.e. with AWS simulated (tests/serve/test_sagemaker_tutorial.py).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
TUTORIAL_RECORDS = [{
    "user_id": "u1",
    "events": [{"ts": 1718200000000000, "source": "transaction",
                "fields": {"amount": "42.50", "merchant": "TESCO"}}],
    "attributes": {"country": "GB"},
    "lifelong": [],
}]


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--bucket", required=True)
    p.add_argument("--role", required=True, help="SageMaker execution role ARN")
    p.add_argument("--train-image", required=True, help="PyTorch training DLC image URI")
    p.add_argument("--serve-image", required=True, help="pragmatiq serving image (ECR)")
    p.add_argument("--archive", required=True, type=Path,
                   help="single-model archive from pragmatiq-export --target sagemaker")
    p.add_argument("--data", type=Path, default=Path("data"))
    p.add_argument("--n-users", type=int, default=50000)
    p.add_argument("--source-dir", type=Path, default=HERE / "src")
    p.add_argument("--name", default="pragmatiq-embedder")
    p.add_argument("--job-name", default="pragmatiq-pretrain")
    p.add_argument("--train-instance", default="ml.g5.2xlarge")
    p.add_argument("--serve-instance", default="ml.g5.xlarge")
    p.add_argument("--no-spot", dest="spot", action="store_false")
    p.add_argument("--poll-s", type=float, default=30.0)
    p.add_argument("--delete-s3", action="store_true")
    return p.parse_args(argv)


def main(argv=None) -> dict:
    from pragmatiq import api
    from pragmatiq.serve import sagemaker as sm

    a = parse_args(argv)
    bucket = a.bucket

    # 1. data -> S3 (sess.upload_data("data", bucket=bucket, key_prefix="data"))
    if not (a.data / "events.parquet").exists():
        api.synthesize({"n_users": a.n_users, "seed": 0}, out=a.data, progress=False)
    report = api.validate(a.data)
    if report.exit_code:
        raise SystemExit(f"{a.data} does not follow the data contract: {report.to_dict()}")
    data_uri = sm.upload_directory(a.data, bucket, "data")

    # 2. train (PyTorch(...).fit({"data": data_uri}) with spot + checkpoints)
    sm.create_training_job(
        job_name=a.job_name, image_uri=a.train_image, role_arn=a.role, data_uri=data_uri,
        output_uri=f"s3://{bucket}/runs", source_dir=a.source_dir, entry_point="train.py",
        instance_type=a.train_instance, spot=a.spot,
        checkpoint_uri=f"s3://{bucket}/checkpoints/{a.job_name}" if a.spot else None,
    )
    job = sm.wait_training_job(a.job_name, poll_s=a.poll_s)
    model_data = sm.model_artifact(job)  # est.model_data: the trained run

    # 3. serve: archive -> S3, create-model / create-endpoint-config / create-endpoint, wait
    archive_uri = sm.upload_file(a.archive, bucket, "triton/model.tar.gz")
    dep = sm.deploy(a.name, image_uri=a.serve_image, model_data_url=archive_uri,
                    role_arn=a.role, instance_type=a.serve_instance,
                    environment=sm.model_environment(shm_bytes=1 << 30), delay_s=a.poll_s)

    # 4. invoke with the tutorial's body
    emb = sm.invoke(a.name, TUTORIAL_RECORDS)

    # 5. clean up
    s3_uris = [data_uri, archive_uri, f"s3://{bucket}/runs/{a.job_name}"] if a.delete_s3 else []
    deleted = sm.delete_deployment(a.name, s3_uris=s3_uris)
    summary = {
        "data_uri": data_uri, "training_job": a.job_name, "model_data": model_data,
        "archive_uri": archive_uri, "endpoint": dep.endpoint_name, "status": dep.status,
        "user_ids": emb.user_ids, "shape": list(emb.vectors.shape), "deleted": deleted,
    }
    print(json.dumps(summary, indent=2), file=sys.stdout)
    return summary


if __name__ == "__main__":
    main()
