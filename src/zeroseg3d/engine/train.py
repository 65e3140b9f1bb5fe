"""Training: phase 1 CLIP-guided (teacher pseudo labels and MCFA), phase 2 self-training.

Steps are counted globally; the batches of an epoch come from a permutation seeded by
(seed, epoch), and every random choice inside a sample by (seed, epoch, frame), so a run
stopped at any checkpoint and resumed ends with the same weights as one that never stopped.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from zeroseg3d import __version__
from zeroseg3d.config import Config, config_to_yaml, save_config
from zeroseg3d.datasets.pipeline import finish_batch, widen
from zeroseg3d.engine import distributed
from zeroseg3d.engine.checkpoint import (CheckpointError, load_checkpoint, restore_rng, rng_state, save_checkpoint,
                                         text_hash)
from zeroseg3d.engine.builder import build_setup, eval_set
from zeroseg3d.engine.data import SegmentationSet, make_loader
from zeroseg3d.engine.evaluate import evaluate, predict_logits, save_metrics
from zeroseg3d.losses.method import MethodCriterion
from zeroseg3d.utils.device import autocast, grad_scaler, is_cuda, to_device
from zeroseg3d.utils.atomic import atomic_write_text
from zeroseg3d.utils.optim import adamw


def _lr_lambda(config, guided_steps: int, self_steps: int):
    """Warm-up and cosine decay over the CLIP-guided phase, then again over the self-training
    phase from ``train.self_lr_scale`` of the learning rate: self-training learns from new
    labels and needs a learning rate to learn them with."""
    from zeroseg3d.utils.schedule import warmup_cosine

    def factor(step: int) -> float:
        if step < guided_steps or self_steps == 0:
            return warmup_cosine(step, guided_steps, config.train.warmup_steps)
        return config.train.self_lr_scale * warmup_cosine(step - guided_steps, self_steps, config.train.warmup_steps)

    return factor


@torch.no_grad()
def relabel(model, text: torch.Tensor, dataset: SegmentationSet, device: str, config,
            progress: bool = True) -> dict[str, np.ndarray]:
    """The student's own labels for unlabelled points of the whole scan: where its prediction
    is an unseen class, kept for the most confident ``self_top_fraction`` of each class's
    points and above ``self_threshold``. (Taking the most likely unseen class of every
    unlabelled point instead would label points the student itself calls a seen class.)"""
    from tqdm import tqdm

    unseen = np.array(dataset.split.unseen)
    if len(unseen) == 0:
        return {}
    candidates = []
    was_training = model.training
    model.eval()
    try:
        for index in tqdm(range(len(dataset)), desc="self-labelling", unit="frame", leave=False,
                          disable=not progress):
            sample = dataset.points_only(index)
            probs = predict_logits(model, text, sample, device, config.train.precision).softmax(dim=1).numpy()
            best = probs.argmax(1)
            confidence = probs[np.arange(len(best)), best]
            candidate = (sample.labels < 0) & np.isin(best, unseen)
            candidates.append((sample.frame_id, candidate, best, confidence))
    finally:
        model.train(was_training)
    cut = np.full(len(dataset.frames.vocabulary.names), np.inf)   # per class: the confidence to reach
    for c in unseen:
        values = np.concatenate([conf[(lab == c) & mask] for _, mask, lab, conf in candidates])
        cut[c] = np.quantile(values, 1 - config.train.self_top_fraction) if len(values) else np.inf
    labels = {}
    for frame_id, mask, label, confidence in candidates:
        threshold = np.maximum(cut[label], config.train.self_threshold)
        keep = mask & (confidence >= threshold)
        labels[frame_id] = np.where(keep, label, -1).astype(np.int16)
    return labels


class Trainer:
    def __init__(self, config: Config, run_dir: str | Path, progress: bool = True):
        self.config = config
        self.run_dir = Path(run_dir)
        self.progress = progress
        if config.train.threads > 0:
            torch.set_num_threads(config.train.threads)
        # Subnormal floats are many times slower on the CPU and too small to change a result;
        # flushing them gave 1.07-1.36x per training step in the demo (docs/results.md)
        torch.set_flush_denormal(True)
        self.setup = build_setup(config, progress=progress)
        s = self.setup
        self.device = s.device
        self.rank, self.world = distributed.init_from_env(self.device)
        # DDP averages gradients over processes; train.batch_size is per process
        self.model = s.model
        if self.world > 1:
            self.model = torch.nn.parallel.DistributedDataParallel(
                s.model, device_ids=[torch.cuda.current_device()] if is_cuda(self.device) else None)
        self.names = s.train_set.frames.vocabulary.names
        num_classes = len(self.names)
        self.seen = torch.zeros(num_classes, dtype=torch.bool)
        self.seen[list(s.split.seen)] = True
        self.unseen = ~self.seen
        self.generator = torch.Generator().manual_seed(config.run.seed)
        self.batches_per_epoch = len(self.epoch_batches(0))
        self.total_epochs = config.train.epochs_guided + config.train.epochs_self
        accum = max(1, config.train.grad_accum)
        guided_steps = self.batches_per_epoch * config.train.epochs_guided // accum
        self.total_steps = self.batches_per_epoch * self.total_epochs // accum
        self.optimizer = adamw(s.model.parameters(), config.train.lr, config.train.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, _lr_lambda(config, guided_steps, self.total_steps - guided_steps))
        # not in checkpoints: a resumed run starts from the default scale and finds its own in a few steps
        self.scaler = grad_scaler(self.device, config.train.precision)
        self.ema = None
        if config.train.ema_decay > 0:
            from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

            self.ema = AveragedModel(s.model, multi_avg_fn=get_ema_multi_avg_fn(config.train.ema_decay),
                                     use_buffers=True)
        self.step = 0          # optimizer steps
        self.batch_index = 0   # batches seen in total
        self.history: list[dict] = []
        self.writer = None

    @property
    def eval_model(self):
        """The weights to predict with: the moving average when train.ema_decay > 0."""
        return self.setup.model if self.ema is None else self.ema.module

    # -- checkpoints ----------------------------------------------------------------------
    def state(self) -> dict:
        s = self.setup
        extra = {} if self.ema is None else {"trained_model": s.model.state_dict(), "ema": self.ema.state_dict()}
        return {
            **extra, "model": self.eval_model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(), "step": self.step, "batch_index": self.batch_index,
            "epoch": self.batch_index // self.batches_per_epoch, "phase": self.phase_of(self.batch_index // self.batches_per_epoch),
            "rng": rng_state(self.generator), "config": config_to_yaml(self.config), "version": __version__,
            "vocabulary": self.names, "text_embeddings": s.text, "text_hash": text_hash(s.text, self.names),
            "embed_dim": int(s.text.shape[1]), "teacher_key": s.teacher_key,
            "teacher_identity": s.teacher_identity,
            # relative: the project folder may move as a whole (engine.predict resolves with it)
            "workdir_from_run": os.path.relpath(Path.cwd(), self.run_dir.resolve()),
            "history": json.dumps(self.history),
            "self_labels": {k: torch.from_numpy(v) for k, v in s.train_set.self_labels.items()},
        }

    def save(self, name: str) -> Path | None:
        """Rank 0 writes; the others wait for it."""
        path = None
        if self.rank == 0:
            path = save_checkpoint(self.run_dir / "checkpoints" / name, self.state())
        distributed.barrier()
        return path

    def resume(self, path: str | Path) -> None:
        state = load_checkpoint(path)
        s = self.setup
        if state["text_hash"] != text_hash(s.text, self.names):
            raise CheckpointError(f"{path}: trained with another vocabulary or teacher text embeddings")
        if (self.ema is None) != ("ema" not in state):
            raise CheckpointError(f"{path}: train.ema_decay differs from the run it continues")
        s.model.load_state_dict(state["model"] if self.ema is None else state["trained_model"])
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.step, self.batch_index = state["step"], state["batch_index"]
        self.history = json.loads(state["history"])
        s.train_set.self_labels = {k: v.numpy() for k, v in state["self_labels"].items()}
        restore_rng(state["rng"], self.generator)

    # -- the loop ---------------------------------------------------------------------------
    def phase_of(self, epoch: int) -> str:
        return "guided" if epoch < self.config.train.epochs_guided else "self"

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        """This process's batches of an epoch: every process draws the same permutation and
        takes every world-th batch (the same count on each, as DDP needs)."""
        order = torch.randperm(len(self.setup.train_set),
                               generator=torch.Generator().manual_seed(self.config.run.seed * 100003 + epoch))
        size = self.config.train.batch_size
        # whole batches only: a short last batch is a noisier gradient step at full learning rate
        whole = len(order) - len(order) % size if len(order) >= size else len(order)
        batches = [order[i:i + size].tolist() for i in range(0, whole, size)]
        if len(batches) < self.world:
            from zeroseg3d.errors import ConfigError

            raise ConfigError(f"{len(batches)} batches per epoch cannot feed {self.world} processes; "
                              "lower train.batch_size")
        usable = len(batches) - len(batches) % self.world
        return batches[:usable][self.rank::self.world]

    def _log(self, record: dict) -> None:
        self.history.append(record)
        if self.rank > 0:
            return
        if self.writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(self.run_dir / "tensorboard"))
        for key, value in record.items():
            if key not in ("step", "epoch", "phase"):
                self.writer.add_scalar(key, value, record["step"])

    def train(self, stop_after_batches: int | None = None) -> None:
        """Run to the end (or stop after ``stop_after_batches`` more batches, for tests)."""
        from tqdm import tqdm

        cfg = self.config.train
        s = self.setup
        model, text = self.model, s.text.to(self.device)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if self.rank == 0:
            save_config(self.config, self.run_dir)
        model.train()
        done_now = 0
        bar = tqdm(total=self.batches_per_epoch * self.total_epochs, initial=self.batch_index, desc="train",
                   unit="batch", disable=not self.progress or self.rank > 0)
        start_epoch = self.batch_index // self.batches_per_epoch
        running: dict[str, torch.Tensor] = {}   # loss sums since the last log line, and their batch counts
        counts: dict[str, int] = {}
        for epoch in range(start_epoch, self.total_epochs):
            phase = self.phase_of(epoch)
            self_epoch = epoch - cfg.epochs_guided
            first_batch = self.batch_index - epoch * self.batches_per_epoch
            if phase == "self" and self_epoch % max(1, cfg.self_every) == 0 and first_batch == 0:
                s.train_set.self_labels = relabel(self.eval_model, text, s.train_set, self.device, self.config,
                                                  self.progress and self.rank == 0)
            criterion = MethodCriterion(self.config.loss, self.seen, self.unseen, phase, self.generator)
            s.train_set.set_epoch(epoch)
            batches = self.epoch_batches(epoch)[first_batch:]
            loader = make_loader(s.train_set, batches, cfg.num_workers, self.device)
            for batch in loader:
                batch = finish_batch(widen(to_device(batch, self.device)))
                with autocast(self.device, cfg.precision):
                    out = model(batch, text, criterion)
                self.scaler.scale(out["loss"] / cfg.grad_accum).backward()
                self.batch_index += 1
                if self.batch_index % cfg.grad_accum == 0:
                    self.scaler.step(self.optimizer)
                    self.scaler.update()
                    self.optimizer.zero_grad(set_to_none=True)
                    self.scheduler.step()
                    self.step += 1
                    if self.ema is not None:
                        self.ema.update_parameters(s.model)
                # summed on the device; one all-reduce and one host sync per log line, not per step
                for key, value in out.items():
                    if key.startswith("loss"):
                        running[key] = running.get(key, 0.0) + value.detach().float()
                        counts[key] = counts.get(key, 0) + 1
                bar.update()
                if self.batch_index % cfg.log_every == 0:
                    names = sorted(running)
                    totals = distributed.all_reduce_sum(torch.stack([running[k] for k in names])) / self.world
                    # each key over the batches it was summed over (a log line may span an epoch's end)
                    record = {k: float(v) / counts[k] for k, v in zip(names, totals.cpu())}
                    record.update(step=self.step, epoch=epoch, phase=phase, lr=self.scheduler.get_last_lr()[0])
                    self._log(record)
                    bar.set_postfix(loss=f"{record.get('loss', 0):.3f}", phase=phase)
                    running, counts = {}, {}
                if cfg.checkpoint_every and self.batch_index % cfg.checkpoint_every == 0:
                    self.save("last.pt")
                done_now += 1
                if stop_after_batches is not None and done_now >= stop_after_batches:
                    self.save("last.pt")
                    bar.close()
                    return
            if epoch + 1 == cfg.epochs_guided or epoch + 1 == self.total_epochs:
                self.save(f"{phase}.pt")
                self.save("last.pt")
        bar.close()
        if self.writer is not None:
            self.writer.close()


def run_training(config: Config, run_dir: str | Path, resume: str | Path | None = None,
                 progress: bool = True) -> dict:
    """Stage: train, then evaluate on the validation split when one is configured; writes
    run_dir/{config.yaml, checkpoints/ (last.pt: the final model), tensorboard/, history.json,
    metrics.json}. ``resume``: a checkpoint to go on from, or ``"auto"``: the run's own last.pt
    when there is one. Returns train_seconds, steps, checkpoint (last.pt) and the metrics."""
    run_dir = Path(run_dir)
    if resume == "auto":
        last = run_dir / "checkpoints" / "last.pt"
        resume = last if last.is_file() else None
    # the validation frames are opened first: a split that is not there is said before training
    validation = eval_set(config, config.run.eval_split) if config.run.eval_split else None
    trainer = Trainer(config, run_dir, progress)
    if resume:
        trainer.resume(resume)
    start = time.time()
    trainer.train()
    result = {"train_seconds": round(time.time() - start, 1), "steps": trainer.step,
              "checkpoint": run_dir / "checkpoints" / "last.pt"}
    if trainer.rank == 0:
        atomic_write_text(run_dir / "history.json", json.dumps(trainer.history))
    if validation is not None:
        metrics = evaluate(trainer.eval_model, trainer.setup.text, validation, trainer.setup.split, trainer.device,
                           progress, config.train.precision)
        if trainer.rank == 0:
            save_metrics(metrics, run_dir)
        result["metrics"] = metrics
    distributed.barrier()
    return result
