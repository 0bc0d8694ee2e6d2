"""The pretraining loop: one code path for 1 process, `torchrun` (DDP) and SageMaker.

Run directory `runs_root/name/`: config.yaml, vocab.json, checkpoints/{last.pt, step-N.pt},
model.safetensors + model.json (serving weights, no pickle), metrics.jsonl, meta.json.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import signal
import sys
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import yaml

import pragmatiq
from pragmatiq._hardware import make_current
from pragmatiq._threads import cpu_workers
from pragmatiq.tokenizer.crop import crop_row
from pragmatiq.train.checks import check_crop_budget, check_model, check_run_name, check_token_dir
from pragmatiq.train.checkpoint import (copy_checkpoint, load_checkpoint, rng_state, rotate, save_checkpoint,
                                       set_rng_state)
from pragmatiq.train.config import PretrainConfig, load_pretrain_config
from pragmatiq.train.fused_ce import head_dtype
from pragmatiq.train.loss import mlm_loss_sum
from pragmatiq.train.masking import mask_batch, step_generator
from pragmatiq.train.optim import build_optimizers, build_schedulers
from pragmatiq.train.sharding import load_optimizer_states, model_state, optimizer_states, shard_model
from pragmatiq.zoo.text_encoder import load_text_encoder, with_text_vectors


def process_group_backend(device: torch.device) -> str:
    """gloo on CPU; on CUDA, NCCL for the model's tensors and gloo for the CPU tensors the loop
    reduces every step (masked counts, statistics, the stop flag): NCCL alone has no CPU path."""
    return "cpu:gloo,cuda:nccl" if device.type == "cuda" else "gloo"


CLOSE_TIMEOUT_S = 60.0  # a process group's close, after every rank has passed the final barrier


class _Dist:
    """Process-group facts; a single process when not launched by torchrun."""

    def __init__(self, device: torch.device):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.enabled = self.world > 1
        self.owned = self.enabled and not dist.is_initialized()  # the group is ours to close
        if self.owned:
            make_current(device)  # this rank's GPU for NCCL (and all_gather_object)
            dist.init_process_group(process_group_backend(device))

    def close(self) -> None:
        """Wait for every rank, then close the group if this run opened it (a rank that exits while
        the backend's threads still run can abort at exit). The close itself is bounded: it has
        been seen to hang (once in CI, gloo on CPU, after the barrier; cf. pytorch#75097), and a
        finished run must not hang its job, so after CLOSE_TIMEOUT_S it warns and goes on."""
        if self.enabled:
            dist.barrier()
        if not self.owned:
            return
        import threading

        closer = threading.Thread(target=dist.destroy_process_group, name="pragmatiq-close-group", daemon=True)
        closer.start()
        closer.join(CLOSE_TIMEOUT_S)
        if closer.is_alive():
            print(f"pretrain: rank {self.rank}: the process group did not close within {CLOSE_TIMEOUT_S:g} s "
                  "(the run and its checkpoint are complete); exiting without waiting for it", file=sys.stderr)

    def sum(self, x: torch.Tensor) -> torch.Tensor:
        if self.enabled:
            dist.all_reduce(x)
        return x


def _device() -> torch.device:
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")


@contextmanager
def _checkpoint_dir(run_dir: Path):
    """-> (where checkpoints go, whether a later run can resume from them), for the run.

    SageMaker managed spot training syncs /opt/ml/checkpoints; PRAGMATIQ_CHECKPOINT_DIR wins.
    Without either, a run inside SageMaker's model directory (SM_MODEL_DIR, tarred for serving)
    keeps its checkpoints, optimizer states and all, in a temporary directory removed when the
    run ends: a job without a checkpoint configuration is never restarted, so nothing could
    resume from them."""
    if env := os.environ.get("PRAGMATIQ_CHECKPOINT_DIR"):
        yield Path(env), True
    elif Path("/opt/ml/checkpoints").is_dir():
        yield Path("/opt/ml/checkpoints"), True
    elif (model_dir := os.environ.get("SM_MODEL_DIR")) and Path(model_dir).resolve() in Path(run_dir).resolve().parents:
        import tempfile

        with tempfile.TemporaryDirectory(prefix="pragmatiq-checkpoints-") as scratch:
            yield Path(scratch), False
    else:
        yield run_dir / "checkpoints", True


def _split_users(n: int, eval_users: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded held-out set of users (at most 5% of them) and the training users."""
    k = min(eval_users, n // 20)
    perm = np.random.default_rng([seed, 7]).permutation(n)
    return np.sort(perm[k:]), np.sort(perm[:k])


def _costs(ds, users: np.ndarray, cfg: PretrainConfig) -> np.ndarray:
    """(U,) the users' batch costs: their token counts, at most the budget with `crop_to_budget`."""
    costs = ds.lengths[users]
    return np.minimum(costs, cfg.token_budget) if cfg.crop_to_budget else costs


def _read_rows(ds, users: np.ndarray, cfg: PretrainConfig) -> list[dict]:
    rows = ds.read(users)
    return [crop_row(r, cfg.token_budget) for r in rows] if cfg.crop_to_budget else rows


class TrainingOutOfMemoryError(torch.OutOfMemoryError):
    """A training step ran out of accelerator memory; the message says what to change (still a
    torch.OutOfMemoryError to code that catches those)."""


def _out_of_memory(exc: BaseException, step: int, batches, cfg: PretrainConfig) -> TrainingOutOfMemoryError:
    tokens, users = sum(b.n_tokens for b in batches), sum(b.n_users for b in batches)
    longest = max((b.n_tokens for b in batches if b.n_users == 1), default=0)
    first_line = (str(exc).splitlines() or [""])[0]
    alone = (f"; it holds one user of {longest:,} tokens, more than the budget: `crop_to_budget: true` trains "
             f"such users on their newest events within it" if longest > cfg.token_budget else "")
    who = f"{users} user{'s' * (users != 1)}"
    return TrainingOutOfMemoryError(
        f"out of memory at step {step + 1} on a batch of {tokens:,} tokens ({who}, token_budget "
        f"{cfg.token_budget:,}){alone}. Lower token_budget (--token-budget; grad_accum keeps the step's "
        f"size), or use more devices (torchrun; fsdp: true). {first_line}".strip())


def _check_same_run(path: Path, state: dict, name: str, model_size: str) -> None:
    """A checkpoint directory set for the whole machine (PRAGMATIQ_CHECKPOINT_DIR,
    /opt/ml/checkpoints) may hold another run's last.pt: refuse to resume from it."""
    theirs = (state.get("run_name", name), state.get("model_size", model_size))
    if theirs != (name, model_size):
        raise ValueError(f"{path} is the checkpoint of run {theirs[0]!r} ({theirs[1]}), not of run {name!r} "
                         f"({model_size}): point PRAGMATIQ_CHECKPOINT_DIR at another directory, or start over "
                         "with --no-resume (resume=False), which overwrites it")


class _Stop:
    """SIGTERM (spot interruption) or a first Ctrl-C (SIGINT) asks the loop to finish its step,
    checkpoint and stop; a second Ctrl-C interrupts at once, without a checkpoint."""

    def __init__(self):
        self.signum: int | None = None  # the first stop signal received
        self._old = {}
        for sig in (signal.SIGTERM, signal.SIGINT):
            if sig == signal.SIGINT and signal.getsignal(sig) is signal.SIG_IGN:
                continue  # a background job's Ctrl-C is for the foreground: still ignored
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread: no handlers, the loop runs to its end
                break

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def _handle(self, signum, frame):
        if self.signum is None:
            self.signum = signum
        if signum == signal.SIGINT:  # the next Ctrl-C is Python's own KeyboardInterrupt
            signal.signal(signal.SIGINT, self._old[signal.SIGINT])

    def restore(self):
        for sig, old in self._old.items():
            signal.signal(sig, old)

    def reraise(self) -> None:
        """After the checkpoint: end as the signal would have (SIGTERM: terminated, status 143;
        SIGINT: KeyboardInterrupt)."""
        if self.signum == signal.SIGINT:
            raise KeyboardInterrupt
        if self.signum is not None:
            signal.raise_signal(self.signum)


@contextmanager
def _deterministic_cpu_kernels(device: torch.device):
    """On CPU, torch's deterministic kernels for the duration: the backward of index-accumulating
    ops (index_put_, scatter_add) otherwise races between intra-op threads, and two runs with
    two threads ended with different weights. The mode's NaN-filling of every `torch.empty` (a
    debugging aid: 6% of a nano step) is switched off, our code never reads memory it did not
    write. (CUDA is left alone: its deterministic mode needs CUBLAS_WORKSPACE_CONFIG.)"""
    if device.type != "cpu":
        yield
        return
    from torch.utils import deterministic

    before = (torch.are_deterministic_algorithms_enabled(),
              torch.is_deterministic_algorithms_warn_only_enabled(),
              deterministic.fill_uninitialized_memory)
    torch.use_deterministic_algorithms(True, warn_only=True)
    deterministic.fill_uninitialized_memory = False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])
        deterministic.fill_uninitialized_memory = before[2]


def pretrain(tok_dir, name: str, model_size: str = "small", config=None, runs_root="runs", *,
             resume: bool | str = "auto", progress: bool = True) -> Path:
    """Pretrain `model_size` on the token directory `tok_dir`; returns `runs_root/name`.
    Bitwise reproducible on CPU for a given thread count (seeded, deterministic kernels)."""
    check_run_name(name)
    with _deterministic_cpu_kernels(_device()), _checkpoint_dir(Path(runs_root) / name) as (ckpt_dir, kept):
        return _pretrain(tok_dir, name, model_size, config, runs_root, ckpt_dir, kept, resume=resume,
                         progress=progress)


def _pretrain(tok_dir, name: str, model_size: str, config, runs_root, ckpt_dir: Path, kept: bool, *,
              resume: bool | str, progress: bool) -> Path:
    from tqdm.auto import tqdm

    from pragmatiq.tokenizer import BatchLoader, TokenBudgetSampler, TokenDataset, collate
    from pragmatiq.zoo import create_model, save_model

    cfg = load_pretrain_config(model_size, config)
    check_model(model_size, cfg)
    device = _device()
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    dd = _Dist(device)
    run_dir = Path(runs_root) / name
    ds = TokenDataset(tok_dir)
    check_token_dir(ds, tok_dir)
    check_crop_budget(ds, cfg, tok_dir, warn=dd.rank == 0)
    last = ckpt_dir / "last.pt"
    state = None
    if resume is True and not last.exists():
        raise FileNotFoundError(f"--resume: no checkpoint at {last}")
    if resume and last.exists():
        state = load_checkpoint(last)
        _check_same_run(last, state, name, model_size)
        if state["vocab_sha256"] != ds.vocab.sha256:
            raise ValueError(f"{last} was trained with vocabulary {state['vocab_sha256'][:12]} but "
                             f"{tok_dir} holds {ds.vocab.sha256[:12]}: tokenize with --vocab {run_dir}/vocab.json")
        if not isinstance(state["rng"], list):  # a one-process checkpoint of an earlier version
            state["rng"] = [state["rng"]]
        written_by = len(state["rng"])
        if written_by != dd.world:
            raise ValueError(f"{last} was written by {written_by} process(es) and this run has {dd.world}: resume "
                             f"it with as many (torchrun --nproc_per_node {written_by}); the sampler's position "
                             "and each process's random state belong to that layout")
    if dd.rank == 0:
        run_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ds.dir / "vocab.json", run_dir / "vocab.json")
        (run_dir / "config.yaml").write_text(yaml.safe_dump(
            {"model_size": model_size, "tok_dir": str(Path(tok_dir).resolve()), **cfg.to_dict()}, sort_keys=False))

    # Nemotron-variant shards: text sentinels carry strings that the frozen encoder turns into vectors
    encoder = load_text_encoder(cfg.text_encoder, str(device)) if ds.manifest["config"].get("nemotron") else None
    texts = {"d_text": encoder.dim, "text_encoder": cfg.text_encoder} if encoder else {}
    torch.manual_seed(cfg.seed)

    def build_model():
        return create_model(model_size, vocab_size=len(ds.vocab), user_head=cfg.user_loss_weight > 0,
                            **texts, **cfg.model)

    model = build_model().to(device)
    model.event_workers = cfg.event_workers or cpu_workers(device)
    train_users, eval_users = _split_users(len(ds), cfg.eval_users, cfg.seed)
    sampler = TokenBudgetSampler(_costs(ds, train_users, cfg), cfg.token_budget, seed=cfg.seed,
                                 rank=dd.rank, world_size=dd.world)
    if state is not None:
        model.load_state_dict(state["model"])
    sharded = dd.enabled and cfg.fsdp
    if sharded:
        shard_model(model)  # before the optimizers: they must hold the sharded parameters
    opts = build_optimizers(model, cfg)
    scheds = build_schedulers(opts, cfg)
    step = 0
    if state is not None:
        load_optimizer_states(model, opts, state["optimizers"], sharded)
        for sc, s in zip(scheds, state["schedulers"]):
            sc.load_state_dict(s)
        sampler.load_state_dict(state["sampler"])
        step = state["step"]
        set_rng_state(state["rng"][dd.rank])
    net = model
    if dd.enabled and not sharded:
        net = torch.nn.parallel.DistributedDataParallel(model)
    if cfg.compile:
        net = torch.compile(net)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else None
    head = dict(label_smoothing=cfg.label_smoothing, head_workers=cfg.head_workers,
                head_dtype=head_dtype(cfg.head_precision, device))

    class _Subset:  # the training users of the dataset, for the loader
        def read(self, idx):
            return _read_rows(ds, train_users[np.asarray(idx, np.int64)], cfg)

    loader = BatchLoader(_Subset(), sampler, prefetch=cfg.prefetch)
    batches = iter(loader)

    def next_batch():
        nonlocal batches
        for _ in range(2):
            try:
                return next(batches)
            except StopIteration:
                sampler.set_epoch(sampler.epoch + 1)
                loader.load_state_dict(sampler.state_dict())
                batches = iter(loader)
        raise ValueError(f"{tok_dir}: no training batches (is the token directory empty?)")

    def save(tag_step: int) -> None:
        rngs = [None] * dd.world
        if dd.enabled:
            dist.all_gather_object(rngs, rng_state())
        else:
            rngs = [rng_state()]
        weights, moments = model_state(model, sharded), optimizer_states(model, opts, sharded)  # collectives
        if dd.rank != 0:
            return
        payload = {
            "step": tag_step, "model": weights,
            "optimizers": moments, "schedulers": [s.state_dict() for s in scheds],
            "sampler": loader.state_dict(), "rng": rngs, "vocab_sha256": ds.vocab.sha256,
            "config": cfg.to_dict(), "model_size": model_size, "run_name": name,
        }
        save_checkpoint(ckpt_dir / "last.pt", payload)
        copy_checkpoint(ckpt_dir / "last.pt", ckpt_dir / f"step-{tag_step}.pt")
        rotate(ckpt_dir, cfg.keep_checkpoints)

    metrics_path = run_dir / "metrics.jsonl"
    if dd.rank == 0 and state is None and metrics_path.exists():
        metrics_path.unlink()
    stopper = _Stop()
    end = cfg.max_steps if cfg.stop_after is None else min(cfg.stop_after, cfg.max_steps)
    bar = tqdm(total=cfg.max_steps, initial=step, desc=f"pretrain {model_size}", unit="step",
               disable=not progress or dd.rank != 0, file=sys.stderr)
    # seconds in training steps (held-out losses and checkpoints apart), event tokens of every rank
    trained_s, tokens_seen = 0.0, 0
    model.train()
    try:
        stop = False  # SIGTERM or Ctrl-C on any rank: every rank checkpoints, then stops
        while step < end and not stop:
            t0 = time.perf_counter()
            micro = [with_text_vectors(next_batch(), encoder) for _ in range(cfg.grad_accum)]
            masks = [mask_batch(b, step_generator(cfg.seed, step, m * dd.world + dd.rank),
                                token_rate=cfg.token_rate, event_rate=cfg.event_rate,
                                group_rate=cfg.group_rate, unk_share=cfg.unk_share) for m, b in enumerate(micro)]
            local = torch.tensor(float(sum(len(mk.target_index) for mk in masks)))
            total = dd.sum(local.clone()).item()
            loss_sum, user_sum, correct, step_tokens = 0.0, 0.0, 0, 0
            try:
                for b, mk in zip(micro, masks):
                    b, mk = b.to(device), mk.to(device)  # masks are drawn on the CPU batch
                    with autocast or nullcontext():
                        loss, ok, user = mlm_loss_sum(net, b, mk, text_weight=cfg.text_mse_weight,
                                                      user_weight=cfg.user_loss_weight, **head)
                    # DDP averages gradients over processes: scale so the step is the global mean
                    (loss * dd.world / max(total, 1.0)).backward()
                    # logged apart: "loss" stays the 3-view objective, comparable with heldout_loss
                    u = 0.0 if user is None else user.item()
                    user_sum += u
                    loss_sum += loss.item() - cfg.user_loss_weight * u
                    correct += int(ok)
                    step_tokens += b.n_tokens
            except torch.OutOfMemoryError as exc:
                raise _out_of_memory(exc, step, micro, cfg) from exc
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            for o in opts:
                o.step()
                o.zero_grad(set_to_none=True)
            lrs = [s.get_last_lr()[0] for s in scheds]  # the rates this step used, logged below
            for s in scheds:
                s.step()
            step += 1
            # with the rank's stop request, so all ranks agree on the step they stop at
            stats = dd.sum(torch.tensor([loss_sum, float(correct), user_sum, float(stopper.requested),
                                         float(step_tokens)], dtype=torch.float64))
            stop = bool(stats[3] > 0)
            tokens_seen += int(stats[4])  # every rank's: batches differ in size
            trained_s += time.perf_counter() - t0
            heldout = None  # on every rank: a sharded model's forward is a collective
            if cfg.eval_every and (step % cfg.eval_every == 0 or step == end) and len(eval_users):
                if step % cfg.log_every == 0 or step == end:  # logged with the step's row
                    heldout = _heldout_loss(model, ds, eval_users, cfg, device, collate, head, encoder, autocast)
            if dd.rank == 0:
                bar.update(1)
                if step % cfg.log_every == 0 or step == end:
                    row = {"step": step, "loss": stats[0].item() / max(total, 1.0),
                           "mlm_acc": stats[1].item() / max(total, 1.0), "masked": int(total),
                           "tokens_per_s": tokens_seen / max(trained_s, 1e-9), "train_s": trained_s,
                           "lr": lrs, "grad_norm": float(grad_norm)}
                    if cfg.user_loss_weight:
                        row["user_loss"] = stats[2].item() / max(total, 1.0)
                    if heldout is not None:
                        row["heldout_loss"] = heldout
                    with metrics_path.open("a") as f:
                        f.write(json.dumps(row) + "\n")
                    bar.set_postfix(loss=f"{row['loss']:.3f}", tok_s=f"{row['tokens_per_s']:.0f}")
            if step % cfg.checkpoint_every == 0 or step == end or stop:
                save(step)
    finally:
        bar.close()
        stopper.restore()
    if stop and step < end:
        if dd.rank == 0:
            why = signal.Signals(stopper.signum).name if stopper.requested else "another rank's signal"
            where = (f"checkpoint {ckpt_dir / 'last.pt'} (the same command resumes from it)" if kept else
                     "no checkpoint directory is configured (SageMaker's checkpoint_s3_uri, or "
                     "PRAGMATIQ_CHECKPOINT_DIR), so this run cannot resume")
            print(f"pretrain: stopped by {why} at step {step}/{cfg.max_steps}; {where}", file=sys.stderr)
        dd.close()
        stopper.reraise()  # this rank's own signal, held until the checkpoint was safe
        return run_dir
    weights = model_state(model, sharded) if sharded and step >= cfg.max_steps else None  # a collective
    if dd.rank == 0 and step >= cfg.max_steps:
        if sharded:  # the gathered weights, in an unsharded model
            model = build_model()
            model.load_state_dict(weights)
        model.eval()
        save_model(model, run_dir)
        (run_dir / "meta.json").write_text(json.dumps(_meta(device, dd.world, step), indent=2))
    dd.close()
    return run_dir


@torch.no_grad()
def _heldout_loss(model, ds, users, cfg: PretrainConfig, device, collate, head: dict, encoder,
                  autocast=None) -> float:
    """The masked-value loss per target on up to one budget of held-out users, at the training
    step's precision (its `autocast`)."""
    model.eval()
    # held-out users up to one micro-batch of tokens (logits are (M, V): keep M bounded)
    costs = _costs(ds, users, cfg)
    keep = users[np.cumsum(costs) <= max(cfg.token_budget, int(costs[0]))]
    batch = with_text_vectors(collate(_read_rows(ds, keep, cfg)), encoder).to(device)
    mk = mask_batch(batch, step_generator(cfg.seed, -1, 0), token_rate=cfg.token_rate,
                    event_rate=cfg.event_rate, group_rate=cfg.group_rate, unk_share=cfg.unk_share)
    with autocast or nullcontext():
        loss, _, _ = mlm_loss_sum(model, batch, mk, text_weight=cfg.text_mse_weight, **head)
    model.train()
    return loss.item() / max(len(mk.target_index), 1)


def _meta(device, world: int, step: int) -> dict:
    return {
        "pragmatiq": pragmatiq.__version__, "torch": torch.__version__, "python": platform.python_version(),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "world_size": world, "steps": step, "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
