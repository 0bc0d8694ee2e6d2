"""Start, await and stop a real Triton server.

The server is the `tritonserver` on `PATH` (a stock Triton install) or, failing that, the one
bundled in the `nvidia-pytriton` wheel (the `serve` extra). The bundled server needs three
things its wheel does not arrange: the python backend stub for this Python beside
`libtriton_python.so` (we assemble a private backends directory), the wheel's shared libraries
and `libpython` on `LD_LIBRARY_PATH`, and this environment's `bin` first on `PATH` (the stub
finds its interpreter through `python3`). Everything binds loopback except the SageMaker
frontend, which always binds every interface (Triton has no address flag for it).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pragmatiq._optional import MissingExtraError


class ServerError(RuntimeError):
    """The server could not be found, did not start, or died; the message holds its log tail."""


@dataclass(frozen=True)
class TritonInstall:
    binary: Path
    backends: Path | None  # backends directory to pass, None for the install's default
    env: dict[str, str] = field(default_factory=dict)  # extra environment for the server
    bundled: bool = False


def free_port() -> int:
    """An unused loopback TCP port (racy by nature; good enough for tests and local serving)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pytriton_root() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("pytriton")
    if spec is None or not spec.submodule_search_locations:
        raise MissingExtraError(
            "no tritonserver on PATH and the bundled one is missing: pip install 'pragmatiq[serve]'")
    return Path(list(spec.submodule_search_locations)[0])


def _bundled_backends(root: Path, into: Path) -> Path:
    """A backends directory holding the python backend with this Python's stub beside it."""
    py = f"{sys.version_info.major}.{sys.version_info.minor}"
    stub = root / "tritonserver" / "python_backend_stubs" / py / "triton_python_backend_stub"
    if not stub.is_file():
        raise ServerError(f"the bundled Triton has no python backend stub for Python {py} ({stub})")
    src = root / "tritonserver" / "backends" / "python"
    dst = into / "python"
    dst.mkdir(parents=True, exist_ok=True)
    for f in (src / "libtriton_python.so", src / "triton_python_backend_utils.py", stub):
        shutil.copy2(f, dst / f.name)
    return into


def find_triton(work_dir: Path) -> TritonInstall:
    """The `tritonserver` on PATH, else the bundled one prepared under work_dir."""
    on_path = shutil.which("tritonserver")
    if on_path:
        return TritonInstall(Path(on_path), None)
    root = _pytriton_root()
    binary = root / "tritonserver" / "bin" / "tritonserver"
    if not binary.is_file():
        raise ServerError(f"the nvidia-pytriton wheel has no server binary at {binary}")
    libs = [str(root.parent / "nvidia_pytriton.libs"), str(sysconfig.get_config_var("LIBDIR"))]
    old = os.environ.get("LD_LIBRARY_PATH")
    env = {
        "LD_LIBRARY_PATH": os.pathsep.join(libs + ([old] if old else [])),
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
    }
    return TritonInstall(binary, _bundled_backends(root, work_dir / "backends"), env, bundled=True)


# SageMaker's Triton image turns these variables into python-backend flags, with these defaults
# (its `serve` script); the local SageMaker frontend does the same, so a request too large for the
# endpoint's shared memory fails here too
SAGEMAKER_SHM_FLAGS = {
    "SAGEMAKER_TRITON_SHM_DEFAULT_BYTE_SIZE": ("shm-default-byte-size", 16 * 2**20),
    "SAGEMAKER_TRITON_SHM_GROWTH_BYTE_SIZE": ("shm-growth-byte-size", 2**20),
}


def sagemaker_backend_args(env: Mapping[str, str]) -> list[str]:
    """The python backend's shared-memory flags SageMaker's Triton image derives from `env`
    (pure); a value that is not a positive whole number of bytes is an error naming it."""
    args = []
    for var, (flag, default) in SAGEMAKER_SHM_FLAGS.items():
        raw = env.get(var, "").strip()
        if raw and not (raw.isdigit() and int(raw) > 0):
            raise ValueError(f"{var}={raw!r}: expected a positive number of bytes, e.g. {default}")
        args.append(f"--backend-config=python,{flag}={int(raw) if raw else default}")
    return args


def server_args(repo: Path | None, *, http_port: int | None, grpc_port: int | None,
                sagemaker_port: int | None = None, multi_model: bool = False,
                explicit: bool = False, log_verbose: int = 0,
                sagemaker_env: Mapping[str, str] | None = None) -> list[str]:
    """Command-line flags (pure): loopback HTTP/gRPC, or the SageMaker frontend alone (with the
    shared-memory flags its image derives from `sagemaker_env`)."""
    args = ["--allow-metrics=false", "--disable-auto-complete-config", f"--log-verbose={log_verbose}",
            "--exit-timeout-secs=10"]
    if repo is not None:
        args.append(f"--model-repository={repo}")
    if sagemaker_port is not None:
        args += ["--allow-sagemaker=true", f"--sagemaker-port={sagemaker_port}",
                 "--allow-http=false", "--allow-grpc=false"]
        args += sagemaker_backend_args(sagemaker_env or {})
    else:
        args += ["--http-address=127.0.0.1", "--grpc-address=127.0.0.1"]
        args.append(f"--http-port={http_port}" if http_port else "--allow-http=false")
        args.append(f"--grpc-port={grpc_port}" if grpc_port else "--allow-grpc=false")
    if multi_model or explicit:
        args.append("--model-control-mode=explicit")
    if multi_model:
        args.append("--model-namespacing=true")
    return args


def _check_repository(repo: Path) -> None:
    """A directory of Triton model directories (each with a config.pbtxt), or a clear error."""
    if not repo.is_dir():
        raise ServerError(f"model repository {repo} does not exist")
    if (repo / "model.safetensors").exists():
        raise ServerError(f"{repo} is a training run, not a model repository: export it first "
                          f"(pragmatiq-export --run {repo} --target triton --out DIR) and serve DIR")
    if not any(repo.glob("*/config.pbtxt")):
        raise ServerError(f"{repo} holds no Triton model (no */config.pbtxt): pass the directory "
                          "pragmatiq-export wrote, or an extracted SageMaker model.tar.gz")


def _get(url: str, timeout: float = 2.0) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except (urllib.error.URLError, OSError):
        return 0


class TritonServer:
    """A Triton server process: `with TritonServer(repo) as s: s.http_url`.

    Args:
        repo: model repository (None with `multi_model`: models are loaded through the API).
        http_port / grpc_port: 0 or None picks a free port; the SageMaker mode serves neither.
        sagemaker_port: serve only Triton's SageMaker frontend (`/ping`, `/invocations`) here.
        multi_model: SageMaker multi-model mode (explicit model control, namespacing).
        env: extra environment for the server and its python models.
        host: where clients reach the server (loopback unless run in another namespace).
    """

    def __init__(self, repo: str | Path | None, *, http_port: int | None = None,
                 grpc_port: int | None = None, sagemaker_port: int | None = None,
                 multi_model: bool = False, explicit: bool = False, env: dict | None = None,
                 log_verbose: int = 0, host: str = "127.0.0.1"):
        self.repo = Path(repo).resolve() if repo is not None else None
        self.sagemaker = sagemaker_port is not None
        self.sagemaker_port = (sagemaker_port or free_port()) if self.sagemaker else None
        self.http_port = None if self.sagemaker else (http_port or free_port())
        self.grpc_port = None if self.sagemaker else (grpc_port or free_port())
        self.multi_model, self.explicit, self.log_verbose = multi_model, explicit, log_verbose
        self.extra_env = dict(env or {})
        self.host = host
        self.proc: subprocess.Popen | None = None
        self._work: tempfile.TemporaryDirectory | None = None
        self.log_path: Path | None = None
        self._final_log: list[str] = []

    # ------------------------------------------------------------------ addresses
    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.http_port}"

    @property
    def grpc_url(self) -> str:
        return f"{self.host}:{self.grpc_port}"

    @property
    def sagemaker_url(self) -> str:
        return f"http://{self.host}:{self.sagemaker_port}"

    def command(self, install: TritonInstall, repo: Path | None = None) -> list[str]:
        cmd = [str(install.binary)] + server_args(
            repo or self.repo, http_port=self.http_port, grpc_port=self.grpc_port,
            sagemaker_port=self.sagemaker_port, multi_model=self.multi_model, explicit=self.explicit,
            log_verbose=self.log_verbose, sagemaker_env={**os.environ, **self.extra_env})
        if install.backends is not None:
            cmd.append(f"--backend-directory={install.backends}")
        return cmd

    # ------------------------------------------------------------------ lifecycle
    def start(self, timeout: float = 180.0) -> "TritonServer":
        if self.repo is not None:
            _check_repository(self.repo)
        if self.sagemaker:  # its environment's flags are checked before anything starts
            sagemaker_backend_args({**os.environ, **self.extra_env})
        self._work = tempfile.TemporaryDirectory(prefix="pragmatiq-triton-")
        work = Path(self._work.name)
        install = find_triton(work)
        env = {**os.environ, **install.env, **self.extra_env}
        repo = self.repo
        if repo is None:  # multi-model: models are loaded through the API; Triton still wants a repository
            repo = work / "models"
            repo.mkdir()
        self.log_path = work / "tritonserver.log"
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(self.command(install, repo), env=env, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        try:
            self.wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def ready(self) -> bool:
        if self.sagemaker:
            return _get(f"{self.sagemaker_url}/ping") == 200
        return _get(f"{self.http_url}/v2/health/ready") == 200

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerError(f"tritonserver exited with status {self.proc.returncode}:\n{self.log_tail()}")
            if self.ready():
                return
            time.sleep(0.2)
        raise ServerError(f"tritonserver was not ready after {timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self, n: int = 40) -> str:
        """The server log's last n lines (after `stop`, those it ended with)."""
        if self.log_path is None or not self.log_path.exists():
            return "\n".join(self._final_log[-n:])
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM, then SIGKILL after `timeout`; returns the exit status."""
        rc = None
        if self.proc is not None:
            if self.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGTERM)
                try:
                    self.proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(self.proc.pid, signal.SIGKILL)
                    self.proc.wait()
            rc = self.proc.returncode
        if self._work is not None:
            self._final_log = self.log_tail(200).splitlines()  # the log lives in the work directory
            self._work.cleanup()
            self._work = None
        return rc

    def __enter__(self) -> "TritonServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def run_forever(server: TritonServer, log=print) -> int:
    """Start `server`, report its addresses, and stop it cleanly on Ctrl-C or SIGTERM.

    Returns 0 after a requested stop that Triton completed cleanly, 1 when the server died on its
    own or crashed (or had to be killed) while stopping; its log tail is shown then."""
    stop = {"requested": False}

    def request_stop(signum, frame):
        stop["requested"] = True

    old = {s: signal.signal(s, request_stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.start()
        if server.sagemaker:
            log(f"SageMaker frontend ready on port {server.sagemaker_port} (every interface):"
                f" {server.sagemaker_url}/ping, /invocations" + (", /models" if server.multi_model else ""))
        else:
            log(f"Triton ready: HTTP {server.http_url}, gRPC {server.grpc_url} (loopback); Ctrl-C stops it")
        while not stop["requested"]:
            if server.proc.poll() is not None:
                log(f"tritonserver exited with status {server.proc.returncode}:\n{server.log_tail()}")
                return 1
            time.sleep(0.2)
        log("stopping Triton")
        t0 = time.monotonic()
        rc = server.stop()
        if rc not in (0, -signal.SIGTERM):
            log(f"Triton did not stop cleanly (status {rc}):\n{server.log_tail()}")
            return 1
        log(f"Triton stopped (status {rc}) in {time.monotonic() - t0:.1f} s")
        return 0
    finally:
        server.stop()
        for s, handler in old.items():
            signal.signal(s, handler)
