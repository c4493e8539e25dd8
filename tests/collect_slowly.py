"""Collect a design with a deliberately slow agent (run as a subprocess by test_runner.py).

Usage: python collect_slowly.py STORE N_TRIPLETS BATCH_SIZE SLEEP_SECONDS
"""

import sys
import time

import numpy as np

from oddoneout.agents.simulated import SimulatedAgent
from oddoneout.collect.designs import random_design
from oddoneout.collect.runner import collect
from oddoneout.collect.store import TripletStore

ITEMS = [f"item{i:02d}" for i in range(30)]


def features() -> np.ndarray:
    return np.random.default_rng(0).gamma(1.0, 1.0, size=(len(ITEMS), 5))


class SlowAgent(SimulatedAgent):
    """A simulated agent that sleeps before answering each batch."""

    def __init__(self, sleep: float) -> None:
        super().__init__(features(), ITEMS, name="slow", model="simulated")
        self.sleep = sleep

    def judge(self, shown, keys=None):
        time.sleep(self.sleep)
        return super().judge(shown, keys)


def main() -> None:
    store_path, n_triplets, batch_size, sleep = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    design = random_design(ITEMS, n_triplets, seed=0)
    with TripletStore(store_path, "slow", "simulated", ITEMS) as store:
        collect(design, SlowAgent(sleep), store, batch_size=batch_size, progress=False)


if __name__ == "__main__":
    main()
