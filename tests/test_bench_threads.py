"""The thread-scaling measurement runs and reports one row per thread count."""
import pytest

from kdas_lab.bench.threads import step_seconds, thread_scaling


def test_step_seconds_counts_timed_steps():
    times = step_seconds("polyp_pvt_b0", size=64, batch=2, steps=2, warmup=1)
    assert len(times) == 2 and all(t > 0 for t in times)


@pytest.mark.slow
def test_thread_scaling_rows_with_a_busy_core():
    table = thread_scaling(size=64, batch=2, steps=1, warmup=0, threads=(1, 2), busy=1)
    assert table["threads"].tolist() == [1, 2] and (table["busy_cores"] == 1).all()
    assert (table["s_per_step"] > 0).all()
    assert (table["images_per_s"] - 2 / table["s_per_step"]).abs().max() < 1e-9
