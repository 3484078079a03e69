"""The config: defaults, YAML file, flags, and one-line errors for typos and wrong types."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from {{ cookiecutter.package_name }}.config import FIELDS, Config, load_config
from {{ cookiecutter.package_name }}.errors import UsageError

from .conftest import run_cli

DEFAULT_YAML = Path(__file__).parents[1] / "configs" / "default.yaml"


def test_default_yaml_matches_the_config_defaults() -> None:
    """configs/default.yaml lists every setting with the same default value as Config."""
    assert yaml.safe_load(DEFAULT_YAML.read_text()) == Config().to_dict()


def test_every_key_in_default_yaml_is_commented() -> None:
    """Each 'key: value' line in configs/default.yaml carries a comment explaining it."""
    lines = [line for line in DEFAULT_YAML.read_text().splitlines() if re.match(r"^[a-z_]+:", line)]
    assert len(lines) == len(FIELDS)
    assert all("#" in line for line in lines)


def test_flags_override_the_file(tmp_path: Path) -> None:
    """YAML values replace defaults, and command-line values replace YAML values."""
    file = tmp_path / "run.yaml"
    file.write_text("epochs: 7\nbatch_size: 16\n")
    cfg = load_config(file, {"batch_size": "8"})
    assert (cfg.epochs, cfg.batch_size, cfg.freeze_epochs) == (7, 8, Config().freeze_epochs)


def test_unknown_key_suggests_the_closest_one(tmp_path: Path) -> None:
    """A misspelt YAML key is refused with the valid key it probably meant."""
    file = tmp_path / "run.yaml"
    file.write_text("epoch: 3\n")
    with pytest.raises(UsageError, match="unknown key 'epoch'.*Did you mean 'epochs'"):
        load_config(file)


def test_wrong_type_names_the_key_and_the_expected_type() -> None:
    """A value of the wrong type fails with the key and what it expects."""
    with pytest.raises(UsageError, match="'epochs' expects a whole number, got 'ten'"):
        load_config(None, {"epochs": "ten"})
    with pytest.raises(UsageError, match="'precision' expects one of auto, 32"):
        load_config(None, {"precision": "64"})


def test_values_parse_from_text_like_yaml_does() -> None:
    """Flags arrive as text: numbers, booleans, auto and null are understood."""
    cfg = load_config(None, {"lr": "3e-4", "pretrained": "false", "num_workers": "auto", "weights": "null",
                             "precision": "32", "devices": "2"})
    assert (cfg.lr, cfg.pretrained, cfg.num_workers, cfg.weights, cfg.precision, cfg.devices) == (
        3e-4, False, "auto", None, "32", 2)


def test_out_of_range_values_are_refused() -> None:
    """freeze_epochs cannot exceed epochs; drop_path is a chance, below 1."""
    with pytest.raises(UsageError, match="freeze_epochs"):
        load_config(None, {"epochs": "2", "freeze_epochs": "3"})
    with pytest.raises(UsageError, match="drop_path"):
        load_config(None, {"drop_path": "1.5"})
    assert load_config(None, {"drop_path": "auto"}).drop_path == "auto"
    assert load_config(None, {"drop_path": "0.1"}).drop_path == 0.1


def test_unknown_flag_suggests_the_closest_flag(capsys) -> None:
    """`train --epoch 3` exits 2 with one line suggesting --epochs."""
    assert run_cli("train", "--epoch", "3") == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "Did you mean --epochs?" in err


def test_bad_flag_value_is_one_line_with_exit_code_2(capsys) -> None:
    """`train --batch-size big` exits 2 naming the key and the expected type, no traceback."""
    assert run_cli("train", "--batch-size", "big") == 2
    err = capsys.readouterr().err.strip()
    assert err == "Error: config key 'batch_size' expects a whole number, got 'big'."


def test_missing_config_file_is_one_line(capsys) -> None:
    """A --config path that does not exist says so."""
    assert run_cli("train", "--config", "nope.yaml") == 1
    assert "config file nope.yaml does not exist" in capsys.readouterr().err
