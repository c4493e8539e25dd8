"""Study configs: defaults, validation of typos and agents, built-in study."""

import tomllib

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
