"""``torch.compile`` for the trainer: static shapes per training scale, eager fallback on failure.

:func:`compile_enabled` resolves ``Config.compile`` (None = on for CUDA, off elsewhere).
:func:`compile_module` wraps a network with ``torch.compile(dynamic=False)``, so each training scale
(and each distinct batch size) compiles once and then reuses its graph. The backend and mode come
from ``cfg.compile_backend`` (default ``"inductor"``) and ``cfg.compile_mode`` (default None = torch's
default; ``"reduce-overhead"`` adds CUDA graphs). Compilation happens on the
first call of each shape; :class:`CompileGuard` (built by :func:`for_run`, passed to the trainer)
catches a failure there, logs one line and switches every forward it wrapped back to the eager
module for the rest of the run.
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
    kwargs = {"backend": cfg.compile_backend, "dynamic": False}
    if cfg.compile_mode is not None:
        kwargs["mode"] = cfg.compile_mode
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
    """The compile wrapper of a run: :meth:`wrap` compiles a module's forward while the guard is active;
    :meth:`run` runs a step and, when the first call of a new shape fails to compile, logs one line,
    switches every wrapped forward back to its eager module and reruns the step eagerly (so a genuine
    error in the step itself still surfaces, from eager code). The step must therefore start from a clean
    state (the trainer's step zeroes the gradients first).
    """

    def __init__(self, active: bool, say: Callable[[str], None] = lambda _msg: None, cfg=None):
        self.active, self.say, self.cfg = active, say, cfg
        self.seen: set[tuple] = set()
        self.failed: str | None = None

    @classmethod
    def eager(cls) -> CompileGuard:
        """A guard that compiles nothing."""
        return cls(False)

    def wrap(self, module: torch.nn.Module) -> Callable:
        """``module`` itself when inactive, else a :class:`CompiledForward` of it."""
        if not self.active:
            return module
        return CompiledForward(self, module, compile_module(module, self.cfg))

    def run(self, key: tuple, step: Callable[[], object]):
        if not self.active or key in self.seen:
            return step()
        try:
            out = step()
        except Exception as err:  # noqa: BLE001 - any compiler failure: eager keeps training going
            self.failed = describe_failure(err)
            self.say(f"compile: torch.compile failed at {key} ({self.failed}); continuing in eager mode")
            self.active = False  # every CompiledForward of this guard now calls its eager module
            return step()
        self.seen.add(key)
        return out


class CompiledForward:
    """Calls the compiled module while ``guard`` is active, the eager one after a fallback."""

    def __init__(self, guard: CompileGuard, eager: torch.nn.Module, compiled: Callable):
        self.guard, self.eager, self.compiled = guard, eager, compiled

    def __call__(self, *args, **kwargs):
        return (self.compiled if self.guard.active else self.eager)(*args, **kwargs)


def for_run(cfg, device: torch.device, *, compile_teacher: bool = False, is_main: bool = True) -> CompileGuard:
    """The compile wrapper of a run: active when :func:`compile_enabled`, with one log line saying what
    will be compiled (the student, and the live teacher's forward when ``compile_teacher``); the eager
    modules stay for validation, checkpoints and the fallback."""
    use = compile_enabled(cfg, device)
    say = tqdm.write if is_main else (lambda _msg: None)
    if use:
        say(f"compile: torch.compile of the student{' and the teacher' if compile_teacher else ''} "
            f"(backend {cfg.compile_backend}, static shapes per scale)")
    return CompileGuard(use, say, cfg)
