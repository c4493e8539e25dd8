"""Each stage checks what it reads: a stale, foreign or orphaned input is refused in one line, never used."""

import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
from synthetic_study import synthetic_study_config

from oddoneout.collect.designs import random_design
from oddoneout.collect.runner import collect
from oddoneout.collect.store import TripletStore
from oddoneout.errors import InputError
from oddoneout.pipeline import run_study
from oddoneout.pipeline.checks import StaleInputError
from oddoneout.study_folder import StudyFolder

CONFIG = synthetic_study_config(
    "checks", "n_triplets = 3000\nrepeated_triplets = 30\nn_repeats = 2\nexhaustive_items = 8", l1=0.05, n_bootstrap=20
)
STAGES = ("collect", "fit", "evaluate")


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("checks")
    config = root / "study.toml"
    config.write_text(CONFIG)
    run_study(config, root / "done", stages=STAGES)
    return config, root / "done"


@pytest.fixture
def copy(study, tmp_path):
    config, done = study
    out = tmp_path / "out"
    shutil.copytree(done, out)
    return config, out


def test_a_complete_study_passes_its_checks_again(copy):
    config, out = copy
    run_study(config, out, stages=("fit", "evaluate"))


def test_an_export_beside_a_corrupt_store_is_refused(copy):
    config, out = copy
    store = StudyFolder(out).system("mllm").store
    data = bytearray(store.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 4096] = os.urandom(4096)
    store.write_bytes(bytes(data))
    with pytest.raises(StaleInputError, match="mllm.sqlite cannot be read .* export mllm.parquet cannot be trusted"):
        run_study(config, out, stages=("fit",))


def test_an_export_older_than_its_store_is_refused(copy):
    config, out = copy
    files = StudyFolder(out).system("mllm")
    from oddoneout.agents.similarity import SimilarityAgent
    from oddoneout.stimuli import StimulusSet

    ids = StimulusSet.load(StudyFolder(out).stimuli).item_ids
    with TripletStore.open(files.store) as store:
        agent = SimilarityAgent(np.eye(len(ids), 3) + 1.0, ids, name=store.agent)
        agent.model = store.model
        collect(random_design(ids, 50, seed=99, name="extra"), agent, store, progress=False)
    with pytest.raises(StaleInputError, match=r"older than its store \(3\d+ judgments exported, 3\d+ stored\)"):
        run_study(config, out, stages=("evaluate",))


def test_a_smaller_older_design_is_refused_until_collected(copy):
    config, out = copy
    bigger = {"design": {"n_triplets": 5000}}
    with pytest.raises(StaleInputError, match="3000 of the 5000 trials of design 'random' are collected: run collect"):
        run_study(config, out, stages=("fit",), overrides=bigger)
    run_study(config, out, stages=STAGES, overrides=bigger)  # collect resumes, then the checks pass


def test_trials_of_another_seed_are_refused(copy):
    config, out = copy
    with pytest.raises(StaleInputError, match=r"\d+ trials of design 'random' are not in the config's design"):
        run_study(config, out, stages=("fit",), overrides={"study": {"seed": 5}})


def test_a_split_from_another_fit_is_refused(copy, tmp_path):
    config, out = copy
    files = StudyFolder(out).system("mllm")
    test = np.load(files.test)
    np.save(files.test, test[::-1][: len(test) - 1])
    with pytest.raises(StaleInputError, match="test split of 'mllm' is not the one its embedding was fitted beside"):
        run_study(config, out, stages=("evaluate",))


def test_the_command_line_says_it_in_one_line(copy):
    config, out = copy
    result = subprocess.run(
        [sys.executable, "-m", "oddoneout.cli", "run", str(config), "--out", str(out), "--stage", "fit",
         "--set", "design.n_triplets=4000"],
        capture_output=True, text=True, env={**os.environ, "ODDONEOUT_PROGRESS": "0"},
    )  # fmt: skip
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "run collect" in lines[0], result.stderr
    assert issubclass(StaleInputError, InputError)


def test_a_served_system_is_fitted_while_people_are_still_answering(tmp_path, caplog):
    """People answer over weeks: a human system's partial design is fitted (and logged), not refused."""
    from oddoneout.collect.leases import LeaseBook
    from oddoneout.config import load_config
    from oddoneout.pipeline.collect import study_designs
    from oddoneout.stimuli import StimulusSet

    config = tmp_path / "study.toml"
    config.write_text(CONFIG + '[systems.people]\nagent = "human"\n')
    out = tmp_path / "out"
    run_study(config, out, stages=("stimuli",), systems=["mllm"])
    ids = StimulusSet.load(StudyFolder(out).stimuli).item_ids
    designs = study_designs(load_config(config), ids, "people")
    with TripletStore(StudyFolder(out).system("people").store, "people", "human", ids) as store:
        book = LeaseBook(store, designs, lease_seconds=60.0)
        session = book.open_session("s1", n_trials=600, completion_code="C")
        for trial in book.lease(session).trials:
            book.answer(session, trial.key, choice=trial.position % 3, rt_ms=900.0, input="click")
    run_study(config, out, stages=("collect", "fit"), systems=["people"])
    # a session gets its share of every design: each partial design is logged with its count
    logged = re.findall(
        r"(\d+) of the (\d+) trials of design '(\w+)' are collected \(people are still answering\)", caplog.text
    )
    assert {design for _, _, design in logged} >= {"random"}
    assert sum(int(count) for count, _, _ in logged) == 600
    assert StudyFolder(out).system("people").embedding.is_file()
