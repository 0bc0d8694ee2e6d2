"""tritonserver flags (pure): loopback by default, the SageMaker frontend alone (with its image's shared-memory
flags), multi-model; and how `pragmatiq serve` reports a server that does not stop cleanly."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pragmatiq.serve.server import run_forever, server_args


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


def test_sagemaker_shared_memory_flags_follow_the_images_environment():
    # SageMaker's Triton image: 16 MiB, growing by 1 MiB, unless its environment says otherwise
    args = server_args(Path("/m"), http_port=None, grpc_port=None, sagemaker_port=8080)
    assert {"--backend-config=python,shm-default-byte-size=16777216",
            "--backend-config=python,shm-growth-byte-size=1048576"} <= set(args)
    env = {"SAGEMAKER_TRITON_SHM_DEFAULT_BYTE_SIZE": "1195376640", "SAGEMAKER_TRITON_SHM_GROWTH_BYTE_SIZE": "2097152"}
    args = server_args(Path("/m"), http_port=None, grpc_port=None, sagemaker_port=8080, sagemaker_env=env)
    assert {"--backend-config=python,shm-default-byte-size=1195376640",
            "--backend-config=python,shm-growth-byte-size=2097152"} <= set(args)
    # plain Triton is left with the backend's own defaults
    assert not any("backend-config" in a for a in server_args(Path("/r"), http_port=8000, grpc_port=8001,
                                                              sagemaker_env=env))


@pytest.mark.parametrize("value", ["1GB", "-5", "0", "1.5"])
def test_a_bad_shared_memory_size_is_named(value):
    with pytest.raises(ValueError, match=f"SAGEMAKER_TRITON_SHM_DEFAULT_BYTE_SIZE='{re.escape(value)}'"):
        server_args(Path("/m"), http_port=None, grpc_port=None, sagemaker_port=8080,
                    sagemaker_env={"SAGEMAKER_TRITON_SHM_DEFAULT_BYTE_SIZE": value})


class _Standin:
    """What run_forever drives, around a real child process that runs `on_term` on SIGTERM."""

    sagemaker = False
    http_url, grpc_url = "http://127.0.0.1:1", "127.0.0.1:2"

    def __init__(self, on_term: str):
        self.on_term, self.proc, self.stopped = on_term, None, []

    def start(self):
        code = f"import os, signal, time\nsignal.signal(signal.SIGTERM, lambda *a: {self.on_term})\ntime.sleep(60)"
        self.proc = subprocess.Popen([sys.executable, "-c", code])
        time.sleep(1.0)  # the handler is installed
        return self

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(30)
        self.stopped.append(self.proc.returncode)
        return self.proc.returncode

    def log_tail(self):
        return "the server's last words"


@pytest.mark.parametrize("on_term, code", [("os._exit(0)", 0), ("os.kill(os.getpid(), signal.SIGKILL)", 1)])
def test_run_forever_reports_a_server_that_crashes_while_stopping(on_term, code):
    server, said = _Standin(on_term), []
    threading.Timer(2.0, os.kill, (os.getpid(), signal.SIGTERM)).start()  # what Ctrl-C or a supervisor sends
    assert run_forever(server, log=said.append) == code
    if code:
        assert any("did not stop cleanly (status -9)" in s and "last words" in s for s in said), said
    else:
        assert said[-1].startswith("Triton stopped (status 0)")


def test_a_run_or_an_empty_directory_is_not_a_model_repository(tmp_path):
    from pragmatiq.serve.server import ServerError, TritonServer

    with pytest.raises(ServerError, match="does not exist"):
        TritonServer(tmp_path / "none").start()
    with pytest.raises(ServerError, match=r"holds no Triton model \(no \*/config.pbtxt\)"):
        TritonServer(tmp_path).start()
    (tmp_path / "model.safetensors").touch()
    with pytest.raises(ServerError, match="is a training run, not a model repository: export it first"):
        TritonServer(tmp_path).start()
