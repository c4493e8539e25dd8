"""The study config of the command-line study tests: synthetic stimuli, one simulated MLLM, a small SPoSE."""

from __future__ import annotations


def synthetic_study_config(name: str, design: str, l1: float, n_bootstrap: int) -> str:
    """TOML of a study ``name`` of 40 synthetic items with the ``[design]`` lines ``design``."""
    return f"""
[study]
name = "{name}"
seed = 0
[stimuli]
source = "synthetic"
n_items = 40
n_subjects = 1
n_runs = 6
voxels_per_roi = 10
[design]
{design.strip()}
[systems.mllm]
agent = "simulated"
features = "synthetic:mllm"
[embedding]
method = "spose"
n_dims = 20
l1 = {l1}
[evaluation]
n_bootstrap = {n_bootstrap}
"""
