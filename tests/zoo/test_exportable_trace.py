"""The exportable formulation traces: torch.export + the dynamo ONNX exporter, parity in onnxruntime."""

from __future__ import annotations

import pytest
import torch

from pragmatiq._optional import available
from pragmatiq.zoo import create_model
from tests.zoo.conftest import make_batch


class _Embedder(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, key_ids, value_ids, positions, cu_tokens, event_tau, event_hour, event_dow, event_dom,
                cu_events, profile_key_ids, profile_value_ids, profile_positions, profile_tau, cu_profile):
        return self.model.forward_tensors(key_ids, value_ids, positions, cu_tokens, event_tau, event_hour,
                                          event_dow, event_dom, cu_events, profile_key_ids, profile_value_ids,
                                          profile_positions, profile_tau, cu_profile)


def _args(b):
    return (b.key_ids, b.value_ids, b.positions, b.cu_tokens, b.event_tau, b.event_hour, b.event_dow, b.event_dom,
            b.cu_events, b.profile_key_ids, b.profile_value_ids, b.profile_positions, b.profile_tau, b.cu_profile)


def _dynamic_shapes():
    T, E, U, P = (torch.export.Dim(n, min=2) for n in ("T", "E", "U", "P"))
    return ({0: T}, {0: T}, {0: T}, {0: E + 1}, {0: E}, {0: E}, {0: E}, {0: E}, {0: U + 1},
            {0: P}, {0: P}, {0: P}, {0: P}, {0: U + 1})


@pytest.mark.slow
@pytest.mark.skipif(not (available("onnxscript") and available("onnxruntime")), reason="needs the serve extra")
def test_exportable_model_exports_to_onnx_with_parity(tmp_path):
    import onnxruntime as ort

    torch.manual_seed(0)
    model = create_model("nano", 500).eval().set_exportable(True)
    example = make_batch([3, 2, 4], [2, 3, 1], seed=1)  # >= 2 of everything (torch.export specializes 0/1)
    prog = torch.onnx.export(_Embedder(model), _args(example), dynamic_shapes=_dynamic_shapes(), dynamo=True,
                             external_data=False)
    prog.save(str(tmp_path / "nano.onnx"))
    sess = ort.InferenceSession(str(tmp_path / "nano.onnx"), providers=["CPUExecutionProvider"])
    other = make_batch([5, 1, 0, 2], [2, 0, 3, 1], seed=7)  # other sizes, a 0-event user, an empty profile
    got = sess.run(None, {i.name: x.numpy() for i, x in zip(sess.get_inputs(), _args(other))})[0]
    want = model.set_exportable(False).embed(other).numpy()
    assert abs(got - want).max() <= 1e-5
