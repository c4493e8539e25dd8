"""Collect an adaptive plan with a deliberately slow simulated agent (run as a subprocess by test_adaptive.py).

Usage: python collect_adaptively.py STORE SLEEP_SECONDS
"""

import sys
import time

import numpy as np

from oddoneout.agents.simulated import SimulatedAgent
from oddoneout.collect.adaptive import AdaptivePlan, collect_adaptive
from oddoneout.collect.store import TripletStore

ITEMS = [f"item{i:02d}" for i in range(16)]
NAME, MODEL = "slow", "simulated"
#: 100 holdout + 180 round-0 trials, then 3 rounds of 100 (50 base trials in 2 orderings each)
PLAN = AdaptivePlan(tuple(ITEMS), seed=5, n_rounds=3, round_size=50, initial=90, holdout=50, n_orderings=2)
BATCH_SIZE = 50


def make_agent(sleep: float = 0.0) -> SimulatedAgent:
    features = np.random.default_rng(1).gamma(1.0, 1.0, size=(len(ITEMS), 4))
    agent = SimulatedAgent(features, ITEMS, name=NAME, model=MODEL)
    judge = agent.judge

    def slow_judge(shown, keys=None, **kwargs):
        time.sleep(sleep)
        return judge(shown, keys, **kwargs)

    agent.judge = slow_judge
    return agent


def main() -> None:
    store_path, sleep = sys.argv[1], float(sys.argv[2])
    with TripletStore(store_path, NAME, MODEL, ITEMS) as store:
        collect_adaptive(PLAN, make_agent(sleep), store, batch_size=BATCH_SIZE, progress=False)


if __name__ == "__main__":
    main()
