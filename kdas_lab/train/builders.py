"""Data loaders, teacher and optimizer for the trainer (kept apart from the loop itself)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import torch
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler

from kdas_lab.config import Config
from kdas_lab.data import PolypDataset, layout, train_val_split
from kdas_lab.data.io import DataError
from kdas_lab.data.sampling import LabelledShareSampler
from kdas_lab.data.split import labelled_subset
from kdas_lab.models import load_model
from kdas_lab.train.distributed import DistInfo


def train_folder(cfg: Config) -> Path:
    """The training folder of ``cfg.data_dir``; raises naming it when its images/ or masks/ is missing."""
    folder = layout.train_folder(cfg.data_dir)
    missing = [f"{folder / sub}" for sub in ("images", "masks") if not (folder / sub).is_dir()]
    if missing:
        raise DataError(f"no {' or '.join(missing)} (PraNet layout expected; build data with "
                        "`kdas-lab data ...` or run `kdas-lab demo` for synthetic data)")
    return folder


class Loaders(NamedTuple):
    """What the trainer reads its batches from (built by the caller: :func:`build_loaders`, or any
    iterables of ``{"image", "mask", "stem"}`` batches whose ``train.dataset`` is the training set)."""

    train: DataLoader
    val: DataLoader | None
    generator: torch.Generator  # the train loader's shuffling generator (also draws dihedral views)
    sampler: object | None  # DistributedSampler under DDP, a label-scarce run's (batch) sampler, else None
    labelled: list[str]  # the stems whose masks the segmentation loss may read


def is_distilling(teacher: torch.nn.Module | None, loss: torch.nn.Module) -> bool:
    """True when a teacher is given and the loss reads it (a teacher no loss term reads is not run)."""
    return teacher is not None and getattr(loss, "needs_teacher", True)


def build_loaders(cfg: Config, info: DistInfo, device: torch.device, distilling: bool = False) -> Loaders:
    """Train loader (shuffled, seeded generator, DistributedSampler under DDP) and validation loader.

    The validation split is ``train_val_split`` of TrainDataset: test sets are never used for model
    selection. With ``cfg.labelled_fraction < 1`` only ``labelled_stems`` (a seeded subset of the
    training stems) may give masks: a distilling run still sees every training image (the trainer
    masks the segmentation loss), a teacher-free run sees the labelled images only, drawn with
    replacement to the full set's epoch length (equal steps, equal compute). A distilling run with
    ``cfg.labelled_per_batch`` draws that many labelled images into every batch
    (:class:`~kdas_lab.data.sampling.LabelledShareSampler`).
    """

    folder = train_folder(cfg)
    train_stems, val_stems = train_val_split(folder, val_fraction=cfg.val_fraction, seed=cfg.seed,
                                             by_sequence=cfg.split_by_sequence)
    labelled = labelled_subset(train_stems, cfg.labelled_fraction, cfg.seed)
    scarce_no_teacher = len(labelled) < len(train_stems) and not distilling
    if len(labelled) < len(train_stems) and info.enabled:
        raise ValueError("labelled_fraction < 1 is not supported under torchrun (DDP) yet")
    cache_dir = Path(cfg.data_dir) / ".kdas_cache" if cfg.cache else None
    # dihedral views are applied by the trainer (which records them), not by the dataset
    train_ds = PolypDataset(folder, cfg.image_size, augment=cfg.augment and cfg.augment_mode == "random",
                            stems=labelled if scarce_no_teacher else train_stems, cache_dir=cache_dir)
    generator = torch.Generator().manual_seed(cfg.seed)
    sampler, batch_sampler = None, None
    if info.enabled:
        sampler = DistributedSampler(train_ds, num_replicas=info.world_size, rank=info.rank,
                                     shuffle=True, seed=cfg.seed)
    elif scarce_no_teacher:
        sampler = RandomSampler(train_ds, replacement=True, num_samples=len(train_stems), generator=generator)
    elif cfg.labelled_per_batch is not None and len(labelled) < len(train_stems):
        is_labelled = set(labelled)
        index = {s: i for i, s in enumerate(train_ds.stems)}
        batch_sampler = sampler = LabelledShareSampler(
            [index[s] for s in labelled], [index[s] for s in train_ds.stems if s not in is_labelled],
            cfg.batch_size, cfg.labelled_per_batch, generator)
    common = dict(num_workers=cfg.num_workers, pin_memory=device.type == "cuda",
                  persistent_workers=False)
    if batch_sampler is not None:
        train_loader = DataLoader(train_ds, batch_sampler=batch_sampler, generator=generator, **common)
    else:
        train_loader = DataLoader(train_ds, batch_size=cfg.batch_size, shuffle=sampler is None, sampler=sampler,
                                  generator=generator, drop_last=cfg.drop_last, **common)
    val_loader = None
    if val_stems:
        val_ds = PolypDataset(folder, cfg.image_size, augment=False, stems=val_stems, cache_dir=cache_dir)
        val_loader = DataLoader(val_ds, batch_size=cfg.batch_size, shuffle=False, **common)
    return Loaders(train_loader, val_loader, generator, sampler, labelled)


def load_teacher(teacher, device: torch.device, channels_last: bool = False) -> torch.nn.Module | None:
    """A model, a checkpoint path, or None -> a frozen teacher in eval mode on ``device``."""
    if teacher is None:
        return None
    if isinstance(teacher, (str, os.PathLike)):
        path = Path(teacher)
        if not path.is_file():
            raise FileNotFoundError(f"teacher checkpoint {path} does not exist")
        teacher = load_model(path, device=device)
    teacher = teacher.to(device).eval().requires_grad_(False)
    if channels_last:
        teacher = teacher.to(memory_format=torch.channels_last)
    return teacher


def build_optimizer(cfg: Config, params: list[torch.nn.Parameter], device: torch.device) -> torch.optim.Optimizer:
    """AdamW on the student and loss-owned parameters; the fused kernel where torch has one."""
    fused = device.type in ("cuda", "cpu")
    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=fused)


def own_loss_parameters(loss: torch.nn.Module, *models: torch.nn.Module | None) -> list[torch.nn.Parameter]:
    """Trainable parameters that belong to the loss itself (e.g. FitNet adapters), not to the networks."""
    taken = {id(p) for m in models if m is not None for p in m.parameters()}
    seen: set[int] = set()
    out = []
    for p in loss.parameters():
        if p.requires_grad and id(p) not in taken and id(p) not in seen:
            seen.add(id(p))
            out.append(p)
    return out


def loss_state_dict(loss: torch.nn.Module, *models: torch.nn.Module | None) -> dict[str, torch.Tensor]:
    """The loss module's own state, without any student/teacher it may hold as a sub-module."""
    skip = _network_prefixes(loss, models)
    return {k: v for k, v in loss.state_dict().items() if not any(k.startswith(s) for s in skip)}


def load_loss_state(loss: torch.nn.Module, state: dict[str, torch.Tensor], *models, source: str = "") -> None:
    skip = _network_prefixes(loss, models)
    missing, unexpected = loss.load_state_dict(state, strict=False)
    missing = [k for k in missing if not any(k.startswith(s) for s in skip)]
    if missing or unexpected:
        raise KeyError(f"{source}: loss state does not match the loss module "
                       f"(missing {missing[:5]}, unexpected {list(unexpected)[:5]})")


def _network_prefixes(loss: torch.nn.Module, models) -> list[str]:
    ids = {id(m) for m in models if m is not None}
    return [f"{name}." for name, mod in loss.named_modules() if name and id(mod) in ids]
