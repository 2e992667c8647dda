"""One training loop for teacher training and for distillation with any ``create_loss`` method.

Per batch and per training scale (``cfg.train_sizes(epoch)``, published 0.75/1/1.25): resize images and
masks (bilinear, ``align_corners=True`` as published), student forward, frozen teacher forward under
``torch.no_grad`` (its outputs are targets only), loss, backward, non-finite guard, clipping, one
AdamW step, learning rate of the next step. Each epoch ends with validation (threshold-averaged mean
Dice on the held-out split of TrainDataset), ``last.pt`` and, when improved, ``best.pt``.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from kdas_lab.config import Config
from kdas_lab.data.views import apply_views, draw_views
from kdas_lab.evaluation.inference import predict_probs
from kdas_lab.metrics import mean_dice
from kdas_lab.models import read_checkpoint, save_checkpoint
from kdas_lab.store.fingerprint import Fingerprint
from kdas_lab.train import builders, numerics
from kdas_lab.train.budget import out_of_time
from kdas_lab.train.compiled import CompileGuard
from kdas_lab.train.device_data import DeviceData
from kdas_lab.train.distributed import DistInfo, all_reduce_mean_, barrier
from kdas_lab.train.history import EpochMeter, History
from kdas_lab.train.precision import amp_dtype, autocast, float32_outputs, memory_format
from kdas_lab.train.schedule import apply_lr, lr_at
from kdas_lab.train.state import capture_rng, restore_rng
from kdas_lab.train.teacher_outputs import LiveTeacher, TeacherOutputs
from kdas_lab.train.term_grads import term_gradient_norms

__all__ = ["Trainer", "TrainResult", "amp_dtype", "float32_outputs"]  # the last two: kdas_lab.train.precision


class TrainResult(NamedTuple):
    best_checkpoint: Path
    last_checkpoint: Path
    history: pd.DataFrame  # one row per epoch
    model: torch.nn.Module  # holds the best checkpoint's weights


class Trainer:
    """Trains ``student`` on the batches of ``loaders`` (built by the caller, usually
    :func:`~kdas_lab.train.builders.build_loaders`) with ``loss``, optionally from a frozen ``teacher``.

    The parts of a run are built by the caller too (:func:`kdas_lab.train.parts.build_parts`) and only
    used here: ``teacher_outputs`` (None: the live ``teacher`` under no_grad when a loss term reads it),
    ``device_data`` (None: batches from the DataLoader), ``compile_guard`` (None: eager). ``teacher``
    itself is read for the loss's own parameters and state (and the default live forward).
    ``fingerprint`` and ``provenance`` are written into every checkpoint.
    """

    def __init__(self, cfg: Config, *, out_dir, student: torch.nn.Module, loss: torch.nn.Module,
                 device: torch.device, loaders: builders.Loaders, teacher: torch.nn.Module | None = None,
                 info: DistInfo = DistInfo(), show_progress: bool = True, fingerprint: Fingerprint | None = None,
                 provenance: dict | None = None, teacher_outputs: TeacherOutputs | None = None,
                 device_data: DeviceData | None = None, compile_guard: CompileGuard | None = None):
        self.cfg, self.out_dir, self.device, self.info = cfg, Path(out_dir), device, info
        self.fingerprint = fingerprint  # what made this run (kdas_lab.store), recorded in every checkpoint
        self.provenance = provenance  # how the course made it (kdas_lab.course), recorded beside the fingerprint
        self.model, self.teacher, self.loss = student.to(device), teacher, loss.to(device)
        self.memory_format = memory_format(cfg)
        if cfg.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.net = self.model  # what the training forward calls (DDP wrapper under torchrun)
        if info.enabled:
            ids = [device.index] if device.type == "cuda" else None
            self.net = torch.nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        self.compile_guard = compile_guard if compile_guard is not None else CompileGuard.eager()
        self.net = self.compile_guard.wrap(self.net)  # compiled forward when the guard is active
        self.loss_params = builders.own_loss_parameters(loss, self.model, teacher)
        self.params = [p for p in self.model.parameters() if p.requires_grad] + self.loss_params
        self.named = [(f"student.{n}", p) for n, p in self.model.named_parameters() if p.requires_grad]
        self.named += [(f"loss.{i}", p) for i, p in enumerate(self.loss_params)]
        self.optimizer = builders.build_optimizer(cfg, self.params, device)
        self.amp_dtype = amp_dtype(cfg, device)
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.amp_dtype == torch.float16)
        self.n_scales = len(cfg.multiscale)  # optimizer steps per batch
        self.distilling = builders.is_distilling(teacher, loss)
        self.train_loader, self.val_loader, self.generator, self.sampler, labelled = loaders
        # label-scarce distillation: the stems whose masks the segmentation loss may read
        self.labelled = set(labelled) if self.distilling and cfg.labelled_fraction < 1.0 else None
        self.steps_per_epoch = len(self.train_loader)
        if cfg.max_steps_per_epoch:
            self.steps_per_epoch = min(self.steps_per_epoch, cfg.max_steps_per_epoch)
        self.total_steps = max(1, cfg.epochs * self.steps_per_epoch * self.n_scales)
        self.term_grad_every = cfg.log_term_grads_every  # 0 = off; else one extra backward per term
        self.warmup_steps = int(round(cfg.warmup_epochs * self.steps_per_epoch * self.n_scales))
        self.step, self.start_epoch = 0, 1
        self.best_val, self.best_epoch = -1.0, 0
        self.history = History()
        self.show_progress = show_progress and info.is_main
        # finite augmentation: each sample shown as one of 8 dihedral views drawn from self.generator
        self.dihedral = cfg.augment and cfg.augment_mode == "dihedral"
        if teacher_outputs is None and self.distilling:
            teacher_outputs = LiveTeacher(teacher)
        self.teacher_outputs = teacher_outputs if self.distilling else None  # a teacher no loss term reads is not run
        self.device_data = device_data  # None: batches come from the DataLoader

    # ------------------------------------------------------------------ one optimizer step
    def _autocast(self):
        return autocast(self.device, self.amp_dtype)

    def train_step(self, images: torch.Tensor, masks: torch.Tensor, size: int, epoch: int,
                   labelled: torch.Tensor | None = None, keys: tuple | None = None) -> dict[str, float]:
        """One optimizer step at one scale; returns the loss components as floats.

        ``labelled`` (bool ``(B,)``, label-scarce distillation): which samples' masks the loss may use.
        ``keys`` ``(stems, views or None)``: passed to ``teacher_outputs`` (a teacher cache reads its maps by them).
        """
        if images.shape[-1] != size or images.shape[-2] != size:
            images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=True)  # (B, 3, s, s)
            masks = F.interpolate(masks, size=(size, size), mode="bilinear", align_corners=True)  # (B, 1, s, s)
        images = images.contiguous(memory_format=self.memory_format)
        lr = lr_at(self.step, self.total_steps, self.cfg.lr, self.cfg.lr_schedule, self.warmup_steps)
        apply_lr(self.optimizer, lr)
        out, grad_norms = self.compile_guard.run(  # static shapes: one graph per (scale, batch size)
            (size, images.shape[0]), lambda: self._forward_backward(images, masks, size, labelled, keys))
        if self.loss_params:
            all_reduce_mean_([p.grad for p in self.loss_params if p.grad is not None], self.info)
        self.scaler.unscale_(self.optimizer)
        components = {"total": float(out.total.detach())}
        components.update({k: float(v) for k, v in out.components.items()})
        where = f"epoch {epoch}, step {self.step} (size {size})"
        bad = numerics.nonfinite_names((n, p.grad) for n, p in self.named)
        if bad and not self.scaler.is_enabled():
            raise numerics.NonFiniteError(numerics.describe("gradient", bad, components, where) + self._kept())
        numerics.clip_gradients(self.params, self.cfg.clip_mode, self.cfg.clip_value)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        bad = numerics.nonfinite_names(self.named)
        if bad:
            raise numerics.NonFiniteError(numerics.describe("parameter", bad, components, where) + self._kept())
        self.history.add_step({"epoch": epoch, "step": self.step, "size": size, "lr": lr,
                               **{f"loss_{k}": v for k, v in components.items()}, **grad_norms})
        self.step += 1
        return components

    def _forward_backward(self, images, masks, size, labelled, keys):
        """Zeroed gradients, student forward, the teacher's outputs, loss, backward; returns ``(loss
        output, grad norms)`` (rerun from the start by the compile guard after a compile failure)."""
        self.optimizer.zero_grad(set_to_none=True)
        with self._autocast():
            student_out = self.net(images)
            teacher_out = None
            if self.teacher_outputs is not None:
                teacher_out = self.teacher_outputs(images, keys, size)  # e.g. p1, p2 (B, 1, s, s)
        kwargs = {} if labelled is None else {"labelled": labelled}
        student_out, teacher_out = float32_outputs(student_out), float32_outputs(teacher_out)
        out = self.loss(student_out, teacher_out, masks, **kwargs)
        grad_norms = {}
        if self.term_grad_every and self.step % self.term_grad_every == 0 and hasattr(self.loss, "weighted_terms"):
            terms = self.loss.weighted_terms(student_out, teacher_out, masks, **kwargs)
            grad_norms = {f"gradnorm_{k}": v for k, v in term_gradient_norms(terms, self.params).items()}
        self.scaler.scale(out.total).backward()
        return out, grad_norms

    def _kept(self) -> str:
        last = self.out_dir / "last.pt"
        return (f"; stopped, the last good checkpoint is {last}" if last.exists()
                else "; stopped before any checkpoint was written")

    # ------------------------------------------------------------------ epoch, validation
    def train_epoch(self, epoch: int) -> dict[str, float]:
        self.model.train()
        if hasattr(self.sampler, "set_epoch"):  # DistributedSampler
            self.sampler.set_epoch(epoch)
        meter = EpochMeter()
        bar = tqdm(total=self.steps_per_epoch * self.n_scales, desc=f"epoch {epoch}/{self.cfg.epochs}",
                   disable=not self.show_progress, leave=False)
        self.epoch_images = 0  # images trained on this epoch, summed over the scales (for images/s)
        batches = self.device_data.epoch(self.train_loader) if self.device_data is not None else self.train_loader
        sizes = self.cfg.train_sizes(epoch)  # progressive resizing: this epoch's scales
        for i, batch in enumerate(batches):
            if i >= self.steps_per_epoch:
                break
            images = batch["image"].to(self.device, non_blocking=True)  # (B, 3, S, S)
            masks = batch["mask"].to(self.device, non_blocking=True)  # (B, 1, S, S)
            views = None
            if self.dihedral:
                views = draw_views(images.shape[0], self.generator)  # (B,)
                images, masks = apply_views(images, views), apply_views(masks, views)  # (B, C, S, S)
            keys = (batch["stem"], views)  # what a teacher cache reads its maps by
            labelled = None
            if self.labelled is not None:
                labelled = torch.tensor([s in self.labelled for s in batch["stem"]], device=self.device)  # (B,)
            for size in sizes:
                comps = self.train_step(images, masks, size, epoch, labelled, keys)
                self.epoch_images += images.shape[0]
                meter.update(comps)
                bar.set_postfix(loss=f"{comps['total']:.4f}")
                bar.update(1)
        bar.close()
        return meter.means()

    @torch.no_grad()
    def validate(self) -> float:
        """Threshold-averaged mean Dice on the validation split at the training size (NaN if empty)."""
        if self.val_loader is None:
            return float("nan")

        preds, gts = [], []
        with self._autocast():
            for batch in self.val_loader:
                images = batch["image"].to(self.device).contiguous(memory_format=self.memory_format)
                probs = predict_probs(self.model, images).float()  # (B, 1, S, S)
                preds += list(probs[:, 0].cpu().numpy())
                gts += list((batch["mask"][:, 0] > 0.5).numpy())
        self.model.train()
        return float(mean_dice(preds, gts))

    # ------------------------------------------------------------------ checkpoints
    def _save(self, path: Path, epoch: int, val: float, full: bool) -> None:
        extra: dict[str, Any] = {"method": self.cfg.method, "step": self.step, "world_size": self.info.world_size}
        if self.fingerprint is not None:
            extra["fingerprint"] = self.fingerprint.to_dict()
        if self.provenance:  # how the course made this run (kdas_lab.course)
            extra["provenance"] = self.provenance
        if full:
            extra.update(optimizer=self.optimizer.state_dict(), scaler=self.scaler.state_dict(),
                         scheduler={"step": self.step, "total_steps": self.total_steps},
                         rng=capture_rng(self.generator), history=self.history.to_state(),
                         loss_state=builders.loss_state_dict(self.loss, self.model, self.teacher),
                         best={"val_meanDic": self.best_val, "epoch": self.best_epoch})
        save_checkpoint(path, self.model, config=self.cfg.to_dict(), epoch=epoch,
                        metrics={"val_meanDic": val}, **extra)

    def resume(self) -> None:
        path = self.out_dir / "last.pt"
        if not path.is_file():
            raise FileNotFoundError(f"--resume: {path} does not exist (nothing to resume in {self.out_dir})")
        ckpt = read_checkpoint(path)
        for key in ("optimizer", "rng", "history", "step", "epoch", "best"):
            if key not in ckpt:
                raise KeyError(f"{path}: not a resumable checkpoint (missing {key!r})")
        if ckpt.get("model_name") != getattr(self.model, "name", None) or ckpt.get("method") != self.cfg.method:
            raise ValueError(f"{path}: holds {ckpt.get('model_name')} / method {ckpt.get('method')}, "
                             f"but this run trains {getattr(self.model, 'name', '?')} / {self.cfg.method}")
        self.model.load_state_dict(ckpt["state_dict"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scaler.load_state_dict(ckpt.get("scaler") or {})
        builders.load_loss_state(self.loss, ckpt.get("loss_state", {}), self.model, self.teacher, source=str(path))
        self.step, self.start_epoch = int(ckpt["step"]), int(ckpt["epoch"]) + 1
        self.best_val, self.best_epoch = float(ckpt["best"]["val_meanDic"]), int(ckpt["best"]["epoch"])
        self.history = History.from_state(ckpt["history"])
        restore_rng(ckpt["rng"], self.generator)

    # ------------------------------------------------------------------ the run
    def fit(self, resume: bool = False, stop_after: int | None = None) -> TrainResult:
        """Train up to ``cfg.epochs``; ``stop_after=k`` ends after epoch k as if interrupted (the
        schedule still spans ``cfg.epochs``), so a later ``resume=True`` run continues it."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        if resume:
            self.resume()
        last, best = self.out_dir / "last.pt", self.out_dir / "best.pt"
        last_epoch = self.cfg.epochs if stop_after is None else min(stop_after, self.cfg.epochs)
        fit_start = time.perf_counter()
        for epoch in range(self.start_epoch, last_epoch + 1):
            t0 = time.perf_counter()
            means = self.train_epoch(epoch)
            train_time = time.perf_counter() - t0
            val = self.validate()
            no_val = bool(np.isnan(val))  # no validation split: the latest epoch counts as best
            improved = no_val or val > self.best_val
            if improved:
                self.best_val, self.best_epoch = (self.best_val if no_val else val), epoch
            row = {"epoch": epoch, "step": self.step, "lr": self.optimizer.param_groups[0]["lr"],
                   **{f"loss_{k}": v for k, v in means.items()}, "val_meanDic": val,
                   "time": time.perf_counter() - t0, "train_time": train_time,
                   "images_per_s": self.epoch_images / max(train_time, 1e-9)}
            self.history.add_epoch(row)
            if self.info.is_main:
                if improved:
                    self._save(best, epoch, val, full=False)
                self._save(last, epoch, val, full=True)
                self.history.save(self.out_dir)
                if self.show_progress:
                    tqdm.write(f"epoch {epoch}: loss {means.get('total', float('nan')):.4f} "
                               f"val_meanDic {val:.4f}{' (best)' if improved else ''}")
            barrier(self.info)
            if out_of_time(self.cfg.time_budget_s, fit_start, row["time"], epoch, last_epoch, self.info, self.device):
                break
        if not best.exists():
            raise RuntimeError(f"{self.out_dir}: no epoch was trained (epochs={self.cfg.epochs}, "
                               f"resumed at epoch {self.start_epoch})")

        self.model.load_state_dict(read_checkpoint(best)["state_dict"])
        return TrainResult(best, last, self.history.epochs, self.model)
