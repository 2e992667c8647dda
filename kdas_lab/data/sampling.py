"""Batches with a fixed labelled share, for label-scarce distillation.

With few labels, drawing batches from all training images starves the labelled part: at 10 % labels and
batch 8, 43 % of the batches hold no labelled image. :class:`LabelledShareSampler` makes every batch
``n_labelled`` labelled images, drawn with replacement from the (few) labelled ones, plus
``batch_size - n_labelled`` unlabelled images, drawn without replacement from a fresh permutation of
the unlabelled ones each pass. An epoch is ``ceil(n_images / batch_size)`` batches, as for the
teacher-free run on the labelled images (equal steps).
"""
from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch.utils.data import Sampler


class LabelledShareSampler(Sampler[list[int]]):
    """Batch sampler: ``n_labelled`` of ``labelled`` + the rest of ``unlabelled`` dataset indices per batch.

    Every draw comes from ``generator`` (seeded by the trainer and saved with its checkpoints, so a
    resumed run draws the same batches).
    """

    def __init__(self, labelled: list[int], unlabelled: list[int], batch_size: int, n_labelled: int,
                 generator: torch.Generator):
        if not 1 <= n_labelled < batch_size:
            raise ValueError(f"labelled_per_batch must be in [1, batch_size - 1] = [1, {batch_size - 1}], "
                             f"got {n_labelled}")
        if not labelled or not unlabelled:
            raise ValueError(f"a labelled share per batch needs labelled and unlabelled images "
                             f"(got {len(labelled)} labelled, {len(unlabelled)} unlabelled)")
        self.labelled, self.unlabelled = list(labelled), list(unlabelled)
        self.batch_size, self.n_labelled, self.generator = batch_size, n_labelled, generator

    def __len__(self) -> int:
        return math.ceil((len(self.labelled) + len(self.unlabelled)) / self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        n_unlabelled = self.batch_size - self.n_labelled
        order: list[int] = []
        for _ in range(len(self)):
            if len(order) < n_unlabelled:  # a new pass over the unlabelled images
                order += torch.randperm(len(self.unlabelled), generator=self.generator).tolist()
            take, order = order[:n_unlabelled], order[n_unlabelled:]
            picks = torch.randint(len(self.labelled), (self.n_labelled,), generator=self.generator).tolist()
            yield [self.labelled[i] for i in picks] + [self.unlabelled[i] for i in take]
