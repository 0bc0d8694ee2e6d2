"""FSDP (`fully_shard`, the `fsdp` setting, on for the large size): sharding the model, and the
full (unsharded) states that checkpoints and the saved model hold, whatever the world size.

With `fsdp` the parameters become DTensor shards, so the optimizers are built after sharding,
checkpoints gather full states on every rank (collectives) for rank 0 to write, and a resume
loads full states into the shards. Without it these are the plain `state_dict` calls.
"""

from __future__ import annotations

import torch
from torch import nn


def shard_model(model: nn.Module) -> nn.Module:
    """fully_shard each encoder block, then the whole model (in place; returns it)."""
    from torch.distributed.fsdp import fully_shard

    for enc in (model.event_encoder, model.profile_encoder, model.history_encoder):
        for block in enc.blocks:
            fully_shard(block)
    return fully_shard(model)


def _options(gather: bool):
    from torch.distributed.checkpoint.state_dict import StateDictOptions

    # gathering: onto CPU, rank 0 keeps it (the others get {}); loading: every rank holds it
    return StateDictOptions(full_state_dict=True, cpu_offload=gather)


def model_state(model: nn.Module, sharded: bool) -> dict:
    """The full model state dict (with `sharded`: a collective, held by rank 0 only)."""
    if not sharded:
        return model.state_dict()
    from torch.distributed.checkpoint.state_dict import get_model_state_dict

    return get_model_state_dict(model, options=_options(True))


def optimizer_states(model: nn.Module, opts: list[torch.optim.Optimizer], sharded: bool) -> list[dict]:
    """Each optimizer's full state dict (with `sharded`: collectives, held by rank 0 only, keyed
    by parameter name)."""
    if not sharded:
        return [o.state_dict() for o in opts]
    from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict

    return [get_optimizer_state_dict(model, o, options=_options(True)) for o in opts]


def load_optimizer_states(model: nn.Module, opts: list[torch.optim.Optimizer], states: list[dict],
                          sharded: bool) -> None:
    """Load `optimizer_states` output (read from a checkpoint on every rank) into `opts`."""
    if not sharded:
        for o, s in zip(opts, states):
            o.load_state_dict(s)
        return
    from torch.distributed.checkpoint.state_dict import set_optimizer_state_dict

    for o, s in zip(opts, states):
        set_optimizer_state_dict(model, o, s, options=_options(False))
