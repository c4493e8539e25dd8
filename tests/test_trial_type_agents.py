"""Agents and runners on anchor and ranked trials: the choice rule, keyed draws, who may answer what."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from oddoneout.agents.base import Answer, answers_trial_type
from oddoneout.agents.similarity import SimilarityAgent
from oddoneout.agents.simulated import SimulatedAgent
from oddoneout.collect.async_runner import collect_async
from oddoneout.collect.designs import random_design
from oddoneout.collect.runner import collect
from oddoneout.collect.store import TripletStore, read_judgments, read_judgments_as_triplets
from oddoneout.config import dump_config, load_config
from oddoneout.errors import InputError
from oddoneout.studies import builtin_config
from oddoneout.triplets import ANCHOR, ODD_ONE_OUT, Ranked, keyed_uniforms

ITEMS = [f"v{i:02d}" for i in range(20)]
RANKED = Ranked(4, 2)


@pytest.fixture
def features():
    return np.random.default_rng(3).gamma(1.0, 1.0, size=(len(ITEMS), 3))


def test_keyed_draw_zero_is_the_number_a_trial_always_had():
    keys = [("random", i, 0, 0) for i in range(50)]
    assert np.array_equal(keyed_uniforms(4, keys, draw=0), keyed_uniforms(4, keys))
    assert not np.allclose(keyed_uniforms(4, keys, draw=1), keyed_uniforms(4, keys))


def test_simulated_agent_draws_anchor_answers_from_the_choice_rule(features):
    agent = SimulatedAgent(features, ITEMS, "sim", seed=2, return_probs=True)
    shown = ("v00", "v01", "v02")
    n = 6000
    answers = agent.judge([shown] * n, keys=[("d", 0, 0, r) for r in range(n)], trial_type=ANCHOR)
    probs = ANCHOR.probabilities(features, np.array([[0, 1, 2]]))[0]
    assert answers[0].probs == pytest.approx(tuple(probs)) and probs[0] == 0
    rate = np.mean([a.choice == 1 for a in answers])
    assert {a.choice for a in answers} == {1, 2} and rate == pytest.approx(probs[1], abs=0.02)
    assert all(a.ranking is None for a in answers)


def test_simulated_agent_ranks_choice_by_choice_and_by_key(features):
    agent = SimulatedAgent(features, ITEMS, "sim", seed=2, temperature=0.5)
    shown = ("v05", "v01", "v02", "v03", "v04")
    n = 8000
    keys = [("d", 0, 0, r) for r in range(n)]
    answers = agent.judge([shown] * n, keys=keys, trial_type=RANKED)
    rankings = np.array([a.ranking for a in answers])
    assert rankings.shape == (n, 2) and ((rankings >= 1) & (rankings <= 4)).all()
    assert (rankings[:, 0] != rankings[:, 1]).all() and all(a.choice == a.ranking[0] for a in answers)
    first = RANKED.probabilities(features, np.array([[5, 1, 2, 3, 4]]), temperature=0.5)[0]
    for position in range(1, 5):
        assert np.mean(rankings[:, 0] == position) == pytest.approx(first[position], abs=0.02)
    # Plackett-Luce: the second choice among the options left, in proportion to the first choice's probabilities
    top = int(np.argmax(first))
    after = rankings[rankings[:, 0] == top, 1]
    for position in set(range(1, 5)) - {top}:
        assert np.mean(after == position) == pytest.approx(first[position] / (1 - first[top]), abs=0.03)
    # the same key gets the same ranking in any batch and order
    again = agent.judge([shown] * 10, keys=keys[::-1][:10], trial_type=RANKED)
    assert [a.ranking for a in again] == [a.ranking for a in answers[::-1][:10]]


def test_similarity_agent_chooses_the_options_most_similar_to_the_reference():
    features = np.array([[1.0, 0.0], [0.9, 0.1], [0.5, 0.5], [0.0, 1.0], [0.1, 0.9]])
    ids = ["r", "near", "mid", "far", "farther"]
    agent = SimilarityAgent(features, ids, "sim")
    assert agent.trial_types == ("odd_one_out", "anchor", "ranked")
    assert [a.choice for a in agent.judge([("r", "far", "near"), ("r", "near", "far")], trial_type=ANCHOR)] == [2, 1]
    answer = agent.judge([("r", "far", "mid", "farther", "near")], trial_type=RANKED)[0]
    assert answer.ranking == (4, 2) and answer.choice == 4
    # ties are broken by the items, not by where they are shown
    tied = SimilarityAgent(np.ones((5, 2)), ids, "tied")
    chosen = {
        order[a.choice]
        for order in (("r", "near", "mid"), ("r", "mid", "near"))
        for a in tied.judge([order], trial_type=ANCHOR)
    }
    assert len(chosen) == 1
    # odd-one-out answers are those of before
    assert [a.choice for a in agent.judge([("r", "near", "far")])] == [2]


class OddOneOutOnly:
    """An agent written before trial types: judge(shown, keys) and nothing else."""

    name, model, prompt_hash = "old", "m", None

    def judge(self, shown, keys=None):
        return [Answer(0) for _ in shown]


def test_runner_passes_the_trial_type_and_refuses_an_agent_that_cannot_answer_it(tmp_path, features):
    anchor = random_design(ITEMS, 60, seed=0, name="anchor", trial_type=ANCHOR)
    ranked = random_design(ITEMS, 60, seed=1, name="ranked", trial_type=RANKED)
    agent = SimulatedAgent(features, ITEMS, "sim", seed=1)
    stores = []
    for batch_size in (7, 100):  # a ranking depends on the trial's key, not on the batch it is asked in
        with TripletStore(tmp_path / f"s{batch_size}.sqlite", "sim", "simulated", ITEMS) as store:
            summary = collect([anchor, ranked], agent, store, batch_size=batch_size, progress=False)
            assert summary.n_asked == 120
            stores.append(store.judgments())
    for column in ("choice", "ranking", "trial_type", "more_items"):
        assert stores[0][column].equals(stores[1][column])
    assert len(read_judgments_as_triplets(tmp_path / "s7.sqlite", design="ranked")) == 60

    old = OddOneOutOnly()
    assert answers_trial_type(old, ODD_ONE_OUT) and not answers_trial_type(old, ANCHOR)
    with TripletStore(tmp_path / "old.sqlite", "old", "m", ITEMS) as store:
        with pytest.raises(InputError, match="design 'anchor': agent 'old' answers odd_one_out trials, not anchor"):
            collect([random_design(ITEMS, 5, seed=0), anchor], old, store, progress=False)
        assert len(store) == 0  # refused before asking anything
        collect(random_design(ITEMS, 5, seed=0), old, store, progress=False)  # asked as before trial types
        assert len(store) == 5


class AsyncAnchorAgent:
    """A remote-style agent answering anchor trials: the first option."""

    name, model, prompt_hash = "remote", "m", None
    trial_types = ("anchor",)

    def __init__(self):
        self.seen = []

    async def ajudge(self, shown, trial_type=ODD_ONE_OUT):
        self.seen.append(trial_type)
        return Answer(1, raw="the first option")


def test_async_runner_passes_the_trial_type(tmp_path):
    agent = AsyncAnchorAgent()
    design = random_design(ITEMS, 30, seed=0, trial_type=ANCHOR)
    with TripletStore(tmp_path / "r.sqlite", "remote", "m", ITEMS) as store:
        summary = asyncio.run(collect_async(design, agent, store, concurrency=4, progress=False))
        with pytest.raises(InputError, match="answers anchor trials, not odd_one_out"):
            asyncio.run(collect_async(random_design(ITEMS, 3, seed=0, name="o"), agent, store, progress=False))
    assert summary.n_asked == 30 and set(agent.seen) == {ANCHOR}
    frame = read_judgments(tmp_path / "r.sqlite")
    assert (frame["trial_type"] == "anchor").all() and (frame["choice"] == 1).all()


CONFIG = """
[study]
name = "t"
[stimuli]
n_items = 20
[design]
trial_type = "{trial_type}"
[systems.sim]
agent = "simulated"
features = "synthetic:mllm"
[systems.people]
agent = "{people}"
{people_keys}
"""


def _config(tmp_path, trial_type="anchor", people="ratings", people_keys='ratings = ["category"]'):
    path = tmp_path / "study.toml"
    path.write_text(CONFIG.format(trial_type=trial_type, people=people, people_keys=people_keys))
    return path


def test_a_config_gives_each_system_a_trial_type_its_agent_answers(tmp_path):
    ranked_design = 'design = {trial_type = "ranked:8:2"}'
    config = load_config(_config(tmp_path))
    assert config.design.trial_type == "anchor" and config.systems["people"].design.trial_type == "anchor"
    again = tmp_path / "again.toml"
    again.write_text(dump_config(config))
    assert load_config(again).hash == config.hash and 'trial_type = "anchor"' in again.read_text()
    with pytest.raises(InputError, match=r"\[design\] trial_type: unknown trial type 'pairs'"):
        load_config(_config(tmp_path, trial_type="pairs"))
    human = load_config(_config(tmp_path, trial_type="odd_one_out", people="human", people_keys=""))
    assert human.systems["people"].design.trial_type == "odd_one_out"
    # people answer anchor trials in the served page; catch trials are odd-one-out trials only
    assert load_config(_config(tmp_path, people="human", people_keys="")).systems["people"].agent == "human"
    with pytest.raises(InputError, match=r"\[systems.people\] catch_trials = 2: catch trials are odd-one-out"):
        load_config(_config(tmp_path, people="human", people_keys="catch_trials = 2"))
    # the language models answer every trial type (their prompts for anchor and ranked trials)
    for kind, keys in (
        ("openai", 'model = "m"\nbase_url = "http://127.0.0.1:1/v1"'),
        ("vllm", 'model = "m"'),
        ("llama", ""),
    ):
        config = load_config(
            _config(tmp_path, trial_type="odd_one_out", people=kind, people_keys=f"{keys}\n{ranked_design}")
        )
        assert config.systems["people"].design.trial_type == "ranked:8:2"
    # the default, said or not, leaves the config hash of existing studies as it was
    base = load_config(builtin_config("synthetic"))
    said = load_config(builtin_config("synthetic"), {"design": {"trial_type": "odd_one_out"}})
    assert said.hash == base.hash and "trial_type" not in dump_config(base)


def test_a_ray_shard_worker_answers_and_returns_every_trial_type(tmp_path, features):
    """The actor's body, run in this process (Ray itself is optional): batches and the remote path."""
    from oddoneout.collect.ray_executor import _Shard, _ShardWorker

    ranked = random_design(ITEMS, 20, seed=1, name="ranked", trial_type=RANKED)
    worker = _ShardWorker(lambda: SimulatedAgent(features, ITEMS, "sim", seed=1, return_probs=True), {})
    result = worker.judge(_Shard(0, ranked), batch_size=8)
    answers = [answer for *_, part in result.parts for answer in part]
    expected = SimulatedAgent(features, ITEMS, "sim", seed=1, return_probs=True).judge(
        ranked.shown(), keys=ranked.keys(), trial_type=RANKED
    )
    assert answers == expected and all(len(a.ranking) == 2 and len(a.probs) == 5 for a in answers)
    with pytest.raises(InputError, match="answers odd_one_out trials, not anchor"):
        _ShardWorker(OddOneOutOnly, {}).judge(_Shard(1, random_design(ITEMS, 3, seed=0, trial_type=ANCHOR)), 8)
    # an asynchronous agent answers through a shard store, whose rows come back as answers
    remote = _ShardWorker(AsyncAnchorAgent, {"concurrency": 2}).judge(
        _Shard(2, random_design(ITEMS, 6, seed=0, trial_type=ANCHOR)), 8
    )
    assert [a.choice for *_, part in remote.parts for a in part] == [1] * 6
