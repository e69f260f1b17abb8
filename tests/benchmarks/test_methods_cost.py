"""benchmarks/methods_cost.py times the arms configs/sweeps/methods_seeds.yaml runs, and the sweep's steps give
every arm the in-batch NT-Xent arm's wall time at the cost ratios the benchmark recorded."""
import pytest
from omegaconf import OmegaConf

from ssl_music.config import CONFIG_DIR
from tests.benchmarks import load_benchmark

SWEEP = CONFIG_DIR / "sweeps" / "methods_seeds.yaml"
# benchmarks/results/methods_cost.txt, interleaved table
RECORDED = {"ntxent": 1.00, "ntxent_queue": 1.06, "byol_a": 1.78, "vicreg": 1.13}


def _schedule(overrides):
    keep = [o for o in overrides if not o.startswith(("trainer.max_steps=", "optim.warmup_steps="))]
    steps = {o.split("=")[0]: int(o.split("=")[1]) for o in overrides if o not in keep}
    return keep, steps


def test_the_benchmark_times_the_sweeps_arms():
    bench = load_benchmark("methods_cost")
    sweep = OmegaConf.load(SWEEP)
    assert set(bench.COMMON) <= set(sweep.overrides)
    arms = {name: _schedule(list(over))[0] for name, over in sweep.grid.method.items()}
    assert arms == bench.ARMS


def test_equal_wall_time_steps_follow_the_recorded_cost():
    sweep = OmegaConf.load(SWEEP)
    base = None
    for name, over in sweep.grid.method.items():
        _, s = _schedule(list(over))
        base = base or s["trainer.max_steps"] * RECORDED[name]
        assert s["trainer.max_steps"] == round(base / RECORDED[name]), name
        assert s["optim.warmup_steps"] == round(0.025 * s["trainer.max_steps"]), name
    assert sweep.seeds >= 3
