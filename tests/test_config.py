"""Study configs: defaults, validation of typos and agents, built-in study."""

import tomllib
from pathlib import Path

import pytest

from oddoneout.config import dump_config, load_config
from oddoneout.errors import InputError
from oddoneout.studies import builtin_config


def test_builtin_synthetic_config_loads_with_all_systems():
    config = load_config(builtin_config("synthetic"))
    assert list(config.systems) == ["mllm", "llm", "human_category", "human_dimension", "human_concat"]
    assert config.study.name == "synthetic-emotion"
    assert config.systems["human_dimension"].settings.center is True
    assert config.embedding.test_fraction == 0.1  # default kept where the file is silent on others
    assert config.neural.inner_folds == 5


def test_overrides_change_the_hash():
    base = load_config(builtin_config("synthetic"))
    seeded = load_config(builtin_config("synthetic"), {"study": {"seed": 5}})
    assert seeded.study.seed == 5 and seeded.hash != base.hash


def test_dump_is_valid_toml_that_reloads_identically(tmp_path):
    config = load_config(builtin_config("synthetic"))
    path = tmp_path / "again.toml"
    path.write_text(dump_config(config))
    assert tomllib.loads(path.read_text())["systems"]["human_concat"]["ratings"] == ["category", "dimension"]
    assert load_config(path).hash == config.hash


@pytest.mark.parametrize(
    "text, message",
    [
        ("[study]\nseeed = 1\n[systems.a]\nagent='ratings'\nratings=['category']\n", "unknown key"),
        ("[studdy]\n", "unknown section"),
        ("[study]\nname='x'\n", "no \\[systems"),
        ("[systems.a]\nagent='telepathy'\n", "not one of"),
        ("[systems.a]\nagent='simulated'\n", "needs `features`"),
        ("[systems.a]\nagent='ratings'\n", "needs `ratings`"),
        ("[study\n", "not valid TOML"),
        ("[scales.big]\ndesign = {n_tripletz = 5}\n[systems.a]\nagent='ratings'\nratings=['category']\n", "n_tripletz"),
    ],
)
def test_bad_configs_get_clear_errors(tmp_path, text, message):
    path = tmp_path / "study.toml"
    path.write_text(text)
    with pytest.raises(InputError, match=message):
        load_config(path)


def test_missing_config_file(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_config(tmp_path / "nope.toml")


# --- typed values, checked at load ---------------------------------------------------------------

RATINGS_SYSTEM = "[systems.a]\nagent = 'ratings'\nratings = ['category']\n"


def _load(tmp_path, text, overrides=None):
    path = tmp_path / "study.toml"
    path.write_text(text)
    return load_config(path, overrides)


@pytest.mark.parametrize(
    "table, message",
    [
        ('[study]\nseed = "x"', r"\[study\] seed: 'x' is not an integer"),
        ("[study]\nseed = 1.5", r"\[study\] seed: 1.5 is not an integer"),
        ("[design]\nn_triplets = true", r"\[design\] n_triplets: True is not an integer"),
        ("[design]\nn_repeats = -1", r"\[design\] n_repeats: -1 is below"),
        ("[design]\nrepeated_triplets = -5", r"\[design\] repeated_triplets: -5 is below"),
        ("[design]\nexhaustive_items = -1", r"\[design\] exhaustive_items: -1 is below"),
        ("[stimuli]\nn_items = 2", r"\[stimuli\] n_items: 2 is below the smallest allowed value, 10"),
        ("[stimuli]\nn_items = 0", r"\[stimuli\] n_items: 0 is below"),
        ("[stimuli]\nn_items = -3", r"\[stimuli\] n_items: -3 is below"),
        ("[embedding]\nmethod = 'spise'", r"\[embedding\] method: 'spise' is not one of \('spose', 'vice'\)"),
        ("[embedding]\nl1 = 'big'", r"\[embedding\] l1: 'big': give a number, a list of numbers or 'auto'"),
        ("[embedding]\ntest_fraction = 1.0", r"\[embedding\] test_fraction: 1.0 must lie strictly between"),
        ("[neural]\nsource = 'fmri'", r"\[neural\] source: 'fmri' is not one of"),
        ("[neural]\nalphas = [1, 0.1, 5]", r"\[neural\] alphas: .* must be \[low, high, count\]"),
        ("[neural]\nvariance_partition = [['a', 'b']]", r"variance_partition: system\(s\) \['b'\] are not in"),
        ("[interpret]\nmap_method = 'pca'", r"\[interpret\] map_method: 'pca' is not one of"),
        ("[collect]\nexecutor = 'slurm'", r"\[collect\] executor: 'slurm' is not one of"),
        ("[report]\ntitel = 'x'", r"unknown key\(s\) \['titel'\] in \[report\]"),
        ("[study]\nname = '../up'", r"\[study\] name: '../up' is used in output paths"),
        ("[neural]\nsubject_names = ['sub/1']", r"\[neural\] subject_names: 'sub/1' is used in output paths"),
    ],
)
def test_bad_values_are_refused_at_load_in_one_line(tmp_path, table, message):
    with pytest.raises(InputError, match=message) as error:
        _load(tmp_path, f"{table}\n{RATINGS_SYSTEM}")
    assert "\n" not in str(error.value) and "study.toml" in str(error.value)


@pytest.mark.parametrize(
    "system, message",
    [
        ("agent = 'ratings'\nratings = ['category']\ntemperature = 2.0", "do not apply to agent 'ratings'"),
        ("agent = 'ratings'\nratings = ['categories']", r"ratings: \['categories'\] is not a list of"),
        ("agent = 'simulated'\nfeatures = 'synthetic:../../x'", "the view name is used in a path"),
        ("agent = 'openai'\nmodel = 'm'", "needs `base_url`"),
        ("agent = 'openai'\nbase_url = 'http://x'", "needs `model`"),
        ("agent = 'openai'\nmodel = 'm'\nbase_url = 'http://x'\nconcurrency = 0", "concurrency: 0 is below"),
        ("agent = 'openai'\nmodel = 'm'\nbase_url = 'http://x'\nconstrained = 'yes'", "constrained: 'yes' is not"),
        ("agent = 'llama'\ninput = 'frames'", "needs agent = 'openai' or 'vllm'"),
        ("agent = 'minilm'\nmax_captions = -1", "max_captions: -1 is below"),
        ("agent = 'minilm'\nmax_capitons = 1", r"unknown key\(s\) \['max_capitons'\] in \[systems.a\]"),
        ("agent = 'ratings'\nratings = ['category']\ndesign = {n_repeats = -2}", r"\[systems.a.design\] n_repeats"),
    ],
)
def test_bad_system_tables_are_refused_at_load(tmp_path, system, message):
    with pytest.raises(InputError, match=message):
        _load(tmp_path, f"[systems.a]\n{system}\n")


def test_overrides_are_checked_like_the_file(tmp_path):
    with pytest.raises(InputError, match=r"\[study\] seed: -1 is below"):
        _load(tmp_path, RATINGS_SYSTEM, {"study": {"seed": -1}})
    with pytest.raises(InputError, match=r"unknown key\(s\) \['n_tripletz'\] in \[design\]"):
        _load(tmp_path, RATINGS_SYSTEM, {"design": {"n_tripletz": 5}})


@pytest.mark.parametrize("name", ["../../../ESCAPED", "/tmp/abs", "a/b", ".hidden", "a b"])
def test_unsafe_system_names_are_refused(tmp_path, name):
    with pytest.raises(InputError, match="is used in output paths"):
        _load(tmp_path, f"[systems.'{name}']\nagent = 'ratings'\nratings = ['category']\n")


@pytest.mark.parametrize("name", ["../../../ESCAPED", "/tmp/abs-escape", "x/y"])
def test_a_run_with_an_unsafe_name_is_refused_and_writes_nothing(tmp_path, name):
    from oddoneout.pipeline import run_study

    work = tmp_path / "work"
    work.mkdir()
    config = work / "study.toml"
    config.write_text(f"[stimuli]\nn_items = 12\n[systems.'{name}']\nagent = 'ratings'\nratings = ['category']\n")
    with pytest.raises(InputError, match="is used in output paths"):
        run_study(config, work / "out" / "deep")
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    assert written == ["work", "work/study.toml"]
    assert not Path("/tmp/abs-escape").exists()


def test_missing_input_files_are_named_before_any_stage_runs(tmp_path):
    from oddoneout.pipeline import run_study

    text = (
        "[stimuli]\nsource = 'items.csv'\n"
        "[systems.a]\nagent = 'similarity'\nfeatures = 'features.parquet'\n"
        "[neural]\nsource = 'npz'\nsubjects = ['sub-1.npz']\n"
    )
    path = tmp_path / "study.toml"
    path.write_text(text)
    with pytest.raises(InputError, match=r"\[stimuli\] source = 'items.csv': not found"):
        run_study(path, tmp_path / "out")
    (tmp_path / "items.csv").write_text("item_id,caption\n")
    with pytest.raises(InputError, match=r"\[systems.a\] features = 'features.parquet': not found"):
        run_study(path, tmp_path / "out")
    (tmp_path / "features.parquet").write_text("")
    with pytest.raises(InputError, match=r"\[neural\] subjects = 'sub-1.npz': not found"):
        run_study(path, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_an_out_that_is_a_file_is_refused(tmp_path):
    from oddoneout.pipeline import run_study

    (tmp_path / "out").write_text("not a folder")
    path = tmp_path / "study.toml"
    path.write_text(RATINGS_SYSTEM)
    with pytest.raises(InputError, match="is a file"):
        run_study(path, tmp_path / "out")


# --- hashes, defaults and the agent registry -----------------------------------------------------


def test_config_hashes_are_those_of_the_untyped_config():
    # hashes of the resolved config as the untyped config made them (checked when settings were
    # typed), updated when the shipped configs changed (l1 = "auto", then [embedding] refit): a
    # setting that changes the fitted embedding changes the hash
    assert load_config(builtin_config("synthetic")).hash == (
        "c1a106878bb4da8b65c52cf49a4cdee0f4add023763b24055441b39b18a19af8"
    )
    assert load_config(builtin_config("cowen_keltner"), scale="paper").hash == (
        "1c4bf6d8345ea4de2074074659be5bd447358b6f0c80aaaac0920d1745c07691"
    )
    assert load_config(builtin_config("cowen_keltner_mllm_vllm")).hash == (
        "f72bddb6d045fc74055b8c973d74d8ab7b31ee4593b033c665d0db32f06ce7c9"
    )


def test_every_system_table_dumps_every_key_and_reloads(tmp_path):
    config = load_config(builtin_config("cowen_keltner"))
    text = dump_config(config)
    assert text.count("\nconcurrency = 16\n") == len(config.systems)  # every kind shows the full table
    path = tmp_path / "again.toml"
    path.write_text(text)
    again = load_config(path)
    assert again.hash == config.hash and again.systems["gemma"].design.n_triplets == 20


def test_registry_kinds_cover_the_system_table():
    from oddoneout.agents.registry import AGENT_KINDS, SYSTEM_TABLE_KEYS, RemoteSettings, table_keys
    from oddoneout.settings import defaults

    keys = {"agent", "design"}
    own = {key for kind in AGENT_KINDS for key in table_keys(kind)} - set(SYSTEM_TABLE_KEYS)
    seen: dict = {}
    for kind in AGENT_KINDS.values():
        table = defaults(kind.settings)
        for key, value in table.items():
            assert seen.setdefault(key, value) == value, f"kinds disagree on the default of {key}"
        keys |= set(table)
        assert kind.concurrent == issubclass(kind.settings, RemoteSettings)
    # kinds added after the shared layout was fixed keep their own keys to their own tables (hashes unchanged)
    assert own == {
        "trials_per_session",
        "practice_trials",
        "lease_seconds",
        "completion_code",
        "catch_trials",
        "min_rt_ms",
        "exclude_max_fast_fraction",
        "exclude_min_catch_accuracy",
        "consent_text",
        "instructions_text",
        "debrief_text",
        "break_every",
        "break_text",
        "question_text",
        "completion_url",
        "answers_per_second",
        "answer_burst",
        "sessions_per_minute",
        "session_burst",
        "media_folder",
        "video_autoplay",
        "video_loop",
        "video_muted",
    }
    assert sorted(keys - own) == sorted(SYSTEM_TABLE_KEYS) and len(set(SYSTEM_TABLE_KEYS)) == len(SYSTEM_TABLE_KEYS)


def test_a_human_system_loads_dumps_and_refuses_bad_settings(tmp_path):
    from oddoneout.agents.registry import HumanSettings

    path = tmp_path / "people.toml"
    path.write_text(
        '[systems.sim]\nfeatures = "synthetic:mllm"\n\n'
        '[systems.people]\nagent = "human"\ntrials_per_session = 40\nlease_seconds = 90\n'
    )
    config = load_config(path)
    settings = config.systems["people"].settings
    assert isinstance(settings, HumanSettings) and settings.trials_per_session == 40 and settings.practice_trials == 3
    assert "trials_per_session" not in config.systems["sim"].table()  # other kinds' tables are as before
    again = tmp_path / "again.toml"
    again.write_text(dump_config(config))
    assert load_config(again).hash == config.hash
    for bad, match in (
        ("trials_per_session = 0", "trials_per_session"),
        ("lease_seconds = 0", "lease_seconds"),
        ('completion_code = "' + "x" * 65 + '"', "completion_code"),
        ("min_rt_ms = -1", "min_rt_ms"),
        ("catch_trials = -1", "catch_trials"),
        ("break_every = -1", "break_every"),
        ("break_every = 1.5", "break_every"),
        ('break_text = ""', "break_text"),
        ('question_text = " "', "question_text: must not be blank"),
        ('question_text = "' + "x" * 501 + '"', "question_text: must be at most 500 characters"),
        ("exclude_max_fast_fraction = 1.5", "exclude_max_fast_fraction"),
        ("exclude_min_catch_accuracy = -0.1", "exclude_min_catch_accuracy"),
        ("temperature = 0.5", "temperature"),  # another kind's key (at its default it is ignored)
    ):
        path.write_text(f'[systems.people]\nagent = "human"\n{bad}\n')
        with pytest.raises(InputError, match=match):
            load_config(path)
    path.write_text('[systems.sim]\nfeatures = "synthetic:mllm"\ntrials_per_session = 4\n')
    with pytest.raises(InputError, match="trials_per_session"):
        load_config(path)


@pytest.mark.parametrize("estimator", ["spose", "vice"])
def test_embedding_defaults_are_the_estimators(estimator):
    """Every [embedding] key an estimator takes has its default (VICE gets the keys it shares with SPoSE)."""
    import dataclasses
    import inspect

    from oddoneout.config.sections import EmbeddingSettings
    from oddoneout.embed.spose import SPoSE
    from oddoneout.embed.vice import VICE

    parameters = inspect.signature({"spose": SPoSE, "vice": VICE}[estimator].__init__).parameters
    settings = EmbeddingSettings()
    shared = [f.name for f in dataclasses.fields(settings) if f.name in parameters]
    assert {"n_dims", "lr", "batch_size", "max_epochs", "patience", "device"} <= set(shared)
    for key in shared:
        assert getattr(settings, key) == parameters[key].default, key


def test_spose_only_keys_are_refused_for_vice_unless_at_their_default(tmp_path):
    from oddoneout.config.sections import SPOSE_ONLY

    assert {"l1", "l1_folds", "relax", "refit", "averaging", "prune_threshold"} <= set(SPOSE_ONLY)
    assert not {"n_dims", "lr", "device"} & set(SPOSE_ONLY)
    with pytest.raises(InputError, match=r"\[embedding\] relax: True: a SPoSE setting") as error:
        _load(tmp_path, f"[embedding]\nmethod = 'vice'\nrelax = true\n{RATINGS_SYSTEM}")
    assert "\n" not in str(error.value) and "study.toml" in str(error.value)
    config = _load(tmp_path, f"[embedding]\nmethod = 'vice'\nrelax = false\nn_dims = 7\n{RATINGS_SYSTEM}")
    assert config.embedding.method == "vice" and config.embedding.n_dims == 7
    assert _load(tmp_path, f"[embedding]\nrelax = true\n{RATINGS_SYSTEM}").embedding.relax is True
