"""Adaptive collection in rounds: recorded selections, resume after SIGKILL, the holdout, trial types, async runner."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from oddoneout.agents.simulated import SimulatedAgent
from oddoneout.collect import adaptive
from oddoneout.collect.adaptive import (
    ADAPTIVE_DESIGN,
    HOLDOUT_DESIGN,
    AdaptivePlan,
    AdaptiveRun,
    collect_adaptive,
    collect_adaptive_remote,
    recorded_rounds,
    select_round,
    training_trials,
)
from oddoneout.collect.informativeness import base_rows
from oddoneout.collect.runner import collect
from oddoneout.collect.store import TripletStore, read_judgments
from oddoneout.config import load_config
from oddoneout.errors import InputError
from oddoneout.triplets import ODD_ONE_OUT, trial_type_from_spec

sys.path.insert(0, str(Path(__file__).parent))
from collector_process import kill_once_stored, load_script  # noqa: E402

ITEMS = [f"i{i:02d}" for i in range(14)]
SCRIPT = Path(__file__).with_name("collect_adaptively.py")
KEY = ["design", "triplet_index", "ordering", "repeat"]


def _agent(name="sim", items=ITEMS):
    features = np.random.default_rng(0).gamma(1.0, 1.0, size=(len(items), 4))
    return SimulatedAgent(features, items, name=name, model="m")


def _spy(agent):
    """Record the keys of every trial ``agent`` is asked."""
    asked: list[tuple] = []
    judge = agent.judge

    def judge_and_record(shown, keys=None, **kwargs):
        asked.extend(keys)
        return judge(shown, keys, **kwargs)

    agent.judge = judge_and_record
    return asked


def _base(plan, ids) -> np.ndarray:
    """Rows of item ids (an array, or a frame of judgments' shown triplets) as base trials of indices."""
    if not isinstance(ids, np.ndarray):
        ids = ids[["item_0", "item_1", "item_2"]].to_numpy(str)
    index = {item: i for i, item in enumerate(plan.item_ids)}
    return base_rows(np.vectorize(index.get)(ids), plan.trial_type)


def _rows(path, sql):
    connection = sqlite3.connect(path)
    try:
        return connection.execute(sql).fetchall()
    finally:
        connection.close()


def test_rounds_are_recorded_before_asking_and_are_the_trials_asked(tmp_path, monkeypatch):
    plan = AdaptivePlan(tuple(ITEMS), seed=1, n_rounds=3, round_size=40, initial=120, holdout=30, n_orderings=2)
    fitted_on = []
    fit = adaptive.fit_selection_model

    def spy_fit(trials, seed=0):
        fitted_on.append(trials)
        return fit(trials, seed=seed)

    monkeypatch.setattr(adaptive, "fit_selection_model", spy_fit)
    agent = _agent()
    asked = _spy(agent)
    path = tmp_path / "sim.sqlite"
    with TripletStore(path, "sim", "m", ITEMS) as store:
        collect_adaptive(plan, agent, store, batch_size=25, progress=False)
    judgments = read_judgments(path)
    assert len(judgments) == len(asked) == plan.n_triplets * 2 == 2 * (30 + 120 + 3 * 40)
    assert judgments.groupby("design").size().to_dict() == {ADAPTIVE_DESIGN: 2 * 240, HOLDOUT_DESIGN: 60}

    rounds = recorded_rounds(path, plan)
    assert [r.round for r in rounds] == [1, 2, 3]
    adaptive_rows = judgments[judgments["design"] == ADAPTIVE_DESIGN]
    for r in rounds:
        assert r.seed == plan.round_seed(r.round) and r.criterion == "information_gain"
        assert len(r.model_hash) >= 16 and r.first_index == 120 + 40 * (r.round - 1)
        assert r.n_answers == 2 * (120 + 40 * (r.round - 1))  # every answer before the round, the holdout's not
        assert np.all(np.diff(r.scores) <= 1e-12)  # best first
        # the round's stored trials show exactly its recorded base trials, each in two orderings
        mine = adaptive_rows[adaptive_rows["triplet_index"].between(r.first_index, r.first_index + 39)]
        assert len(mine) == 80
        shown = _base(plan, mine)
        recorded = _base(plan, r.items)
        order = mine["triplet_index"].to_numpy() - r.first_index
        assert np.array_equal(shown, recorded[order])
    # the selecting models never saw the holdout, and no base trial is asked in two places
    holdout = {tuple(row) for row in _base(plan, judgments[judgments["design"] == HOLDOUT_DESIGN])}
    assert len(fitted_on) == 3
    for trials, r in zip(fitted_on, rounds):
        assert len(trials) == r.n_answers
        seen = {tuple(row) for part in trials.parts for row in base_rows(part.indices, part.trial_type)}
        assert seen and not seen & holdout
    bases = [tuple(row) for row in _base(plan, adaptive_rows.drop_duplicates("triplet_index"))]
    assert len(set(bases)) == 240 and not set(bases) & holdout
    # recorded before asking: every round's record precedes its first answer
    for r in rounds:
        started = adaptive_rows[adaptive_rows["triplet_index"] >= r.first_index]["started_at"].min()
        assert datetime.fromisoformat(r.created_at) <= datetime.fromisoformat(str(started))


def test_judgments_of_excluded_sessions_are_left_out_of_the_selection(tmp_path):
    from oddoneout.collect.designs import encode_keys

    plan = AdaptivePlan(tuple(ITEMS), seed=1, n_rounds=1, round_size=40, initial=120, holdout=30)
    path = tmp_path / "sim.sqlite"
    with TripletStore(path, "sim", "m", ITEMS) as store:
        collect(list(plan.first_designs()), _agent(), store, progress=False)
    everything = training_trials(path, plan)
    assert len(everything) == 120  # round 0, not the holdout
    judgments = read_judgments(path)
    dropped = judgments[judgments["design"] == ADAPTIVE_DESIGN].iloc[:25]
    codes = encode_keys(*(dropped[column].to_numpy() for column in KEY[1:]))
    kept = training_trials(path, plan, excluded={ADAPTIVE_DESIGN: codes})
    assert len(kept) == 95
    left_out = {tuple(row) for row in _base(plan, dropped)}
    seen = {tuple(row) for part in kept.parts for row in base_rows(part.indices, part.trial_type)}
    assert not seen & left_out
    recorded = select_round(path, plan, 1, excluded={ADAPTIVE_DESIGN: codes})
    assert recorded.n_answers == 95


def test_a_killed_run_resumes_without_reasking_or_changing_recorded_rounds(tmp_path):
    path = tmp_path / "killed.sqlite"
    script = load_script(SCRIPT)
    plan = script.PLAN
    n_first = 2 * (plan.holdout + plan.initial)
    round_trials = 2 * plan.round_size
    process = subprocess.Popen(
        [sys.executable, str(SCRIPT), str(path), "0.3"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    # killed halfway through round 2 (after its first batch of 50 of 100)
    at_kill = kill_once_stored(process, path, n_first + round_trials + script.BATCH_SIZE)
    assert n_first + round_trials < at_kill < n_first + 2 * round_trials
    rounds_before = _rows(path, "SELECT * FROM adaptive_rounds ORDER BY round")
    trials_before = _rows(path, "SELECT * FROM adaptive_trials ORDER BY triplet_index")
    plan_before = _rows(path, "SELECT plan FROM adaptive_plan")
    answered = set(_rows(path, f"SELECT {', '.join(KEY)} FROM judgments"))
    assert [row[0] for row in rounds_before] == [1, 2]  # round 2 recorded before it was asked
    answers_before = _rows(path, f"SELECT {', '.join(KEY)}, choice FROM judgments ORDER BY {', '.join(KEY)}")

    agent = script.make_agent()
    asked = _spy(agent)
    with TripletStore(path, script.NAME, script.MODEL, script.ITEMS) as store:
        collect_adaptive(plan, agent, store, batch_size=script.BATCH_SIZE, progress=False)
    assert asked and not set(asked) & answered  # no answered key asked again
    assert len(asked) == len(set(asked))
    total = 2 * plan.n_triplets
    assert len(answered) + len(asked) == total
    assert _rows(path, "SELECT count(*) FROM judgments")[0][0] == total
    after = _rows(path, "SELECT * FROM adaptive_rounds ORDER BY round")
    assert after[:2] == rounds_before and [row[0] for row in after] == [1, 2, 3]
    assert _rows(path, "SELECT * FROM adaptive_trials ORDER BY triplet_index")[: len(trials_before)] == trials_before
    assert _rows(path, "SELECT plan FROM adaptive_plan") == plan_before
    still = _rows(path, f"SELECT {', '.join(KEY)}, choice FROM judgments ORDER BY {', '.join(KEY)}")
    assert set(answers_before) <= set(still)  # stored answers untouched
    # the unanswered half of round 2 was asked from its record, before round 3 was selected
    round_2 = {key for key in asked if key[0] == ADAPTIVE_DESIGN and after[1][1] <= key[1] < after[2][1]}
    assert len(round_2) == total - len(answered) - round_trials


@pytest.mark.parametrize("spec", ["anchor", "ranked:4:2"])
def test_reference_trial_types_select_reference_first_options_ascending(tmp_path, spec):
    kind = trial_type_from_spec(spec)
    plan = AdaptivePlan(tuple(ITEMS), seed=2, n_rounds=2, round_size=30, initial=100, holdout=20, trial_type=kind)
    path = tmp_path / "ref.sqlite"
    with TripletStore(path, "sim", "m", ITEMS) as store:
        collect_adaptive(plan, _agent(), store, progress=False)
        assert len(store) == plan.n_triplets
    rounds = recorded_rounds(path, plan)
    assert [len(r.items) for r in rounds] == [30, 30]
    index = {item: i for i, item in enumerate(ITEMS)}
    for r in rounds:
        rows = np.vectorize(index.get)(r.items)
        assert rows.shape[1] == kind.n_shown
        assert np.array_equal(rows, base_rows(rows, kind))  # options ascending after the reference
    judgments = read_judgments(path)
    assert set(judgments["trial_type"]) == {kind.spec} and (judgments["status"] == "ok").all()


class _AsyncSimulated:
    """A remote-style agent answering like a simulated one after ``latency`` seconds."""

    prompt_hash = "p"

    def __init__(self, agent: SimulatedAgent, latency: float) -> None:
        self.agent, self.latency = agent, latency
        self.name, self.model, self.trial_types = agent.name, agent.model, agent.trial_types
        self.n_calls = 0

    async def ajudge(self, shown, trial_type=ODD_ONE_OUT):
        self.n_calls += 1
        await asyncio.sleep(self.latency)
        return self.agent.judge([shown], None, trial_type)[0]


def test_the_async_runner_selects_the_next_round_while_requests_are_in_flight(tmp_path):
    plan = AdaptivePlan(tuple(ITEMS), seed=4, n_rounds=2, round_size=30, initial=100, holdout=20)
    path = tmp_path / "remote.sqlite"
    # requests long enough that the selection thread starts while the last ones are in flight, even on a loaded machine
    agent = _AsyncSimulated(_agent(), latency=0.4)
    with TripletStore(path, "sim", "m", ITEMS) as store:
        summary = collect_adaptive_remote(plan, agent, store, concurrency=8, flush_every=1, progress=False)
        assert summary.n_asked == plan.n_triplets == agent.n_calls and summary.n_missing == 0
        assert len(store) == plan.n_triplets
    judgments = read_judgments(path)
    rounds = recorded_rounds(path, plan)
    assert [r.round for r in rounds] == [1, 2]
    for r in rounds:
        before = judgments[(judgments["design"] == ADAPTIVE_DESIGN) & (judgments["triplet_index"] < r.first_index)]
        # chosen once the previous trials were handed out, not answered: the last requests (8 in flight, and
        # answers on their way to the writer thread) were not in the store yet
        assert len(before) - 2 * 8 <= r.n_answers < len(before)
        selection_started = datetime.fromisoformat(r.created_at).timestamp() - r.selection_seconds
        finished = [datetime.fromisoformat(str(t)).timestamp() for t in before["finished_at"]]
        assert max(finished) > selection_started  # those requests completed while the round was being chosen


def test_resume_refuses_another_plan_and_hands_out_recorded_rounds(tmp_path):
    plan = AdaptivePlan(tuple(ITEMS), seed=1, n_rounds=1, round_size=20, initial=80, holdout=20)
    path = tmp_path / "sim.sqlite"
    with TripletStore(path, "sim", "m", ITEMS) as store:
        collect_adaptive(plan, _agent(), store, progress=False)
    with pytest.raises(InputError, match="other settings"):
        AdaptiveRun(AdaptivePlan(tuple(ITEMS), seed=1, n_rounds=1, round_size=20, initial=80, holdout=21), path)
    longer = AdaptivePlan(tuple(ITEMS), seed=1, n_rounds=2, round_size=20, initial=80, holdout=20)
    run = AdaptiveRun(longer, path)
    assert (
        run.next_design().key_codes().tolist() == plan.round_design(recorded_rounds(path, plan)[0]).key_codes().tolist()
    )
    assert len(recorded_rounds(path, plan)) == 1  # round 1 read back, not selected again
    assert len(longer.adaptive_design(path)) == 100


def _config(tmp_path, design: str, executor: str = "local"):
    path = tmp_path / "study.toml"
    path.write_text(
        "[stimuli]\nn_items = 12\n"
        f"[design]\nn_triplets = 200\nrepeated_triplets = 0\n{design}\n"
        f'[collect]\nexecutor = "{executor}"\n'
        "[systems.a]\nagent = 'ratings'\nratings = ['category']\n"
    )
    return load_config(path)


@pytest.mark.parametrize(
    "design, message",
    [
        ('selection = "greedy"', "not one of"),
        ('selection = "adaptive"\nadaptive_criterion = "variance"', "not one of"),
        ('selection = "adaptive"\nadaptive_rounds = 0', "adaptive_rounds"),
        ('selection = "adaptive"\ntriplets = "list.txt"', "remove `triplets`"),
    ],
)
def test_bad_adaptive_settings_get_clear_errors(tmp_path, design, message):
    with pytest.raises(InputError, match=message):
        _config(tmp_path, design)


def test_a_budget_too_small_for_the_rounds_is_refused(tmp_path):
    from oddoneout.pipeline.collect import adaptive_plan

    config = _config(tmp_path, 'selection = "adaptive"\nadaptive_rounds = 5\nadaptive_round_size = 40')
    with pytest.raises(InputError, match="cannot hold a holdout of 20"):
        adaptive_plan(config, ITEMS)
    plan = adaptive_plan(_config(tmp_path, 'selection = "adaptive"\nadaptive_rounds = 4'), ITEMS)
    assert (plan.holdout, plan.round_size, plan.n_triplets) == (20, 36, 200)  # test_fraction 0.1 held out


def test_random_studies_keep_their_config_hash(tmp_path):
    assert _config(tmp_path, "").hash == _config(tmp_path, 'selection = "random"\nholdout_triplets = 0').hash


def test_a_study_fits_on_the_adaptive_rounds_and_tests_on_the_holdout(tmp_path):
    from oddoneout.pipeline import run_study
    from oddoneout.study_folder import StudyFolder
    from oddoneout.triplets import Triplets

    config = tmp_path / "study.toml"
    config.write_text(
        '[study]\nname = "adaptive"\nseed = 0\n'
        '[stimuli]\nsource = "synthetic"\nn_items = 20\nn_subjects = 1\nn_runs = 6\nvoxels_per_roi = 10\n'
        '[design]\nn_triplets = 600\nrepeated_triplets = 0\nselection = "adaptive"\nadaptive_rounds = 2\n'
        "holdout_triplets = 60\n"
        '[systems.mllm]\nagent = "simulated"\nfeatures = "synthetic:mllm"\n'
        '[embedding]\nmethod = "spose"\nn_dims = 10\nl1 = 0.001\nmax_epochs = 30\n[evaluation]\nn_bootstrap = 10\n'
    )
    out = tmp_path / "out"
    run_study(config, out, stages=("stimuli", "collect", "fit", "evaluate"))
    files = StudyFolder(out).system("mllm")
    judgments = read_judgments(files.export)
    assert judgments.groupby("design").size().to_dict() == {ADAPTIVE_DESIGN: 540, HOLDOUT_DESIGN: 60}
    assert len(_rows(files.store, "SELECT * FROM adaptive_rounds")) == 2
    test, train = np.load(files.test), np.load(files.train)
    assert len(test) == 60 and len(train) == 540  # the holdout is the test set, every adaptive trial trains
    holdout = judgments[judgments["design"] == HOLDOUT_DESIGN]
    items = files.items.read_text().split()
    expected = Triplets(
        items,
        np.vectorize({item: i for i, item in enumerate(items)}.get)(
            holdout[["item_0", "item_1", "item_2"]].to_numpy(str)
        ),
    )
    assert {tuple(sorted(row)) for row in test.tolist()} == {tuple(sorted(row)) for row in expected.indices.tolist()}
    # a second run resumes: nothing asked, no round selected again
    run_study(config, out, stages=("collect",))
    assert len(_rows(files.store, "SELECT * FROM adaptive_rounds")) == 2 and len(read_judgments(files.store)) == 600


def test_oddoneout_adapt_records_the_next_round_of_a_served_system(tmp_path):
    from serve_study import write_study
    from typer.testing import CliRunner

    from oddoneout.cli import app
    from oddoneout.collect.leases import LeaseBook
    from oddoneout.collect.runner import collect
    from oddoneout.pipeline.collect import adaptive_plan, study_designs
    from oddoneout.study_folder import StudyFolder

    config = write_study(tmp_path / "study", n_triplets=200, n_items=12)
    config.write_text(
        config.read_text().replace(
            "[design]\n", '[design]\nselection = "adaptive"\nadaptive_rounds = 2\nholdout_triplets = 20\n'
        )
    )
    loaded = load_config(config)
    items = [f"item{i:02d}" for i in range(12)]
    first = study_designs(loaded, items, "people")
    assert [d.name for d in first] == [HOLDOUT_DESIGN, ADAPTIVE_DESIGN] and len(first[1]) == 180 - 2 * 60
    out = tmp_path / "out"
    store_path = StudyFolder(out).system("people").store
    with TripletStore(store_path, "people", "m", items) as store:  # people answered the served designs
        collect(first, _agent("people", items), store, progress=False)
    runner = CliRunner()
    for expected in ("round 1 recorded", "round 2 recorded", "every planned round"):
        result = runner.invoke(app, ["adapt", str(config), "--out", str(out)])
        assert result.exit_code == 0 and expected in result.output, result.output
        if expected == "round 1 recorded":  # the next server start leases round 1 beside what was answered
            grown = study_designs(loaded, items, "people", store_path)
            assert len(grown[1]) == 120 and grown[1].key_codes()[:60].tolist() == first[1].key_codes().tolist()
            with TripletStore(store_path, "people", "m", items) as store:
                assert len(store.missing(grown[1])) == 60
                LeaseBook(store, grown, lease_seconds=60.0)  # accepts every stored answer
                collect(grown, _agent("people", items), store, progress=False)
    rounds = recorded_rounds(store_path, adaptive_plan(loaded, items, "people"))
    assert [r.n_answers for r in rounds] == [60, 120]  # the holdout's answers never used
