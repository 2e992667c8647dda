"""Training objectives: structure loss, KDAS (fixed and published) and distillation baselines.

Every objective is an ``nn.Module`` called as ``loss(student_out, teacher_out, mask)`` and returning
``LossOutput(total, components)``; ``loss.needs_teacher`` says whether ``teacher_out`` is used.
Build one by name with ``create_loss(method, cfg, student=None, teacher=None)``.

``cfg.extra`` keys read here (defaults in brackets):

=============  ==========================================================================
method         extra keys
=============  ==========================================================================
kdas           ``at_weight`` [1.0], ``sgm_weight`` [1.0], ``sgm_space`` ["logits"; "prob" = a variant]
targets        none (reads ``cfg.targets`` and ``cfg.mix_lambda``: the teacher's answers as targets)
kdas-official  ``at_weight`` [1.0], ``sgm_weight`` [1.0]; always legacy BCE
at             ``at_beta`` [1000.0], ``at_p`` [2.0]
cwd            ``cwd_tau`` [4.0], ``cwd_features`` [True]
skd            ``skd_pixel_weight`` [10.0], ``skd_pair_weight`` [1.0], ``skd_scale`` [0.5]
fitnet         ``fitnet_stage`` [2], ``fitnet_channels`` [inferred: (C_student, C_teacher)]
=============  ==========================================================================

All distillation methods use ``cfg.alpha`` and (kdas, kd, dist) ``cfg.temperature``; all but
``kdas-official`` use ``cfg.legacy_bce`` for the segmentation part; ``kdas`` reads ``cfg.sgm_heads``
(``"both"``, or ``"p1"`` as published; ``kdas-official`` is always P1). ``cfg.targets`` (``"mask"``, or
``"pseudo"`` / ``"pseudo_soft"`` / ``"mix"``: :mod:`kdas_lab.losses.targets`) sets the segmentation targets
of ``targets`` and ``kdas``.
"""
from kdas_lab.losses.at import ATLoss
from kdas_lab.losses.base import DistillationLoss, LossOutput, SegOnlyLoss, detach_tree, seg_both_heads
from kdas_lab.losses.cwd import CWDLoss
from kdas_lab.losses.dist import DISTLoss
from kdas_lab.losses.factory import LOSS_METHODS, create_loss, stage_widths
from kdas_lab.losses.fitnet import FitNetLoss
from kdas_lab.losses.kd import KDLoss
from kdas_lab.losses.kdas import KDAS_MODES, KDASLoss, KDASOfficialWarning
from kdas_lab.losses.skd import SKDLoss
from kdas_lab.losses.structure import StructureLoss, structure_loss
from kdas_lab.losses.targets import TARGET_MODES, build_targets, teacher_probability
from kdas_lab.losses.teacher_targets import TeacherTargetLoss

__all__ = [
    "LOSS_METHODS", "LossOutput", "create_loss", "structure_loss", "StructureLoss", "SegOnlyLoss",
    "DistillationLoss", "KDASLoss", "KDAS_MODES", "KDASOfficialWarning", "KDLoss", "ATLoss", "CWDLoss",
    "SKDLoss", "DISTLoss", "FitNetLoss", "detach_tree", "seg_both_heads", "stage_widths",
    "TARGET_MODES", "build_targets", "teacher_probability", "TeacherTargetLoss",
]
