"""The triton kernel's forward and backward on CPU under the Triton interpreter.

TRITON_INTERPRET must be set before triton is imported, so the check runs in a subprocess and
the environment of the other tests is untouched.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from pragmatiq._optional import available

pytestmark = pytest.mark.skipif(not available("triton"), reason="triton not installed")

SCRIPT = textwrap.dedent("""
    import os, sys
    assert os.environ["TRITON_INTERPRET"] == "1"
    import torch
    from pragmatiq.kernels import varlen_attention, select_backend
    from tests.kernels._ragged import ragged, EVENT_LENGTHS, HISTORY_LENGTHS
    worst = 0.0
    for lengths, heads, dim in ((EVENT_LENGTHS, 2, 32), (HISTORY_LENGTHS[:3], 1, 24), ([1], 1, 16)):
        q, k, v, do, cu, m = ragged(lengths, heads=heads, head_dim=dim, seed=len(lengths))
        outs = []
        for backend in ("reference", "triton"):
            qq, kk, vv = (t.clone().requires_grad_(True) for t in (q, k, v))
            o = varlen_attention(qq, kk, vv, cu, m, backend=backend)
            outs.append((o, *torch.autograd.grad(o, (qq, kk, vv), do)))
        for a, b in zip(*outs):
            worst = max(worst, (a - b).abs().max().item())
    print("max_abs_err", worst)
    sys.exit(0 if worst <= 1e-5 else 1)
""")


def test_triton_kernel_fwd_bwd_under_interpreter():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, TRITON_INTERPRET="1", PYTHONPATH=root)
    res = subprocess.run([sys.executable, "-c", SCRIPT], env=env, cwd=root, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "max_abs_err" in res.stdout
