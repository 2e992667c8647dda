"""Model efficiency: parameters, MACs, latency, throughput and peak memory, one row per model.

- MACs: ``torch.utils.flop_counter.FlopCounterMode`` FLOPs / 2 for one image (batch 1). PyTorch's
  counter has no formula for the CPU flash-attention kernel of ``scaled_dot_product_attention``, so
  one is registered here (the same formula as the CUDA kernels): attention counts, as in the
  published 10.84 G / 1.90 G.
- latency: median wall time of a batch-1 forward (ms); throughput: images/s at batch 16. CPU: float32;
  CUDA: bf16 autocast, synchronised.
- peak memory (``peak_mem_mb``): the most bytes held by tensors created during one batch-1 forward,
  beyond the weights and the input (activations and temporaries). CUDA: ``max_memory_allocated``
  minus the memory allocated before the pass. CPU: ``tracemalloc`` does not see torch's allocator and
  ``ru_maxrss`` is a process-wide high-water mark, so a dispatch mode tracks every op output's storage
  (weak references) and records the live total after each op. Kernel-internal scratch buffers are not
  included on CPU.
"""
from __future__ import annotations

import statistics
import time
from collections.abc import Sequence

import pandas as pd
import torch
from torch import nn
from torch.multiprocessing.reductions import StorageWeakRef
from torch.utils import _pytree as pytree
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

from kdas_lab.models import create_model
from kdas_lab.runtime import machine_info, resolve_device, synchronize


def _cpu_sdpa_flop(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    return sdpa_flop_count(query_shape, key_shape, value_shape)


def _custom_flops() -> dict:
    op = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)
    return {op: _cpu_sdpa_flop} if op is not None else {}  # keyed by the op packet, as flop_registry


def count_macs(model: nn.Module, x: torch.Tensor) -> int:
    """Multiply-accumulates of one forward of ``x`` (FLOPs / 2)."""
    counter = FlopCounterMode(display=False, custom_mapping=_custom_flops())
    with torch.no_grad(), counter:
        model(x)
    return counter.get_total_flops() // 2


class _LiveTensorBytes(TorchDispatchMode):
    """Tracks the bytes of storages created by ops and still alive; ``peak`` is the maximum."""

    def __init__(self):
        super().__init__()
        self.live: dict[int, tuple[StorageWeakRef, int]] = {}
        self.current = self.peak = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for key in [k for k, (ref, _) in self.live.items() if ref.expired()]:
            self.current -= self.live.pop(key)[1]
        for t in pytree.tree_leaves(out):
            if isinstance(t, torch.Tensor):
                ref = StorageWeakRef(t.untyped_storage())
                if ref.cdata not in self.live:
                    nbytes = t.untyped_storage().nbytes()
                    self.live[ref.cdata] = (ref, nbytes)
                    self.current += nbytes
        self.peak = max(self.peak, self.current)
        return out


def peak_forward_bytes(model: nn.Module, x: torch.Tensor) -> int:
    """Peak bytes of tensors alive during one forward, beyond weights and input (see module doc)."""
    if x.device.type == "cuda":
        torch.cuda.synchronize(x.device)
        base = torch.cuda.memory_allocated(x.device)
        torch.cuda.reset_peak_memory_stats(x.device)
        with torch.no_grad(), _autocast(x.device):
            model(x)
        torch.cuda.synchronize(x.device)
        return torch.cuda.max_memory_allocated(x.device) - base
    tracker = _LiveTensorBytes()
    with torch.no_grad(), tracker:
        model(x)
    return tracker.peak


def _autocast(device: torch.device):
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast("cpu", enabled=False)


def time_forward(model: nn.Module, x: torch.Tensor, warmup: int = 2, iters: int = 5) -> float:
    """Median seconds of one forward of ``x``."""
    times = []
    with torch.inference_mode(), _autocast(x.device):
        for i in range(warmup + iters):
            synchronize(x.device)
            t0 = time.perf_counter()
            model(x)
            synchronize(x.device)
            if i >= warmup:
                times.append(time.perf_counter() - t0)
    return statistics.median(times)


def model_efficiency(model: nn.Module, size: int = 352, device: str | torch.device = "auto",
                     warmup: int = 2, iters: int = 5, batch: int = 16) -> dict:
    """Efficiency figures of one model at ``size`` x ``size`` (JSON-friendly dict)."""
    dev = resolve_device(device)
    model = model.to(dev).eval()
    params = sum(p.numel() for p in model.parameters())
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    x1 = torch.randn(1, 3, size, size, device=dev)
    macs = count_macs(model, x1)
    peak = peak_forward_bytes(model, x1)
    latency = time_forward(model, x1, warmup, iters)
    xb = torch.randn(batch, 3, size, size, device=dev)
    batch_time = time_forward(model, xb, max(1, warmup // 2), max(1, iters // 2))
    return {
        "model": getattr(model, "name", type(model).__name__), "params": int(params),
        "params_M": params / 1e6, "GMACs": macs / 1e9, "size": size, "device": str(dev),
        "dtype": "bf16-autocast" if dev.type == "cuda" else "float32",
        "latency_ms_b1": latency * 1e3, f"throughput_img_s_b{batch}": batch / batch_time,
        "peak_mem_mb": peak / 2**20, "weights_mb": weight_bytes / 2**20,
        "torch_threads": torch.get_num_threads(),
    }


def efficiency_table(names: Sequence[str], size: int = 352, device: str | torch.device = "auto",
                     warmup: int = 2, iters: int = 5, batch: int = 16) -> pd.DataFrame:
    """One row per model name (``kdas_lab.models.MODEL_NAMES``), indexed by name; random init weights
    (efficiency does not depend on them). ``df.attrs['machine']`` holds :func:`machine_info`."""

    rows = []
    for name in names:
        model = create_model(name)
        rows.append(model_efficiency(model, size=size, device=device, warmup=warmup, iters=iters, batch=batch))
        del model
    df = pd.DataFrame(rows).set_index("model")
    df.attrs["machine"] = machine_info()
    return df


def efficiency_dict(df: pd.DataFrame) -> dict:
    """``{"machine": {...}, "models": {name: {column: value}}}`` with plain Python values."""
    models = {str(k): {c: (v.item() if hasattr(v, "item") else v) for c, v in row.items()}
              for k, row in df.iterrows()}
    return {"machine": df.attrs.get("machine", machine_info()), "models": models}
