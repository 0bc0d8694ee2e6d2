"""The exportable formulation traces: torch.export + the dynamo ONNX exporter, parity in onnxruntime."""

from __future__ import annotations

import pytest
import torch

from pragmatiq._optional import available
from pragmatiq.export.runners import batch_args
from pragmatiq.export.variants import TensorEncoder, dynamic_shapes
from pragmatiq.zoo import create_model
from tests.zoo.conftest import make_batch


@pytest.mark.slow
@pytest.mark.skipif(not (available("onnxscript") and available("onnxruntime")), reason="needs the serve extra")
def test_exportable_model_exports_to_onnx_with_parity(tmp_path):
    import onnxruntime as ort

    torch.manual_seed(0)
    model = create_model("nano", 500).eval().set_exportable(True)
    example = make_batch([3, 2, 4], [2, 3, 1], seed=1)  # >= 2 of everything (torch.export specializes 0/1)
    prog = torch.onnx.export(TensorEncoder(model), batch_args(example), dynamic_shapes=dynamic_shapes(), dynamo=True,
                             external_data=False)
    prog.save(str(tmp_path / "nano.onnx"))
    sess = ort.InferenceSession(str(tmp_path / "nano.onnx"), providers=["CPUExecutionProvider"])
    other = make_batch([5, 1, 0, 2], [2, 0, 3, 1], seed=7)  # other sizes, a 0-event user, an empty profile
    got = sess.run(None, {i.name: x.numpy() for i, x in zip(sess.get_inputs(), batch_args(other))})[0]
    want = model.set_exportable(False).embed(other).numpy()
    assert abs(got - want).max() <= 1e-5
