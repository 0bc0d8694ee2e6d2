"""Build the exported encoder variants of a trained model.

Every variant wraps `PragmaModel.forward_tensors` in its exportable (dense, traceable) form and
takes the 14 packed tensors of `PACKED_TENSORS` in order -> `user_emb` (U, d). Sizes are
dynamic: T tokens, E events, U users, P profile tokens. torch.export specializes sizes 0 and 1,
so the example batch has at least 2 of everything; parity then checks the 1-user case.
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import numpy as np
import torch

from pragmatiq.export.parity import ragged_batch
from pragmatiq.export.runners import VARIANT_FILES, batch_args


class TensorEncoder(torch.nn.Module):
    """forward_tensors as a module with named arguments (the ONNX input names)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, key_ids, value_ids, positions, cu_tokens, event_tau, event_hour, event_dow, event_dom,
                cu_events, profile_key_ids, profile_value_ids, profile_positions, profile_tau, cu_profile):
        return self.model.forward_tensors(key_ids, value_ids, positions, cu_tokens, event_tau, event_hour,
                                          event_dow, event_dom, cu_events, profile_key_ids, profile_value_ids,
                                          profile_positions, profile_tau, cu_profile)


def exportable_copy(model) -> TensorEncoder:
    m = copy.deepcopy(model).cpu().float().eval()
    return TensorEncoder(m.set_exportable(True)).eval()


def example_args(vocab_size: int) -> tuple:
    batch = ragged_batch([3, 2, 4], [2, 3, 2], vocab_size, np.random.default_rng(0))
    return batch_args(batch)


def dynamic_shapes(min_events: int = 2) -> tuple:
    T, U, P = (torch.export.Dim(n, min=2) for n in ("T", "U", "P"))
    E = torch.export.Dim("E", min=min_events)
    return ({0: T}, {0: T}, {0: T}, {0: E + 1}, {0: E}, {0: E}, {0: E}, {0: E}, {0: U + 1},
            {0: P}, {0: P}, {0: P}, {0: P}, {0: U + 1})


def export_onnx(model, out_dir: Path) -> Path:
    """Dynamo ONNX export, one self-contained file (weights inside)."""
    from pragmatiq._optional import require

    require("onnxscript")
    path = Path(out_dir) / VARIANT_FILES["onnx"]
    enc = exportable_copy(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prog = torch.onnx.export(enc, example_args(model.config.vocab_size), dynamic_shapes=dynamic_shapes(),
                                 dynamo=True, external_data=False, verbose=False)
    prog.save(str(path))
    return path


def export_torchscript(model, out_dir: Path) -> Path:
    """torch.jit.trace of the exportable form (deprecated in torch 2.13 but still loadable by libtorch)."""
    path = Path(out_dir) / VARIANT_FILES["torchscript"]
    enc = exportable_copy(model)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(enc, example_args(model.config.vocab_size), check_trace=False)
    traced.save(str(path))
    return path


def export_pt2(model, out_dir: Path) -> Path:
    """torch.export + AOTInductor package (tied to this torch version and device)."""
    from torch._inductor import aoti_compile_and_package

    path = Path(out_dir) / VARIANT_FILES["pt2"]
    enc = exportable_copy(model)
    with torch.no_grad():
        # torch.export proves E >= 3 from the example; smaller batches are checked by parity
        ep = torch.export.export(enc, example_args(model.config.vocab_size), dynamic_shapes=dynamic_shapes(3))
        aoti_compile_and_package(ep, package_path=str(path))
    return path


EXPORTERS = {"onnx": export_onnx, "torchscript": export_torchscript, "pt2": export_pt2}
