"""``torch.compile`` for the trainer: static shapes per training scale, eager fallback on failure.

:func:`compile_enabled` resolves ``Config.compile`` (None = on for CUDA, off elsewhere).
:func:`compile_module` wraps a network with ``torch.compile(dynamic=False)``, so each training scale
(and each distinct batch size) compiles once and then reuses its graph. The backend and mode come
from ``cfg.extra["compile_backend"]`` (default ``"inductor"``) and ``cfg.extra["compile_mode"]``
(default None = torch's default; ``"reduce-overhead"`` adds CUDA graphs). Compilation happens on the
first call of each shape; :class:`CompileGuard` catches a failure there, logs one line and switches
the trainer to the eager modules for the rest of the run.
"""
from __future__ import annotations

import shutil
from collections.abc import Callable

import torch
from tqdm.auto import tqdm


def compile_enabled(cfg, device: torch.device) -> bool:
    """``cfg.compile``, or (None) on for CUDA and off elsewhere."""
    return bool(cfg.compile) if cfg.compile is not None else device.type == "cuda"


def cpu_compiler_missing_reason() -> str | None:
    """Why inductor cannot build CPU kernels here (no C++ compiler on PATH), or None."""
    if any(shutil.which(c) for c in ("c++", "g++", "clang++", "cl")):
        return None
    return "torch.compile (inductor) on CPU needs a C++ compiler (c++, g++ or clang++) and none is on PATH"


def compile_module(module: torch.nn.Module, cfg) -> torch.nn.Module:
    """``torch.compile(module)`` with static shapes and the configured backend and mode."""
    backend = cfg.extra.get("compile_backend", "inductor")
    mode = cfg.extra.get("compile_mode")
    kwargs = {"backend": backend, "dynamic": False}
    if mode is not None:
        kwargs["mode"] = mode
    return torch.compile(module, **kwargs)


def describe_failure(err: BaseException) -> str:
    """``Outer: Root: first line of the root cause`` (dynamo wraps the backend's own error)."""
    root = err
    while root.__cause__ is not None or getattr(root, "inner_exception", None) is not None:
        root = root.__cause__ or root.inner_exception
    first = (str(root).strip().splitlines() or [""])[0][:200]
    prefix = f"{type(err).__name__}: " if root is not err else ""
    return f"{prefix}{type(root).__name__}: {first}"


class CompileGuard:
    """Runs a step with the compiled modules; the first failure of a new shape falls back to eager.

    ``fallback`` is called once (it swaps the trainer's modules back to eager); the step is then
    rerun eagerly, so a genuine error in the step itself still surfaces, from eager code.
    """

    def __init__(self, active: bool, fallback: Callable[[], None], say: Callable[[str], None]):
        self.active, self.fallback, self.say = active, fallback, say
        self.seen: set[tuple] = set()
        self.failed: str | None = None

    def run(self, key: tuple, step: Callable[[], object]):
        if not self.active or key in self.seen:
            return step()
        try:
            out = step()
        except Exception as err:  # noqa: BLE001 - any compiler failure: eager keeps training going
            self.failed = describe_failure(err)
            self.say(f"compile: torch.compile failed at {key} ({self.failed}); continuing in eager mode")
            self.active = False
            self.fallback()
            return step()
        self.seen.add(key)
        return out


def for_trainer(trainer) -> CompileGuard:
    """Compile ``trainer.net`` (and the live teacher's forward, ``trainer.teacher_fwd``) when
    :func:`compile_enabled`; the eager modules stay for validation, checkpoints and the fallback."""
    trainer.eager_net, trainer.teacher_fwd = trainer.net, trainer.teacher
    use = compile_enabled(trainer.cfg, trainer.device)
    say = tqdm.write if trainer.info.is_main else (lambda _msg: None)
    if use:
        trainer.net = compile_module(trainer.net, trainer.cfg)
        live_teacher = trainer.distilling and trainer.teacher_cache is None
        if live_teacher:
            trainer.teacher_fwd = compile_module(trainer.teacher, trainer.cfg)
        say(f"compile: torch.compile of the student{' and the teacher' if live_teacher else ''} "
            f"(backend {trainer.cfg.extra.get('compile_backend', 'inductor')}, static shapes per scale)")

    def eager_again() -> None:
        trainer.net, trainer.teacher_fwd = trainer.eager_net, trainer.teacher
        trainer.optimizer.zero_grad(set_to_none=True)

    return CompileGuard(use, eager_again, say)
