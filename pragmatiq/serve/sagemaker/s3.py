"""Upload a data directory, a file or an archive to S3 and delete what was uploaded.

Uploads go through boto3's transfer manager (`upload_file`), which switches to multipart
above `multipart_threshold` and uploads parts concurrently.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pragmatiq._optional import require
from pragmatiq.serve.sagemaker._aws import client as _client

MiB = 1024 * 1024


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """`s3://bucket/key/prefix` -> `("bucket", "key/prefix")`."""
    if not uri.startswith("s3://"):
        raise ValueError(f"not an S3 URI: {uri!r} (expected s3://BUCKET/KEY)")
    bucket, _, key = uri[len("s3://"):].partition("/")
    if not bucket:
        raise ValueError(f"S3 URI has no bucket: {uri!r}")
    return bucket, key


def s3_uri(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key.lstrip('/')}"


def _transfer_config(multipart_threshold: int, max_concurrency: int) -> Any:
    require("boto3")  # names the `sagemaker` extra when missing
    from boto3.s3.transfer import TransferConfig

    return TransferConfig(
        multipart_threshold=multipart_threshold,
        multipart_chunksize=max(5 * MiB, multipart_threshold),  # S3's minimum part is 5 MiB
        max_concurrency=max_concurrency,
    )


def upload_file(
    path: str | Path,
    bucket: str,
    key: str,
    *,
    region: str | None = None,
    s3: Any = None,
    multipart_threshold: int = 64 * MiB,
    max_concurrency: int = 8,
) -> str:
    """Upload one file (an archive, a parquet file) to `s3://bucket/key`; return that URI."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file to upload")
    s3 = s3 or _client("s3", region)
    s3.upload_file(
        str(path), bucket, key, Config=_transfer_config(multipart_threshold, max_concurrency)
    )
    return s3_uri(bucket, key)


def upload_directory(
    path: str | Path,
    bucket: str,
    key_prefix: str = "data",
    *,
    region: str | None = None,
    s3: Any = None,
    multipart_threshold: int = 64 * MiB,
    max_concurrency: int = 8,
) -> str:
    """Upload every file under `path` to `s3://bucket/key_prefix/<relative path>`.

    The equivalent of `sagemaker.Session().upload_data(path, bucket, key_prefix)`: returns
    the prefix URI `s3://bucket/key_prefix` (what a training channel's `S3Uri` takes).
    A single file is uploaded as `key_prefix/<name>` and its own URI is returned.
    """
    path = Path(path)
    s3 = s3 or _client("s3", region)
    prefix = key_prefix.strip("/")
    if path.is_file():
        return upload_file(path, bucket, f"{prefix}/{path.name}" if prefix else path.name,
                           s3=s3, multipart_threshold=multipart_threshold,
                           max_concurrency=max_concurrency)
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such file or directory to upload")
    files = sorted(p for p in path.rglob("*") if p.is_file())
    if not files:
        raise ValueError(f"{path}: directory is empty, nothing to upload")
    for f in files:
        rel = f.relative_to(path).as_posix()
        upload_file(f, bucket, f"{prefix}/{rel}" if prefix else rel, s3=s3,
                    multipart_threshold=multipart_threshold, max_concurrency=max_concurrency)
    return s3_uri(bucket, prefix)


def delete_prefix(uri: str, *, region: str | None = None, s3: Any = None) -> int:
    """Delete every object under an S3 URI (a key or a prefix); return how many. Idempotent."""
    bucket, prefix = parse_s3_uri(uri)
    s3 = s3 or _client("s3", region)
    deleted = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:  # delete_objects takes at most 1000 keys; a page holds at most 1000
            s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
            deleted += len(keys)
    return deleted
