"""Torch CPU threads under load: seconds per training step with 1 and with 2 threads.

On a 2-core laptop the second core is rarely free (a browser, the notebook kernel, another run).
Two torch threads then wait for each other at every parallel region, and a step can get several
times slower than with one. ``thread_scaling`` measures it: each thread count runs in a fresh
process (so the setting is clean) while an optional busy-loop process keeps ``busy`` cores loaded.

    python -m kdas_lab.bench.threads --model polyp_pvt_b0 --size 128 --batch 8 --busy 1
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import subprocess
import sys

import pandas as pd
import torch

from kdas_lab.config import Config
from kdas_lab.losses import create_loss
from kdas_lab.models import create_model
from kdas_lab.train.step_timing import step_times, step_trainer


def _spin(stop) -> None:
    while not stop.is_set():
        sum(i * i for i in range(10_000))


def step_seconds(model: str, size: int, batch: int, steps: int, warmup: int) -> list[float]:
    """Seconds of each timed training step in this process: the trainer's own step (forward, structure loss,
    backward, clipping, AdamW) on the CPU, fp32, eager."""
    torch.manual_seed(0)
    cfg = Config(device="cpu", image_size=size, multiscale=(1.0,), batch_size=batch, amp=False, compile=False)
    cpu = torch.device("cpu")
    trainer = step_trainer(cfg, student=create_model(model), loss=create_loss("none", cfg), device=cpu)
    images = torch.randn(batch, 3, size, size)  # (B, 3, S, S)
    masks = (torch.rand(batch, 1, size, size) > 0.5).float()  # (B, 1, S, S)
    return step_times(trainer.train_step, cpu, images, masks, size, warmup=warmup, steps=steps)


def thread_scaling(model: str = "polyp_pvt_b0", size: int = 128, batch: int = 8, steps: int = 6,
                   warmup: int = 2, threads: tuple[int, ...] = (1, 2), busy: int = 0) -> pd.DataFrame:
    """One row per thread count: median s/step, images/s, load average before and after."""
    stop = mp.Event()
    spinners = [mp.Process(target=_spin, args=(stop,), daemon=True) for _ in range(busy)]
    for p in spinners:
        p.start()
    rows = []
    try:
        for n in threads:
            load0 = os.getloadavg()[0]
            env = {**os.environ, "OMP_NUM_THREADS": str(n)}
            code = (f"import json; from kdas_lab.bench.threads import step_seconds; "
                    f"print(json.dumps(step_seconds({model!r}, {size}, {batch}, {steps}, {warmup})))")
            out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
            times = json.loads(out.stdout.strip().splitlines()[-1])
            med = statistics.median(times)
            rows.append({"model": model, "size": size, "batch": batch, "threads": n, "busy_cores": busy,
                         "s_per_step": med, "images_per_s": batch / med, "load_before": load0,
                         "load_after": os.getloadavg()[0]})
    finally:
        stop.set()
        for p in spinners:
            p.join(timeout=5)
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m kdas_lab.bench.threads", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="polyp_pvt_b0")
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--busy", type=int, default=1, help="busy-loop processes started beside the measurement")
    args = p.parse_args(argv)
    table = thread_scaling(args.model, args.size, args.batch, args.steps, busy=args.busy)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
