"""SageMaker archives of a Triton model repository.

    out/model.tar.gz          single-model endpoint: the model directories at the archive root
                              (no root config.pbtxt), for SAGEMAKER_TRITON_DEFAULT_MODEL_NAME=pragmatiq_embedder
    out/multi-model/NAME.tar.gz   multi-model endpoint: the native ensemble and its two steps,
                              invoked with TargetModel=NAME.tar.gz; the container maps the
                              ensemble to the target name and model namespacing keeps each
                              archive's steps apart
    out/parity.json           the export's parity results (beside, not inside, the archives)
"""

from __future__ import annotations

import re
import shutil
import tarfile
import tempfile
from pathlib import Path

from pragmatiq.export.targets import ExportError, check_run, export_triton
from pragmatiq.triton_models.configs import EMBEDDER, ENCODER, TOKENIZER

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


# A multi-model archive holds exactly one ensemble: the container maps the ensemble it finds to
# the target model name (with several, which one it picks is unspecified).
MULTI_MODEL_MODELS = (TOKENIZER, ENCODER, EMBEDDER)


def pack_repository(repo: str | Path, archive: str | Path, models: tuple[str, ...] | None = None) -> Path:
    """tar.gz the model directories of `repo` (all, or `models`) at the archive root (sorted,
    owner-neutral)."""
    repo, archive = Path(repo), Path(archive)
    models = sorted(p for p in repo.iterdir() if p.is_dir() and (p / "config.pbtxt").is_file()
                    and (models is None or p.name in models))
    if not models:
        raise ExportError(f"{repo}: no model directories (config.pbtxt) to pack")

    def neutral(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        return info

    archive.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "w:gz") as tar:
        for m in models:
            tar.add(m, arcname=m.name, filter=neutral)
    return archive


def export_sagemaker(run: str | Path, out: str | Path, *, name: str | None = None, variants=(),
                     device: str = "cpu", instances: int = 1, precision: str = "fp32",
                     dynamic_batching: bool = True, overwrite: bool = False, progress=print) -> Path:
    """Write `model.tar.gz` (real-time) and `multi-model/<name>.tar.gz` (multi-model) for `run`."""
    run, out = check_run(run), Path(out)
    name = name or run.resolve().name
    if not _NAME.match(name):
        raise ExportError(f"--name {name!r}: use letters, digits, '.', '_' or '-' (at most 63 characters)")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise ExportError(f"{out} exists and is not empty; pass --force to replace it")
    with tempfile.TemporaryDirectory(prefix="pragmatiq-sagemaker-") as tmp:
        repo = export_triton(run, Path(tmp) / "repo", variants=variants, device=device, instances=instances,
                             precision=precision, dynamic_batching=dynamic_batching, progress=progress)
        if out.exists():
            shutil.rmtree(out)
        pack_repository(repo, out / "model.tar.gz")
        pack_repository(repo, out / "multi-model" / f"{name}.tar.gz", MULTI_MODEL_MODELS)
        shutil.copy2(repo / "parity.json", out / "parity.json")
    return out
