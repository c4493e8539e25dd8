"""The similarity agent (simulated human systems) and the simulated SPoSE agent."""

import itertools

import numpy as np
import pytest

from oddoneout.agents.base import Agent
from oddoneout.agents.similarity import SimilarityAgent
from oddoneout.agents.simulated import SimulatedAgent
from oddoneout.collect.designs import random_design
from oddoneout.errors import InputError
from oddoneout.triplets import odd_one_out_probabilities


def odd_ids(agent, shown):
    return [triplet[answer.choice] for triplet, answer in zip(shown, agent.judge(shown))]


def all_orderings(triplet):
    return list(itertools.permutations(triplet))


def test_similarity_agent_leaves_out_the_most_similar_pair_in_any_order():
    features = np.array([[1.0, 0.0, 0.0], [0.9, 0.2, 0.0], [0.0, 0.1, 1.0], [0.0, 0.0, 1.0]])
    agent = SimilarityAgent(features, ["a", "b", "c", "d"], name="toy")
    assert isinstance(agent, Agent)
    assert odd_ids(agent, all_orderings(("a", "b", "c"))) == ["c"] * 6
    assert odd_ids(agent, all_orderings(("a", "c", "d"))) == ["a"] * 6
    # cosine, not dot product: scaling an item does not change its answers
    scaled = SimilarityAgent(features * np.array([[10.0], [1.0], [0.1], [3.0]]), ["a", "b", "c", "d"], name="toy")
    assert odd_ids(scaled, all_orderings(("a", "b", "c"))) == ["c"] * 6


def test_centring_changes_answers_of_all_positive_ratings():
    # 1-9 ratings: "a" is low on both scales, "c" high on both. Raw vectors are all nearly
    # parallel, so raw cosine pairs a with c; after centring, a is the odd one out.
    ratings = np.array([[1.0, 1.0], [3.0, 4.0], [6.0, 5.0], [3.0, 2.0]])
    ids = ["a", "b", "c", "d"]
    shown = [("a", "b", "c")]
    assert odd_ids(SimilarityAgent(ratings, ids, name="raw"), shown) == ["b"]
    assert odd_ids(SimilarityAgent(ratings, ids, name="centred", center=True), shown) == ["a"]

    # on random 1-9 ratings the choice matters for many triplets
    rng = np.random.default_rng(0)
    ratings = rng.uniform(1, 9, size=(40, 14))
    ids = [f"v{i}" for i in range(40)]
    shown = random_design(ids, 2000, seed=0).shown()
    raw = np.array([a.choice for a in SimilarityAgent(ratings, ids, "raw").judge(shown)])
    centred = np.array([a.choice for a in SimilarityAgent(ratings, ids, "c", center=True).judge(shown)])
    assert np.mean(raw != centred) > 0.2


def test_standardizing_removes_the_scale_of_each_feature():
    rng = np.random.default_rng(1)
    features = rng.normal(size=(30, 4))
    ids = [f"i{k}" for k in range(30)]
    shown = random_design(ids, 500, seed=1).shown()
    stretched = features * np.array([100.0, 1.0, 1.0, 0.01])
    z_plain = SimilarityAgent(features, ids, "z", standardize=True).judge(shown)
    z_stretched = SimilarityAgent(stretched, ids, "z", standardize=True).judge(shown)
    centred_stretched = SimilarityAgent(stretched, ids, "c", center=True).judge(shown)
    assert [a.choice for a in z_plain] == [a.choice for a in z_stretched]
    assert [a.choice for a in z_plain] != [a.choice for a in centred_stretched]


def test_ties_are_broken_the_same_way_in_every_shown_order():
    # one-hot profiles: every pair has cosine 0, a three-way tie
    ids = [f"cat{i}" for i in range(12)]
    agent = SimilarityAgent(np.eye(12), ids, name="onehot")
    winners = []
    for triplet in itertools.combinations(ids, 3):
        answers = set(odd_ids(agent, all_orderings(triplet)))
        assert len(answers) == 1  # independent of the order shown
        winners.append(sorted(triplet).index(answers.pop()))
    # the rule favours no rank within the triplet
    assert min(np.bincount(winners, minlength=3)) > 40


def test_similarity_agent_is_deterministic_and_answers_a_batch_at_once():
    rng = np.random.default_rng(2)
    ids = [f"v{i}" for i in range(50)]
    features = rng.random((50, 34))
    shown = random_design(ids, 5000, seed=2).shown()
    first = SimilarityAgent(features, ids, "h").judge(shown)
    second = SimilarityAgent(features, ids, "h").judge(shown)
    assert first == second
    assert all(a.status == "ok" and a.probs is None for a in first)
    assert SimilarityAgent(features, ids, "h").judge([]) == []


@pytest.mark.parametrize("agent_class", [SimilarityAgent, SimulatedAgent])
def test_bad_input_is_named(agent_class):
    features = np.ones((3, 2))
    agent = agent_class(features, ["a", "b", "c"], name="x")
    with pytest.raises(InputError, match="unknown item id 'zzz'"):
        agent.judge([("a", "b", "c"), ("a", "zzz", "c")])
    with pytest.raises(InputError, match="exactly 3 item ids"):
        agent.judge([("a", "b", "c"), ("a", "b")])
    with pytest.raises(InputError, match="do not match 2 item ids"):
        agent_class(features, ["a", "b"], name="x")
    broken = features.copy()
    broken[1, 0] = np.nan
    with pytest.raises(InputError, match="item 'b' has a NaN"):
        agent_class(broken, ["a", "b", "c"], name="x")
    with pytest.raises(InputError, match="repeated item ids"):
        agent_class(features, ["a", "b", "a"], name="x")


def test_simulated_agent_follows_the_choice_rule():
    features = np.array([[2.0, 0.0], [1.5, 0.5], [0.0, 1.0]])
    ids = ["a", "b", "c"]
    agent = SimulatedAgent(features, ids, name="sim", seed=0, return_probs=True)
    assert isinstance(agent, Agent)
    n = 20000
    answers = agent.judge([("a", "b", "c")] * n)
    expected = odd_one_out_probabilities(features, np.array([[0, 1, 2]]))[0]
    assert np.allclose(answers[0].probs, expected)
    frequencies = np.bincount([a.choice for a in answers], minlength=3) / n
    assert np.allclose(frequencies, expected, atol=0.02)
    # shown order is respected: the same triplet reversed reverses the probabilities
    reversed_answer = agent.judge([("c", "b", "a")])[0]
    assert np.allclose(reversed_answer.probs, expected[::-1])


def test_simulated_agent_is_seeded_and_temperature_sharpens():
    rng = np.random.default_rng(3)
    ids = [f"v{i}" for i in range(20)]
    features = rng.gamma(1.0, 1.0, size=(20, 3))
    shown = random_design(ids, 300, seed=3).shown()

    def choices(**kwargs):
        return np.array([a.choice for a in SimulatedAgent(features, ids, name="s", **kwargs).judge(shown)])

    assert np.array_equal(choices(seed=5), choices(seed=5))
    assert not np.array_equal(choices(seed=5), choices(seed=6))
    assert SimulatedAgent(features, ids, name="s").judge(shown[:3])[0].probs is None
    indices = np.array([[ids.index(item) for item in triplet] for triplet in shown])
    best = np.argmax(odd_one_out_probabilities(features, indices), axis=1)
    assert np.array_equal(choices(temperature=1e-4), best)
    assert np.mean(choices(temperature=1.0) == best) < 0.95
    with pytest.raises(InputError, match="temperature"):
        SimulatedAgent(features, ids, name="s", temperature=0.0)
