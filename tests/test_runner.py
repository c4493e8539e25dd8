"""The resumable runner: asks only what is missing, commits batch by batch, survives SIGKILL."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from oddoneout.agents.base import Answer
from oddoneout.agents.similarity import SimilarityAgent
from oddoneout.collect.designs import concat_designs, random_design, repeated_design
from oddoneout.collect.runner import collect
from oddoneout.collect.store import TripletStore, read_judgments, read_judgments_as_triplets
from oddoneout.errors import InputError

sys.path.insert(0, str(Path(__file__).parent))
from collector_process import kill_once_stored, load_script  # noqa: E402

ITEMS = [f"v{i:02d}" for i in range(25)]
SLOW_SCRIPT = Path(__file__).with_name("collect_slowly.py")


class RecordingAgent(SimilarityAgent):
    """A similarity agent that remembers every triplet it was asked, and can fail on one call."""

    def __init__(self, fail_on_call: int | None = None, n_answers: int | None = None) -> None:
        super().__init__(np.random.default_rng(0).normal(size=(len(ITEMS), 3)), ITEMS, name="rec")
        self.asked: list[tuple[str, str, str]] = []
        self.calls = 0
        self.fail_on_call = fail_on_call
        self.n_answers = n_answers

    def judge(self, shown, keys=None):
        self.calls += 1
        if self.calls == self.fail_on_call:
            raise ConnectionError("the model went away")
        self.asked.extend(shown)
        answers = super().judge(shown, keys)
        return answers if self.n_answers is None else answers[: self.n_answers]


def open_store(tmp_path, agent):
    return TripletStore(tmp_path / "rec.sqlite", agent.name, agent.model, ITEMS)


def test_collect_stores_every_trial_once_and_a_second_call_asks_nothing(tmp_path):
    design = random_design(ITEMS, 120, seed=0, n_orderings=2)
    agent = RecordingAgent()
    with open_store(tmp_path, agent) as store:
        summary = collect(design, agent, store, batch_size=50, progress=False)
        assert (summary.n_design, summary.n_already_stored, summary.n_asked) == (240, 0, 240)
        assert summary.counts["ok"] == 240 and summary.n_missing == 0
        assert agent.calls == 5  # 50 + 50 + 50 + 50 + 40
        again = collect(design, agent, store, batch_size=50, progress=False)
        assert (again.n_already_stored, again.n_asked) == (240, 0)
        assert agent.calls == 5
        frame = store.judgments()
    assert agent.asked == design.shown()  # asked in design order
    assert list(zip(frame["design"], frame["triplet_index"], frame["ordering"], frame["repeat"])) == design.keys()


def test_resume_asks_only_the_missing_trials(tmp_path):
    design = random_design(ITEMS, 100, seed=1)
    first = RecordingAgent()
    with open_store(tmp_path, first) as store:
        summary = collect(design, first, store, batch_size=16, progress=False, max_requests=37)
        assert summary.n_asked == 37 and summary.n_missing == 63
    second = RecordingAgent()
    with open_store(tmp_path, second) as store:
        summary = collect(design, second, store, batch_size=16, progress=False)
        assert (summary.n_already_stored, summary.n_asked, summary.n_missing) == (37, 63, 0)
    assert first.asked == design.shown()[:37]
    assert second.asked == design.shown()[37:]


def test_an_agent_exception_is_raised_after_committing_earlier_batches(tmp_path):
    design = random_design(ITEMS, 100, seed=2)
    failing = RecordingAgent(fail_on_call=3)
    with open_store(tmp_path, failing) as store:
        with pytest.raises(ConnectionError, match="went away") as info:
            collect(design, failing, store, batch_size=20, progress=False)
        assert "call collect again to resume" in "\n".join(info.value.__notes__)
        assert len(store) == 40
        assert store.counts()["error"] == 0  # nothing guessed, nothing recorded for the failed batch
        resumed = RecordingAgent()
        summary = collect(design, resumed, store, batch_size=20, progress=False)
        assert (summary.n_already_stored, summary.n_asked) == (40, 60)
        assert resumed.asked == design.shown()[40:]


def test_agent_must_match_the_store_and_answer_every_trial(tmp_path):
    design = random_design(ITEMS, 10, seed=0)
    agent = RecordingAgent()
    with TripletStore(tmp_path / "other.sqlite", "someone_else", agent.model, ITEMS) as store:
        with pytest.raises(InputError, match="cannot take answers of agent 'rec'"):
            collect(design, agent, store, progress=False)
    short = RecordingAgent(n_answers=3)
    with open_store(tmp_path, short) as store:
        with pytest.raises(RuntimeError, match="returned 3 answers for 10 trials"):
            collect(design, short, store, progress=False)
        assert len(store) == 0


def test_failed_answers_are_stored_with_their_status(tmp_path):
    class Refuser(RecordingAgent):
        def judge(self, shown, keys=None):
            answers = super().judge(shown, keys)
            return [Answer(None, status="refused", raw="no") if i % 4 == 0 else a for i, a in enumerate(answers)]

    design = random_design(ITEMS, 40, seed=3)
    agent = Refuser()
    with open_store(tmp_path, agent) as store:
        summary = collect(design, agent, store, batch_size=8, progress=False)
        assert summary.counts["refused"] == 10 and summary.counts["ok"] == 30
        # refused trials are stored: they are not asked again
        assert collect(design, agent, store, progress=False).n_asked == 0


def test_several_designs_and_a_progress_bar(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ODDONEOUT_PROGRESS", "1")
    designs = concat_designs(random_design(ITEMS, 30, seed=0), repeated_design(ITEMS, 10, 3, seed=1))
    agent = RecordingAgent()
    with open_store(tmp_path, agent) as store:
        summary = collect(designs, agent, store, batch_size=7, progress=True, max_requests=45)
        assert summary.n_design == 60 and summary.n_asked == 45
        assert collect(designs, agent, store, batch_size=7, progress=False).n_asked == 15
    frame = read_judgments(tmp_path / "rec.sqlite")
    assert frame.groupby("design").size().to_dict() == {"random": 30, "repeats": 30}
    assert "rec" in capsys.readouterr().err


def test_sigkill_mid_collection_then_resume_stores_every_trial_exactly_once(tmp_path):
    path = tmp_path / "slow.sqlite"
    n_triplets, batch_size = 2000, 10
    process = subprocess.Popen(
        [sys.executable, str(SLOW_SCRIPT), str(path), str(n_triplets), str(batch_size), "0.02"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    at_kill = kill_once_stored(process, path, 5 * batch_size)
    assert 0 < at_kill < n_triplets
    assert at_kill % batch_size == 0  # whole batches only: the one in flight is lost, not half-stored

    slow = load_script(SLOW_SCRIPT)
    design = slow.random_design(slow.ITEMS, n_triplets, seed=0)
    agent = slow.SimulatedAgent(slow.features(), slow.ITEMS, name="slow", model="simulated")
    with TripletStore(path, "slow", "simulated", slow.ITEMS) as store:
        assert len(store.missing(design)) == n_triplets - at_kill
        summary = collect(design, agent, store, batch_size=500, progress=False)
        frame = store.judgments()
    assert summary.n_already_stored == at_kill and summary.n_asked == n_triplets - at_kill
    keys = list(zip(frame["design"], frame["triplet_index"], frame["ordering"], frame["repeat"]))
    assert len(keys) == len(set(keys)) == n_triplets
    assert set(keys) == set(design.keys())
    assert (frame["status"] == "ok").all()
    # the killed-and-resumed store holds the answers of one uninterrupted run
    with TripletStore(tmp_path / "whole.sqlite", "slow", "simulated", slow.ITEMS) as store:
        collect(design, agent, store, batch_size=n_triplets, progress=False)
    assert stored_choices(path).equals(stored_choices(tmp_path / "whole.sqlite"))


def stored_choices(path):
    with TripletStore.open(path) as store:
        frame = store.judgments()
    return frame.set_index(["design", "triplet_index", "ordering", "repeat"])["choice"].sort_index()


def test_a_stochastic_agent_answers_by_key_not_by_asking_order(tmp_path):
    """Batch size, a resume, the asking order and a shuffled design give the store of one uninterrupted run."""
    from oddoneout.agents.simulated import SimulatedAgent

    design = concat_designs(random_design(ITEMS, 400, seed=4), repeated_design(ITEMS, 30, 4, seed=5))

    def run(path, parts, batch_size, seed=9):
        agent = SimulatedAgent(np.abs(np.random.default_rng(1).normal(size=(len(ITEMS), 3))), ITEMS, "sim", seed=seed)
        with TripletStore(path, "sim", "simulated", ITEMS) as store:
            for part in parts:
                collect(design, agent, store, batch_size=batch_size, progress=False, max_requests=part)
        return stored_choices(path)

    reference = run(tmp_path / "a.sqlite", [None], 10_000)
    assert len(reference) == sum(len(d) for d in design)
    assert run(tmp_path / "b.sqlite", [None], 7).equals(reference)
    assert run(tmp_path / "c.sqlite", [13, 250, None], 64).equals(reference)  # interrupted twice, resumed
    shuffled = [d.subset(np.random.default_rng(2).permutation(len(d))) for d in design]
    agent = SimulatedAgent(np.abs(np.random.default_rng(1).normal(size=(len(ITEMS), 3))), ITEMS, "sim", seed=9)
    with TripletStore(tmp_path / "d.sqlite", "sim", "simulated", ITEMS) as store:
        collect(shuffled[::-1], agent, store, batch_size=33, progress=False)
    assert stored_choices(tmp_path / "d.sqlite").equals(reference)
    # and what a fit reads (hence its split) does not depend on the order the answers were stored in
    shuffled_read = read_judgments_as_triplets(tmp_path / "d.sqlite")
    assert np.array_equal(shuffled_read.indices, read_judgments_as_triplets(tmp_path / "a.sqlite").indices)
    # the answers are still draws: another seed changes many, and repeats of a triplet differ
    other = run(tmp_path / "e.sqlite", [None], 10_000, seed=10)
    assert (other != reference).mean() > 0.2
    repeats = reference.loc["repeats"].groupby(level="triplet_index").nunique()
    assert (repeats > 1).mean() > 0.3


@pytest.mark.slow
def test_a_million_trials_collect_export_and_read_back(tmp_path):
    ids = [f"{i:04d}" for i in range(1, 2186)]
    features = np.random.default_rng(0).random((len(ids), 34))
    design = random_design(ids, 1_000_000, seed=0)
    agent = SimilarityAgent(features, ids, name="human_category", center=True)
    with TripletStore(tmp_path / "big.sqlite", agent.name, agent.model, ids) as store:
        summary = collect(design, agent, store, progress=False)
        assert summary.n_asked == 1_000_000 and summary.counts["ok"] == 1_000_000
        assert collect(design, agent, store, progress=False).n_asked == 0
        exported = store.export_parquet(tmp_path / "big.parquet")
    triplets = read_judgments_as_triplets(exported)
    assert len(triplets) == 1_000_000 and triplets.item_ids == tuple(ids)
    expected = agent.choices(np.sort(triplets.indices, axis=1))
    # the stored odd one out is the agent's answer for the same unordered triplet
    odd = np.take_along_axis(np.sort(triplets.indices, axis=1), expected[:, None], axis=1)[:, 0]
    assert np.array_equal(odd, triplets.indices[:, 2])
