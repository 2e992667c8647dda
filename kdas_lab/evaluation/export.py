"""Export a Polyp-PVT model (the student) to ONNX and check it against onnxruntime.

The exported graph takes a normalised image batch ``(B, 3, S, S)`` (``image``) and returns the
inference map ``sigmoid(p1 + p2)`` ``(B, 1, S, S)`` (``prob``). The size S is fixed at export
(the SAM's adaptive pooling is traced for one feature size); the batch is dynamic.

Two export details, both checked by the tests:
- ONNX has no adaptive average pooling whose output does not divide the input (SAM pools the
  stride-8 map, e.g. 44x44 or 8x8, to 6x6). :func:`make_exportable` swaps every
  ``nn.AdaptiveAvgPool2d`` for :class:`BinnedAvgPool2d`, the same arithmetic written with slices
  and means (PyTorch's bins: ``[floor(i*H/n), ceil((i+1)*H/n))``), on a copy of the model.
- We use the TorchScript exporter (``dynamo=False``): the dynamo exporter needs ``onnxscript``,
  which is not a dependency.
"""
from __future__ import annotations

import copy
import math
import os
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from kdas_lab.atomic import atomic_path

OPSET = 17


class BinnedAvgPool2d(nn.Module):
    """``nn.AdaptiveAvgPool2d`` as explicit bins (exportable for any static input size)."""

    def __init__(self, output_size: int | tuple[int | None, int | None]):
        super().__init__()
        self.output_size = output_size if isinstance(output_size, tuple) else (output_size, output_size)

    @staticmethod
    def bins(n_in: int, n_out: int) -> list[tuple[int, int]]:
        return [((i * n_in) // n_out, math.ceil((i + 1) * n_in / n_out)) for i in range(n_out)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, C, oh, ow)
        h, w = int(x.shape[-2]), int(x.shape[-1])
        oh, ow = (o if o is not None else s for o, s in zip(self.output_size, (h, w)))
        rows = []
        for y0, y1 in self.bins(h, oh):
            cells = [x[..., y0:y1, x0:x1].mean(dim=(-2, -1)) for x0, x1 in self.bins(w, ow)]  # (B, C) each
            rows.append(torch.stack(cells, dim=-1))  # (B, C, ow)
        return torch.stack(rows, dim=-2)  # (B, C, oh, ow)


class ProbabilityModel(nn.Module):
    """``x (B, 3, S, S) -> sigmoid(p1 + p2) (B, 1, S, S)``: the deployable inference map."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model(x)
        return torch.sigmoid(out.p1 + out.p2)


def make_exportable(model: nn.Module) -> ProbabilityModel:
    """A CPU, eval-mode copy wrapped to output probabilities, adaptive pools replaced."""
    m = copy.deepcopy(model).cpu().eval()
    for module in list(m.modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, nn.AdaptiveAvgPool2d):
                setattr(module, child_name, BinnedAvgPool2d(child.output_size))
    return ProbabilityModel(m).eval()


def export_onnx(model: nn.Module, path: str | os.PathLike, size: int = 352, opset: int = OPSET) -> Path:
    """Write ``model`` as ONNX to ``path`` (atomically) for ``size x size`` inputs; returns the path."""
    if size % 32:
        raise ValueError(f"export size must be a multiple of 32, got {size}")
    path = Path(path)
    wrapped = make_exportable(model)
    x = torch.zeros(1, 3, size, size)
    with atomic_path(path) as tmp:
        with warnings.catch_warnings():  # tracer warnings about Python-level shape checks
            warnings.simplefilter("ignore")
            torch.onnx.export(wrapped, (x,), tmp, dynamo=False, opset_version=opset,
                              input_names=["image"], output_names=["prob"],
                              dynamic_axes={"image": {0: "batch"}, "prob": {0: "batch"}})
        import onnx  # noqa: PLC0415 (optional: the notebooks extra)

        onnx.checker.check_model(tmp)
    return path


def onnx_session(path: str | os.PathLike, threads: int | None = None):
    """An onnxruntime CPU session; a clear error if the file is missing or not an ONNX model."""
    import onnxruntime as ort  # noqa: PLC0415 (optional: the notebooks extra)

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: ONNX file not found (export it with kdas_lab.evaluation.export.export_onnx)")
    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
    # idle worker threads must not spin: they would steal the cores PyTorch is timed on
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise ValueError(f"{path}: onnxruntime cannot load it: {exc}") from exc


def onnx_predict(session, images: np.ndarray | torch.Tensor) -> np.ndarray:
    """Run the exported model: ``(B, 3, S, S)`` normalised float32 -> ``(B, 1, S, S)`` probabilities."""
    x = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    return session.run(["prob"], {"image": x.astype(np.float32, copy=False)})[0]


def _median_ms(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return float(np.median(times))


def check_onnx(model: nn.Module, path: str | os.PathLike, size: int = 352, batch: int = 1,
               repeats: int = 5, seed: int = 0) -> dict[str, float]:
    """Compare PyTorch (CPU) and onnxruntime on a random batch: max / mean abs difference of the
    probabilities and the median latency of each (ms per batch), plus the file size (MB)."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, 3, size, size, generator=gen)
    ref_model = ProbabilityModel(copy.deepcopy(model).cpu().eval())
    with torch.no_grad():
        ref = ref_model(x).numpy()
        torch_ms = _median_ms(lambda: ref_model(x), repeats)  # timed before onnxruntime starts threads
    session = onnx_session(path)
    xn = x.numpy()
    got = onnx_predict(session, xn)
    if got.shape != ref.shape:
        raise ValueError(f"{path}: ONNX output shape {got.shape} != PyTorch {ref.shape}")
    diff = np.abs(got - ref)
    return {
        "max_abs_diff": float(diff.max()),
        "mean_abs_diff": float(diff.mean()),
        "torch_ms": torch_ms,
        "onnxruntime_ms": _median_ms(lambda: onnx_predict(session, xn), repeats),
        "file_mb": Path(path).stat().st_size / 2**20,
    }
