"""Pretraining: masking, the masked-value loss, optimizers, checkpoints and the loop.

    pretrain(tok_dir, "run", model_size="nano", config={"max_steps": 200}, runs_root="runs")

Under `torchrun --nproc_per_node N` the same call runs DDP (gloo on CPU, NCCL on CUDA).
"""

from pragmatiq.train.config import PretrainConfig, load_pretrain_config
from pragmatiq.train.loop import pretrain
from pragmatiq.train.masking import mask_batch

__all__ = ["PretrainConfig", "load_pretrain_config", "mask_batch", "pretrain"]
