"""The run folder: train writes only into a folder it made, removes only what it wrote, and writes each
file whole or not at all. Every case here starts from an earlier run and files of the user's, and ends
with all of them still there."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }}.errors import UserError
from {{ cookiecutter.package_name }}.run_folder.folder import new_run
from {{ cookiecutter.package_name }}.training.writing import write_atomically

from ..conftest import FAST, run_cli


def everything(root: Path) -> dict[str, bytes | None]:
    """Every file (with its bytes) and folder under ``root``."""
    return {p.relative_to(root).as_posix(): p.read_bytes() if p.is_file() else None for p in root.rglob("*")}


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A user's folder: a project with an earlier run in runs/, and photos of their own."""
    earlier = tmp_path / "project" / "runs" / "earlier"
    (earlier / "checkpoints").mkdir(parents=True)
    (earlier / "config.yaml").write_text("data: data/pets\nbackbone: test_efficientnet\n")
    (earlier / "checkpoints" / "last.ckpt").write_bytes(b"an earlier run's weights")
    (earlier / ".run").write_text('{"made_by": "{{ cookiecutter.package_name }} train"}\n')
    (tmp_path / "project" / "notes.txt").write_text("my notes")
    (tmp_path / "Pictures").mkdir()
    (tmp_path / "Pictures" / "holiday.jpg").write_bytes(b"a photo")
    return tmp_path


def train_with_a_typo(*flags: str) -> int:
    """train with a data folder that does not exist: it must stop before touching anything."""
    return run_cli("train", "--data", "no-such-folder", *FAST, *flags)


@pytest.mark.parametrize("name", [".", "..", "ABSOLUTE", "runs/inner", "..\\up", ".hidden", "C:pets"])
def test_a_name_that_is_not_one_plain_folder_name_is_refused(home: Path, name: str, monkeypatch, capsys) -> None:
    """--name ., .., an absolute path, a path, a hidden name, a Windows drive: exit 2 with one line, nothing
    created or deleted."""
    monkeypatch.chdir(home / "project")
    name = str(home / "Pictures") if name == "ABSOLUTE" else name
    before = everything(home)
    assert train_with_a_typo("--output", "runs", "--name", name) == 2
    err = capsys.readouterr().err.strip()
    assert "one plain folder name" in err and "--output" in err and err.count("\n") == 0
    assert everything(home) == before


def test_a_name_from_a_config_file_gets_the_same_check(home: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(home / "project")
    (home / "settings.yaml").write_text("name: ..\noutput: runs\n")
    before = everything(home)
    assert train_with_a_typo("--config", str(home / "settings.yaml")) == 2
    assert "one plain folder name" in capsys.readouterr().err
    assert everything(home) == before


@pytest.mark.parametrize(("output", "name"), [("~", "Pictures"), ("runs", "notes"), ("HOME", "project")])
def test_an_existing_folder_train_did_not_make_is_refused(home: Path, output: str, name: str, monkeypatch,
                                                          capsys) -> None:
    """--output ~ --name Pictures, or any folder that exists without train's mark: exit 2, one line, untouched."""
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("USERPROFILE", str(home))  # what ~ means on Windows
    monkeypatch.chdir(home / "project")
    (home / "project" / "runs" / "notes").mkdir()
    (home / "project" / "runs" / "notes" / "todo.txt").write_text("buy food")
    before = everything(home)
    assert train_with_a_typo("--output", str(home) if output == "HOME" else output, "--name", name) == 2
    err = capsys.readouterr().err.strip()
    assert "train did not make it" in err and err.count("\n") == 0
    assert everything(home) == before


def test_a_finished_run_is_refused_with_the_resume_command(home: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(home / "project")
    before = everything(home)
    assert train_with_a_typo("--output", "runs", "--name", "earlier") == 2
    assert f"--resume {Path('runs', 'earlier')}" in capsys.readouterr().err
    assert everything(home) == before


def test_the_resume_command_quotes_a_folder_name_a_shell_would_misread(home: Path, monkeypatch, capsys) -> None:
    """zsh takes [cats] for a file pattern and every shell splits at the space: the printed command is quoted."""
    monkeypatch.chdir(home / "project")
    shutil.copytree(Path("runs", "earlier"), Path("runs", "my [cats]"))
    before = everything(home)
    assert train_with_a_typo("--output", "runs", "--name", "my [cats]") == 2
    assert f'--resume "{Path("runs", "my [cats]")}"' in capsys.readouterr().err
    assert everything(home) == before


def test_a_run_that_stops_early_removes_only_what_it_wrote(home: Path, monkeypatch, capsys) -> None:
    """A new run stopped by a data mistake leaves no empty run folder, and nothing else goes: not runs/,
    not the earlier run, not a file someone put into the new folder meanwhile (that folder then stays)."""
    monkeypatch.chdir(home / "project")
    before = everything(home)
    assert train_with_a_typo("--output", "runs", "--name", "new") == 1
    assert "does not exist" in capsys.readouterr().err
    assert everything(home) == before

    def a_file_appears_then_the_data_fails(*args, **kwargs):
        (home / "project" / "runs" / "new" / "mine.txt").write_text("mine")
        raise UserError("data folder missing")

    monkeypatch.setattr("{{ cookiecutter.package_name }}.train.find_dataset", a_file_appears_then_the_data_fails)
    assert train_with_a_typo("--output", "runs", "--name", "new") == 1
    assert set(everything(home)) - set(before) == {"project/runs/new", "project/runs/new/mine.txt"}


def test_an_unfinished_run_of_this_project_is_used_again(tmp_path: Path) -> None:
    """A run killed before its first checkpoint left its folder and mark: the same --name starts afresh there."""
    first = new_run(str(tmp_path), "again")
    (first.path / "config.yaml").write_text("epochs: 1\n")
    second = new_run(str(tmp_path), "again")
    assert second.path == first.path and second.checkpoints.is_dir() and second.marker.is_file()


def test_resume_of_a_folder_that_is_not_a_run_is_refused(home: Path, capsys) -> None:
    before = everything(home)
    assert run_cli("train", "--resume", str(home / "Pictures")) == 1
    err = capsys.readouterr().err.strip()
    assert "not a run folder" in err and err.count("\n") == 0
    assert everything(home) == before


@pytest.mark.parametrize("config", ["", "epochs: 3\n"])
def test_resume_with_an_empty_config_says_so_instead_of_using_defaults(home: Path, config: str, capsys) -> None:
    """A config.yaml emptied or cut short (by a crash of an older version) is named, not read as 'defaults'."""
    run = home / "project" / "runs" / "earlier"
    (run / "config.yaml").write_text(config)
    before = everything(home)
    assert run_cli("train", "--resume", str(run)) == 1
    err = capsys.readouterr().err.strip()
    assert "config.yaml does not hold the run's settings" in err and err.count("\n") == 0
    assert everything(home) == before


@pytest.mark.parametrize("failing", ["replace", "fsync", "interrupt"])
def test_a_write_that_fails_leaves_the_old_file_and_no_temporary_one(tmp_path: Path, monkeypatch,
                                                                     failing: str) -> None:
    """The old config.yaml stays whole whatever fails mid-write; the temporary file is removed."""
    config = tmp_path / "config.yaml"
    config.write_text("epochs: 10\n")

    def fail(*args):
        raise KeyboardInterrupt if failing == "interrupt" else OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "fsync" if failing != "replace" else "replace", fail)
    with pytest.raises(KeyboardInterrupt if failing == "interrupt" else UserError) as raised:
        write_atomically(config, "epochs: 20\n")
    assert failing == "interrupt" or f"cannot write {config} (Input/output error)" in str(raised.value)
    assert config.read_text() == "epochs: 10\n"
    assert [p.name for p in tmp_path.iterdir()] == ["config.yaml"]


def test_a_full_disk_is_raised_as_it_is(tmp_path: Path, monkeypatch) -> None:
    """train needs to know the disk is full (to say whether the run can be resumed): no UserError here."""
    monkeypatch.setattr(os, "fsync", lambda *args: (_ for _ in ()).throw(OSError(errno.ENOSPC, "No space")))
    with pytest.raises(OSError) as raised:
        write_atomically(tmp_path / "labels.json", "[]")
    assert raised.value.errno == errno.ENOSPC and not any(tmp_path.iterdir())


def test_kill_9_while_config_yaml_is_written_leaves_the_old_one(tmp_path: Path) -> None:
    """A process killed in the middle of a write (here: just before the data reaches the disk) leaves the
    earlier config.yaml as it was; the next write clears its hidden temporary file."""
    if sys.platform == "win32":
        pytest.skip("SIGKILL is POSIX only")
    config = tmp_path / "config.yaml"
    config.write_text("data: data/pets\nepochs: 10\n")
    code = ("import os, signal\n"
            "from pathlib import Path\n"
            "from {{ cookiecutter.package_name }}.training.writing import write_atomically\n"
            "os.fsync = lambda fd: os.kill(os.getpid(), signal.SIGKILL)\n"
            f"write_atomically(Path({str(config)!r}), 'data: data/pets\\nepochs: 20\\n')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2] / "src")})
    assert done.returncode == -9, done.stderr
    assert config.read_text() == "data: data/pets\nepochs: 10\n"
    write_atomically(config, "data: data/pets\nepochs: 30\n")
    assert config.read_text().endswith("epochs: 30\n") and [p.name for p in tmp_path.iterdir()] == ["config.yaml"]
