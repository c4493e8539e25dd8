"""The Ray executor on a real local Ray cluster: same store as the sync runner, resumable, no duplicates."""

import sys
from functools import partial

import numpy as np
import pytest

from oddoneout.agents.similarity import SimilarityAgent
from oddoneout.collect.designs import concat_designs, random_design, repeated_design
from oddoneout.collect.ray_executor import collect_ray, plan_shards
from oddoneout.collect.runner import collect
from oddoneout.collect.store import TripletStore
from oddoneout.errors import InputError

ray = pytest.importorskip("ray")

ITEMS = [f"v{i:02d}" for i in range(30)]
FEATURES = np.random.default_rng(0).normal(size=(len(ITEMS), 4))
KEY_COLUMNS = ["design", "triplet_index", "ordering", "repeat"]
ANSWER_COLUMNS = [*KEY_COLUMNS, "item_0", "item_1", "item_2", "status", "choice", "odd_one_out", "agent", "model"]


def make_agent(features=FEATURES) -> SimilarityAgent:
    return SimilarityAgent(features, ITEMS, name="sim")


# a partial of a package class pickles by reference, so Ray workers can rebuild it
AGENT_FACTORY = partial(SimilarityAgent, FEATURES, ITEMS, "sim")


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def stored(path):
    with TripletStore.open(path) as store:
        return store.judgments()[ANSWER_COLUMNS].sort_values(KEY_COLUMNS).reset_index(drop=True)


def designs():
    return concat_designs(random_design(ITEMS, 300, seed=1, n_orderings=2), repeated_design(ITEMS, 40, 3, seed=2))


def test_plan_shards_covers_every_trial_once_without_spanning_designs():
    parts = designs()
    shards = plan_shards(parts, 7)
    assert [s.number for s in shards] == list(range(len(shards)))
    for design in parts:
        codes = np.concatenate([s.design.key_codes() for s in shards if s.design.name == design.name])
        assert np.array_equal(codes, design.key_codes())  # in design order, nothing lost or repeated
    assert 7 <= len(shards) <= 8
    with pytest.raises(InputError, match="n_shards"):
        plan_shards(parts, 0)


def test_collect_ray_matches_the_sync_runner_and_resumes(local_ray, tmp_path):
    parts = designs()
    n_trials = sum(len(d) for d in parts)
    with TripletStore(tmp_path / "sync.sqlite", "sim", "cosine-similarity", ITEMS) as store:
        collect(parts, make_agent(), store, batch_size=64, progress=False)

    summary = collect_ray(parts, AGENT_FACTORY, tmp_path / "ray.sqlite", n_shards=5, batch_size=50, progress=False,
                          item_ids=ITEMS)  # fmt: skip
    assert (summary.n_design, summary.n_already_stored, summary.n_asked, summary.n_duplicates) == (
        n_trials,
        0,
        n_trials,
        0,
    )
    assert summary.counts["ok"] == n_trials and summary.n_missing == 0
    ray_rows = stored(tmp_path / "ray.sqlite")
    assert len(ray_rows) == n_trials
    assert ray_rows.equals(stored(tmp_path / "sync.sqlite"))

    again = collect_ray(parts, AGENT_FACTORY, tmp_path / "ray.sqlite", progress=False)
    assert (again.n_already_stored, again.n_asked) == (n_trials, 0)
    assert stored(tmp_path / "ray.sqlite").equals(ray_rows)


def test_a_stochastic_agent_gives_the_same_store_on_ray_as_in_one_process(local_ray, tmp_path):
    from oddoneout.agents.simulated import SimulatedAgent

    factory = partial(SimulatedAgent, np.abs(FEATURES), ITEMS, "sim", "simulated", 1.0, 7)
    with TripletStore(tmp_path / "sync.sqlite", "sim", "simulated", ITEMS) as store:
        collect(designs(), factory(), store, batch_size=1000, progress=False)
    collect_ray(designs(), factory, tmp_path / "ray.sqlite", n_shards=4, batch_size=25, progress=False, item_ids=ITEMS)
    assert stored(tmp_path / "ray.sqlite").equals(stored(tmp_path / "sync.sqlite"))


def test_collect_ray_asks_only_what_a_half_filled_store_lacks(local_ray, tmp_path):
    design = random_design(ITEMS, 400, seed=3)
    path = tmp_path / "half.sqlite"
    with TripletStore(path, "sim", "cosine-similarity", ITEMS) as store:
        first_half = design.subset(slice(0, 200))
        collect(first_half, make_agent(), store, progress=False)
        stamps_before = store.judgments().set_index("triplet_index")["started_at"]

    summary = collect_ray(design, AGENT_FACTORY, path, n_shards=3, progress=False)
    assert (summary.n_already_stored, summary.n_asked, summary.n_duplicates) == (200, 200, 0)
    with TripletStore.open(path) as store:
        frame = store.judgments()
    assert len(frame) == 400 and not frame.duplicated(KEY_COLUMNS).any()
    # the first half was not asked again: its rows are the ones stored by the sync runner
    kept = frame.set_index("triplet_index").loc[stamps_before.index, "started_at"]
    assert kept.equals(stamps_before)
    expected = make_agent().judge(design.shown())
    by_index = frame.set_index("triplet_index").loc[design.triplet_index, "choice"].to_numpy()
    assert by_index.tolist() == [a.choice for a in expected]


def test_collect_ray_refuses_an_agent_other_than_the_stores(local_ray, tmp_path):
    design = random_design(ITEMS, 30, seed=4)
    path = tmp_path / "other.sqlite"
    TripletStore(path, "someone-else", "cosine-similarity", ITEMS).close()
    with pytest.raises(InputError, match="someone-else"):
        collect_ray(design, AGENT_FACTORY, path, progress=False)
    with TripletStore.open(path) as store:
        assert len(store) == 0


def test_collect_ray_stores_finished_shards_before_reraising_an_agent_failure(local_ray, tmp_path):
    design = random_design(ITEMS, 120, seed=5)
    shown = design.shown()
    # the item that appears last for the first time: the failure comes after a few good shards
    first_seen = {item: next(i for i, row in enumerate(shown) if item in row) for item in ITEMS}
    bad_item = max(first_seen, key=first_seen.get)
    first_bad_shard = first_seen[bad_item] // 10
    assert first_bad_shard >= 1
    factory = partial(_FailingAgent, FEATURES, ITEMS, "sim", bad_item=bad_item)
    path = tmp_path / "fail.sqlite"
    with pytest.raises(Exception, match=f"refuses triplets with {bad_item}") as caught:
        collect_ray(design, factory, path, n_shards=12, n_workers=1, progress=False, item_ids=ITEMS)
    assert any("call collect_ray again to resume" in note for note in getattr(caught.value, "__notes__", []))
    with TripletStore.open(path) as store:
        n_stored = len(store)
    assert n_stored == 10 * first_bad_shard  # every shard before the failing one (one worker: in order)
    resumed = collect_ray(design, AGENT_FACTORY, path, progress=False)
    assert resumed.n_already_stored == n_stored and resumed.n_missing == 0


def test_collect_ray_runs_async_agents_through_the_async_runner(local_ray, tmp_path):
    parts = designs()
    with TripletStore(tmp_path / "sync.sqlite", "sim", "cosine-similarity", ITEMS) as store:
        collect(parts, make_agent(), store, progress=False)
    factory = partial(_AsyncSimilarity, FEATURES, ITEMS, "sim")
    summary = collect_ray(parts, factory, tmp_path / "async.sqlite", n_shards=4, progress=False,
                          remote_options={"concurrency": 4, "max_retries": 0})  # fmt: skip
    assert summary.n_asked == sum(len(d) for d in parts) and summary.n_missing == 0
    assert stored(tmp_path / "async.sqlite").equals(stored(tmp_path / "sync.sqlite"))
    with TripletStore.open(tmp_path / "async.sqlite") as store:
        latency = store.judgments()["latency_s"]
    assert (latency >= 0).all()  # each trial keeps its own request times


class _AsyncSimilarity:
    """An AsyncAgent (no judge method) answering like a SimilarityAgent, one triplet per request."""

    def __init__(self, *args) -> None:
        self._inner = SimilarityAgent(*args)
        self.name, self.model, self.prompt_hash = self._inner.name, self._inner.model, None

    async def ajudge(self, shown):
        return self._inner.judge([shown])[0]


class _FailingAgent(SimilarityAgent):
    """Fails on any batch showing ``bad_item`` (a bug or a dead model, from the runner's view)."""

    def __init__(self, *args, bad_item: str, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.bad_item = bad_item

    def judge(self, shown, keys=None):
        if any(self.bad_item in row for row in shown):
            raise RuntimeError(f"agent refuses triplets with {self.bad_item}")
        return super().judge(shown)


# Ray workers cannot import this test module: ship its classes by value
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


def test_worker_count_follows_the_resources_each_worker_needs(local_ray, tmp_path):
    from oddoneout.collect.ray_executor import _cluster_slots

    assert _cluster_slots(ray, {}) == 2  # two CPUs, one each
    assert _cluster_slots(ray, {"num_cpus": 0.5}) == 4
    for impossible in ({"num_gpus": 1}, {"resources": {"vllm_node": 1}}, {"num_cpus": 3}):
        with pytest.raises(InputError, match="cannot run one worker"):
            _cluster_slots(ray, impossible)
    with pytest.raises(InputError, match="GPU"):
        collect_ray(
            random_design(ITEMS, 10, seed=0), AGENT_FACTORY, tmp_path / "no.sqlite", worker_options={"num_gpus": 1}
        )
