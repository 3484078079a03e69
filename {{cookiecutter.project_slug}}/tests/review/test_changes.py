"""review --apply and --undo: photos are moved, never lost or overwritten, and every change is logged.

No model here: a run folder needs only splits.csv, labels.json and config.yaml for --apply.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }}.dataset.check_data import audit
from {{ cookiecutter.package_name }}.dataset.folders import find_dataset
from {{ cookiecutter.package_name }}.errors import UserError
from {{ cookiecutter.package_name }}.review import changes

from ..conftest import make_image_folder, run_cli

CLASSES = ["cat", "dog", "fox"]


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """3 classes x 4 photos in train/ and val/, 2 in test/."""
    root = make_image_folder(tmp_path / "pets", per_class=4, splits=("train", "val"))
    return make_image_folder(root, per_class=2, splits=("test",))


@pytest.fixture
def run(data: Path, tmp_path: Path) -> Path:
    """The files of a run folder that --apply reads."""
    folder = tmp_path / "runs" / "r1"
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(f"data: {json.dumps(str(data))}\n")
    (folder / "labels.json").write_text(json.dumps(CLASSES))
    rows = [[p.relative_to(data).as_posix(), p.parent.name, p.parts[-3]] for p in sorted(data.rglob("*.*"))]
    write_csv(folder / "splits.csv", [["path", "class", "split"], *rows])
    return folder


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as file:
        csv.writer(file).writerows(rows)
    return path


def snapshot(root: Path) -> dict[str, bytes]:
    """Every photo of the data folder (the hidden .removed/ included) and its bytes."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != changes.REVIEW_LOG}


def decisions(tmp_path: Path, *rows: tuple[str, str, str]) -> str:
    return str(write_csv(tmp_path / "decisions.csv", [["path", "action", "class"], *map(list, rows)]))


def log_rows(root: Path) -> list[dict[str, str]]:
    return changes.read_log(root)


def test_apply_moves_exactly_the_files_asked_and_logs_each(data: Path, run: Path, tmp_path: Path) -> None:
    before = snapshot(data)
    file = decisions(tmp_path, ("train/cat/cat_001.png", "move", "dog"), ("val/dog/dog_002.png", "remove", ""),
                     ("train/fox/fox_001.png", "keep", ""))
    assert run_cli("review", str(run), "--apply", file) == 0
    after = snapshot(data)
    assert after["train/dog/cat_001.png"] == before["train/cat/cat_001.png"]
    assert after[".removed/dog/dog_002.png"] == before["val/dog/dog_002.png"]
    moved = {"train/cat/cat_001.png", "val/dog/dog_002.png"}
    assert {k: v for k, v in before.items() if k not in moved} == {
        k: v for k, v in after.items() if k not in {"train/dog/cat_001.png", ".removed/dog/dog_002.png"}}
    rows = log_rows(data)
    assert [(r["action"], r["old_path"], r["new_path"], r["status"]) for r in rows] == [
        ("move", "train/cat/cat_001.png", "train/dog/cat_001.png", "pending"),
        ("move", "train/cat/cat_001.png", "train/dog/cat_001.png", "done"),
        ("remove", "val/dog/dog_002.png", ".removed/dog/dog_002.png", "pending"),
        ("remove", "val/dog/dog_002.png", ".removed/dog/dog_002.png", "done"),
        ("keep", "train/fox/fox_001.png", "train/fox/fox_001.png", "done"),  # so the page does not ask again
    ]
    assert {r["run"] for r in rows} == {"r1"} and len({r["review"] for r in rows}) == 1
    assert changes.kept_photos(data) == {"train/fox/fox_001.png"}


def test_a_name_clash_never_overwrites(data: Path, run: Path, tmp_path: Path) -> None:
    clash = data / "train" / "dog" / "cat_001.png"
    clash.write_bytes(b"someone else's photo")
    original = (data / "train" / "cat" / "cat_001.png").read_bytes()
    assert run_cli("review", str(run), "--apply", decisions(tmp_path, ("train/cat/cat_001.png", "move", "dog"))) == 0
    assert clash.read_bytes() == b"someone else's photo"
    assert (data / "train" / "dog" / "cat_001 (1).png").read_bytes() == original
    assert not (data / "train" / "cat" / "cat_001.png").exists()


def test_removed_photos_are_kept_where_the_scan_and_check_data_skip_them(tmp_path: Path) -> None:
    root = make_image_folder(tmp_path / "flat", per_class=4)
    for child in list((root / "train").iterdir()):  # the classes directly in the data folder
        child.rename(root / child.name)
    (root / "train").rmdir()
    changes.apply_decisions(root, [("cat/cat_001.png", "remove", "")], CLASSES)
    assert (root / ".removed" / "cat" / "cat_001.png").is_file() and (root / "review-log.csv").is_file()
    found = find_dataset(root)
    assert len(found.train) + len(found.val) == 11 and found.classes == CLASSES
    assert not found.skipped  # neither .removed/ nor the log counts as a stray file
    report = audit(root, processes=1, progress=False)
    assert report.classes["cat"]["train"] == 3 and report.files == 11
    assert not {p.kind for p in report.problems} & {"hidden files", "not in a class folder"}


def test_undo_puts_every_file_back_and_a_second_undo_goes_further_back(data: Path, run: Path, tmp_path: Path) -> None:
    before = snapshot(data)
    run_cli("review", str(run), "--apply", decisions(tmp_path, ("train/cat/cat_001.png", "move", "fox")))
    middle = snapshot(data)
    run_cli("review", str(run), "--apply", decisions(tmp_path, ("train/fox/cat_001.png", "move", "dog"),
                                                     ("val/fox/fox_000.jpg", "remove", "")))
    assert run_cli("review", "--undo", str(data)) == 0
    assert snapshot(data) == middle
    assert run_cli("review", "--undo", str(data)) == 0
    assert snapshot(data) == before
    with pytest.raises(UserError, match="nothing to undo"):
        changes.undo_last_review(data)
    assert run_cli("review", "--undo", str(data)) == 1


def test_undo_never_overwrites_a_photo_put_where_one_was(data: Path, run: Path, tmp_path: Path) -> None:
    original = (data / "train" / "cat" / "cat_001.png").read_bytes()
    run_cli("review", str(run), "--apply", decisions(tmp_path, ("train/cat/cat_001.png", "move", "dog")))
    (data / "train" / "cat" / "cat_001.png").write_bytes(b"a new photo with the old name")
    changes.undo_last_review(data)
    assert (data / "train" / "cat" / "cat_001.png").read_bytes() == b"a new photo with the old name"
    assert (data / "train" / "cat" / "cat_001 (1).png").read_bytes() == original


def test_a_read_only_folder_stops_everything_before_the_first_move(data: Path, run: Path, tmp_path: Path,
                                                                   monkeypatch, capsys) -> None:
    before = snapshot(data)
    read_only = data / "val" / "dog"
    read_only.chmod(0o555)
    if os.geteuid() == 0:  # permission bits do not stop an administrator: the disk says no instead
        real_open = os.open

        def refuse(path, *args, **kwargs):
            if Path(path).parent == read_only and args and args[0] & os.O_CREAT:
                raise PermissionError(13, "Permission denied", str(path))
            return real_open(path, *args, **kwargs)

        monkeypatch.setattr(changes.os, "open", refuse)
    file = decisions(tmp_path, ("train/cat/cat_001.png", "move", "dog"), ("val/dog/dog_002.png", "remove", ""))
    try:
        assert run_cli("review", str(run), "--apply", file) == 1
    finally:
        read_only.chmod(0o755)
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "cannot write in" in error[0] and "nothing was changed" in error[0]
    assert snapshot(data) == before and not (data / changes.REVIEW_LOG).exists()


@pytest.mark.parametrize("row, message", [
    (("train/cat/cat_001.png", "delete", ""), "not one of keep, move, remove"),
    (("train/cat/cat_001.png", "move", "cow"), "class 'cow' is not one of"),
    (("train/cat/cat_001.png", "move", "cat"), "in cat already"),
    (("../outside.png", "remove", ""), "inside the data folder"),
    (("train/cat/missing.png", "remove", ""), "does not exist"),
    (("test/cat/cat_001.png", "remove", ""), "changes only those"),
])
def test_a_wrong_row_is_refused_in_one_line_and_nothing_moves(data: Path, run: Path, tmp_path: Path, capsys,
                                                              row, message) -> None:
    before = snapshot(data)
    file = decisions(tmp_path, ("train/dog/dog_001.png", "move", "cat"), row)
    assert run_cli("review", str(run), "--apply", file) == 1
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and message in error[0], error
    assert snapshot(data) == before


def test_a_rename_that_fails_half_way_leaves_each_file_in_one_place_and_undo_restores(
        data: Path, run: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    before = snapshot(data)
    real_replace, calls = os.replace, []

    def fail_second(source, target):
        calls.append(source)
        if len(calls) == 2:
            raise OSError(5, "Input/output error")
        return real_replace(source, target)

    monkeypatch.setattr(changes.os, "replace", fail_second)
    file = decisions(tmp_path, ("train/cat/cat_001.png", "move", "dog"), ("train/cat/cat_002.png", "move", "dog"),
                     ("train/fox/fox_001.png", "remove", ""))
    assert run_cli("review", str(run), "--apply", file) == 1
    assert "could not move train/cat/cat_002.png" in capsys.readouterr().err
    after = snapshot(data)
    assert sorted(after.values()) == sorted(before.values())  # every photo once: none lost, none doubled
    assert "train/dog/cat_001.png" in after and "train/cat/cat_002.png" in after and "train/fox/fox_001.png" in after
    assert [(r["old_path"], r["status"]) for r in log_rows(data)][1:] == [
        ("train/cat/cat_001.png", "done"), ("train/cat/cat_002.png", "pending"), ("train/cat/cat_002.png", "failed")]
    monkeypatch.setattr(changes.os, "replace", real_replace)
    changes.undo_last_review(data)
    assert snapshot(data) == before


@pytest.mark.parametrize("crash_at", ["rename", "after rename"])
def test_a_crash_leaves_the_log_saying_where_each_file_is_and_undo_restores(
        data: Path, run: Path, tmp_path: Path, monkeypatch, crash_at: str) -> None:
    """A crash (nothing of ours runs after it) between the "pending" and the "done" line of the second photo."""
    before = snapshot(data)
    real_replace, real_log, moves = os.replace, changes._log, []

    def replace(source, target):
        moves.append(source)
        if crash_at == "rename" and len(moves) == 2:
            raise KeyboardInterrupt  # the power goes: the name is reserved, the photo not moved
        return real_replace(source, target)

    def log(root, review, run_name, change, status):
        if crash_at == "after rename" and status == "done" and len(moves) == 2:
            raise KeyboardInterrupt  # the photo moved, the "done" line never written
        return real_log(root, review, run_name, change, status)

    monkeypatch.setattr(changes.os, "replace", replace)
    monkeypatch.setattr(changes, "_log", log)
    with pytest.raises(KeyboardInterrupt):
        changes.apply_decisions(data, [("train/cat/cat_001.png", "move", "dog"),
                                       ("train/cat/cat_002.png", "remove", ""),
                                       ("train/fox/fox_001.png", "move", "cat")], CLASSES, "r1")
    photos = {k: v for k, v in snapshot(data).items() if v}  # an empty reservation is no photo
    assert sorted(photos.values()) == sorted(before.values())
    rows = log_rows(data)
    assert rows[-1]["old_path"] == "train/cat/cat_002.png" and rows[-1]["status"] == "pending"
    where = ".removed/cat/cat_002.png" if crash_at == "after rename" else "train/cat/cat_002.png"
    assert photos[where] == before["train/cat/cat_002.png"]
    monkeypatch.setattr(changes.os, "replace", real_replace)
    monkeypatch.setattr(changes, "_log", real_log)
    changes.undo_last_review(data)
    assert snapshot(data) == before


def test_changes_since_counts_what_is_still_moved_and_removed(data: Path, run: Path, tmp_path: Path) -> None:
    run_cli("review", str(run), "--apply", decisions(tmp_path, ("train/cat/cat_001.png", "move", "dog"),
                                                     ("train/cat/cat_002.png", "move", "fox"),
                                                     ("val/fox/fox_000.jpg", "remove", "")))
    assert changes.changes_since(data, None) == {"move": 2, "remove": 1}
    changes.undo_last_review(data)
    assert not changes.changes_since(data, None)
    assert not changes.changes_since(tmp_path, None)  # no log at all


def test_train_is_told_what_review_changed_since_the_last_run_on_the_folder(data: Path, run: Path,
                                                                             tmp_path: Path) -> None:
    """The line counts the changes after the newest other run on this data folder (its splits.csv)."""
    run_cli("review", str(run), "--apply", decisions(tmp_path, ("train/cat/cat_001.png", "move", "dog")))
    new_run = run.parent / "r2"
    new_run.mkdir()
    old = os.path.getmtime(run / "splits.csv") - 3600  # r1 started an hour before the review
    os.utime(run / "splits.csv", (old, old))
    assert changes.since_last_run(data, new_run) == (
        f"Review: 1 photo(s) moved, 0 removed by review since the last run (listed in {data / changes.REVIEW_LOG}).")
    os.utime(run / "splits.csv")  # a run after the review: nothing new since
    assert changes.since_last_run(data, new_run) is None
    assert changes.since_last_run(tmp_path, new_run) is None  # a folder review never touched
