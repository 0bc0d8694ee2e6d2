"""SageMaker training entry point (the tutorial's src/train.py).

SageMaker's PyTorch container pip-installs requirements.txt, then runs this file (under
torchrun on every host/GPU when `sagemaker_torch_distributed_enabled` is set). The `data`
channel is mounted at SM_CHANNEL_DATA; everything written to SM_MODEL_DIR is tarred to
S3 as model.tar.gz. Checkpoints under /opt/ml/checkpoints are synced with the job's
CheckpointConfig S3 URI, so a spot interruption resumes from the last one.

The tutorial's values are the defaults; PRAGMATIQ_MAX_STEPS, PRAGMATIQ_MODEL_SIZE and
PRAGMATIQ_TOK_DIR override them (the tests run this file small, as a job would run it).
"""

import os

from pragmatiq import api

data = os.environ["SM_CHANNEL_DATA"]
out = os.environ["SM_MODEL_DIR"]
steps = int(os.environ.get("PRAGMATIQ_MAX_STEPS", "4000"))
tok = os.environ.get("PRAGMATIQ_TOK_DIR", "/tmp/tok")

api.tokenize(data, tok, n_workers=max(1, (os.cpu_count() or 2) // 2))
api.pretrain(tok, "run", model_size=os.environ.get("PRAGMATIQ_MODEL_SIZE", "small"),
             config={"max_steps": steps, "token_budget": 16384}, runs_root=out)
