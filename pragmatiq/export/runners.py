"""One callable per encoder variant: `runner(batch: PackedBatch) -> (U, d) float32 NumPy`.

`make_runner(kind, directory)` loads what an export wrote into `directory`:

    torch        model.safetensors + model.json (the native varlen forward, the reference)
    onnx         model.onnx (onnxruntime)
    torchscript  model.ts (torch.jit)
    pt2          model.pt2 (an AOTInductor package)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pragmatiq.tokenizer.packed import PackedBatch
from pragmatiq.triton_models.packed_io import TENSOR_NAMES

VARIANT_FILES = {"torch": "model.safetensors", "onnx": "model.onnx", "torchscript": "model.ts", "pt2": "model.pt2"}


def batch_args(batch: PackedBatch) -> tuple:
    """The forward_tensors arguments of a batch, in order."""
    return tuple(getattr(batch, name) for name in TENSOR_NAMES)


class TorchRunner:
    """The native model: varlen attention, `inference_mode`, bf16 autocast on CUDA if asked."""

    def __init__(self, model_dir: Path, device: str = "cpu", precision: str = "fp32"):
        from pragmatiq.zoo import load_model

        if precision not in ("fp32", "bf16"):
            raise ValueError(f"precision must be fp32 or bf16, got {precision!r}")
        self.device = device
        self.bf16 = precision == "bf16" and device.startswith("cuda")
        self.model = load_model(model_dir, map_location=device).to(device).eval()

    def __call__(self, batch: PackedBatch) -> np.ndarray:
        import torch

        with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.bf16):
            emb = self.model(batch.to(self.device), heads_only=True).user_emb  # (U, d)
        return emb.float().cpu().numpy()


def onnx_providers(device: str, available: list[str]) -> list:
    """ONNX Runtime's providers for `device` ("cpu", "cuda", "cuda:N"): the CUDA provider on GPU N
    (its device_id otherwise defaults to 0), then the CPU. A CUDA device without the CUDA provider
    (the CPU-only onnxruntime wheel) is an error, not a silent CPU session."""
    if not device.startswith("cuda"):
        return ["CPUExecutionProvider"]
    if "CUDAExecutionProvider" not in available:
        raise RuntimeError(f"ONNX on {device} needs onnxruntime-gpu (this onnxruntime has {', '.join(available)}): "
                           'pip uninstall -y onnxruntime && pip install onnxruntime-gpu')
    index = int(device.split(":", 1)[1]) if ":" in device else 0
    return [("CUDAExecutionProvider", {"device_id": index}), "CPUExecutionProvider"]


class OnnxRunner:
    def __init__(self, model_dir: Path, device: str = "cpu", threads: int = 1):
        from pragmatiq._optional import require

        ort = require("onnxruntime")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = max(1, threads)
        opts.inter_op_num_threads = 1
        providers = onnx_providers(device, ort.get_available_providers())
        self.session = ort.InferenceSession(str(Path(model_dir) / VARIANT_FILES["onnx"]), opts, providers=providers)
        if device.startswith("cuda") and "CUDAExecutionProvider" not in self.session.get_providers():
            # ONNX Runtime falls back to the CPU with a warning when CUDA or cuDNN does not match
            raise RuntimeError(f"{model_dir}: ONNX Runtime could not start its CUDA provider for {device}: check that "
                               "onnxruntime-gpu matches this CUDA and cuDNN")
        self.names = [i.name for i in self.session.get_inputs()]

    def __call__(self, batch: PackedBatch) -> np.ndarray:
        feed = {n: t.cpu().numpy() for n, t in zip(self.names, batch_args(batch))}
        return self.session.run(None, feed)[0].astype(np.float32, copy=False)


class ModuleRunner:
    """A loaded TorchScript module or AOTInductor package taking the forward_tensors arguments."""

    def __init__(self, model_dir: Path, kind: str, device: str = "cpu"):
        import torch

        if device != "cpu":
            # traced and compiled on the CPU: the graphs hold CPU devices and CPU kernels
            raise ValueError(f"the {kind} variant is exported for the CPU; serve it with device cpu, or use the "
                             "torch or onnx variant on a GPU")
        path = Path(model_dir) / VARIANT_FILES[kind]
        self.device = device
        if kind == "torchscript":
            self.fn = torch.jit.load(str(path), map_location=device).eval()
        else:
            from torch._inductor import aoti_load_package

            self.fn = aoti_load_package(str(path))

    def __call__(self, batch: PackedBatch) -> np.ndarray:
        import torch

        with torch.inference_mode():
            out = self.fn(*(t.to(self.device) for t in batch_args(batch)))
        return out.float().cpu().numpy()


def make_runner(kind: str, model_dir: str | Path, *, device: str = "cpu", precision: str = "fp32",
                threads: int = 1):
    """The runner for variant `kind` from the files in `model_dir`."""
    model_dir = Path(model_dir)
    if kind not in VARIANT_FILES:
        raise ValueError(f"unknown encoder variant {kind!r}; choose from {', '.join(VARIANT_FILES)}")
    if not (model_dir / VARIANT_FILES[kind]).is_file():
        raise FileNotFoundError(f"{model_dir / VARIANT_FILES[kind]} is missing: export the {kind} variant first")
    if kind == "torch":
        return TorchRunner(model_dir, device, precision)
    if kind == "onnx":
        return OnnxRunner(model_dir, device, threads)
    return ModuleRunner(model_dir, kind, device)
