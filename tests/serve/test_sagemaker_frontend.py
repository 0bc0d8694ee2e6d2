"""`pragmatiq serve --sagemaker [--multi-model]`: Triton's real SageMaker frontend (/ping,
/invocations, /models) serving the archives of `pragmatiq-export --target sagemaker`, extracted
the way SageMaker does. The frontend binds every interface, so each scenario runs inside a
private network namespace (tests/serve/sagemaker_frontend.py)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

from pragmatiq import api

pytest.importorskip("pytriton")
pytest.importorskip("tritonclient.http")

pytestmark = pytest.mark.triton
SCENARIOS = Path(__file__).with_name("sagemaker_frontend.py")
ROOT = Path(__file__).parents[2]


def _netns_prefix() -> list[str] | None:
    if not shutil.which("unshare") or not shutil.which("ip"):
        return None
    for prefix in (["unshare", "-n"], ["unshare", "-rn"]):
        ok = subprocess.run(prefix + ["ip", "link", "set", "lo", "up"], capture_output=True).returncode == 0
        if ok:
            return prefix
    return None


NETNS = _netns_prefix()
needs_netns = pytest.mark.skipif(NETNS is None, reason="no private network namespace (unshare -n) here")


def run_scenario(*args, records: list, tmp_path: Path) -> dict:
    records_path = tmp_path / "records.json"
    records_path.write_text(json.dumps(records))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run(NETNS + [sys.executable, str(SCENARIOS), *map(str, args), str(records_path)],
                            capture_output=True, text=True, timeout=540, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def extract(archive: Path, into: Path) -> Path:
    """As SageMaker does: the archive's contents become the model directory."""
    into.mkdir(parents=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    return into


def check(answer: dict, run: Path, records: list) -> None:
    want, ids = api.embed_records(run, records)
    assert answer["status"] == 200, answer
    assert answer["user_ids"] == ids
    np.testing.assert_allclose(np.asarray(answer["embeddings"], np.float32), want, atol=1e-5)


@pytest.fixture(scope="module")
def archives(tiny_run, other_run, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("sagemaker")
    api.export(tiny_run, "sagemaker", root / "a", name="run-a", progress=lambda m: None)
    api.export(other_run, "sagemaker", root / "b", name="run-b", progress=lambda m: None)
    return {"single": root / "a/model.tar.gz", "a": root / "a/multi-model/run-a.tar.gz",
            "b": root / "b/multi-model/run-b.tar.gz"}


@needs_netns
def test_single_model_endpoint(archives, tiny_run, tiny_records, tmp_path):
    model_dir = extract(archives["single"], tmp_path / "opt/ml/model")
    seen = run_scenario("single", model_dir, records=tiny_records, tmp_path=tmp_path)
    assert seen["ping"] == 200 and seen["ping_after"] == 200
    check(seen["json"], tiny_run, tiny_records)
    check(seen["binary"], tiny_run, tiny_records)
    assert seen["bad"]["status"] == 400 and "record 0.user_id" in seen["bad"]["error"]
    assert seen["exit"] == 0


@needs_netns
def test_multi_model_endpoint_with_two_runs(archives, tiny_run, other_run, tiny_records, tmp_path):
    dir_a = extract(archives["a"], tmp_path / "opt/ml/models/aaa/model")
    dir_b = extract(archives["b"], tmp_path / "opt/ml/models/bbb/model")
    seen = run_scenario("multi", dir_a, dir_b, records=tiny_records, tmp_path=tmp_path)
    assert (seen["load_a"], seen["load_b"]) == (200, 200)
    check(seen["a"], tiny_run, tiny_records)
    check(seen["b"], other_run, tiny_records)  # each archive answers with its own run
    assert not np.allclose(seen["a"]["embeddings"], seen["b"]["embeddings"], atol=1e-3)
    assert seen["load_a_again"] == 409
    assert seen["unload_a"] == 200 and seen["a_after_unload"] == 404
    check(seen["b_after_unload"], other_run, tiny_records)
    assert seen["exit"] == 0
