"""check-data: every problem of a messy folder found and named; exit 0 when train can use the folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ..conftest import FAST, draw_image, make_image_folder, run_cli
from ..messy_data import make_messy_folder


@pytest.fixture(scope="module")
def messy(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("messy") / "pets"
    return root, make_messy_folder(root)


@pytest.fixture(scope="module")
def messy_report(messy, tmp_path_factory) -> tuple[int, dict]:
    """check-data on the messy folder through the CLI: exit code and the --json report."""
    root, _ = messy
    json_path = tmp_path_factory.mktemp("report") / "report.json"
    return run_cli("check-data", str(root), "--json", str(json_path), "--all"), json.loads(json_path.read_text())


def problem(report: dict, kind: str) -> dict:
    matches = [p for p in report["problems"] if p["kind"] == kind]
    assert matches, f"no '{kind}' problem in {[p['kind'] for p in report['problems']]}"
    return matches[0]


def test_messy_folder_can_still_be_trained_on(messy_report) -> None:
    """Bad files and an empty class are warnings: the folder is usable, so the exit code is 0."""
    exit_code, report = messy_report
    assert exit_code == 0 and report["trainable"]
    assert not [p for p in report["problems"] if p["severity"] == "error"]


@pytest.mark.parametrize(
    "kind",
    ["corrupt", "truncated", "not an image", "hidden files", "non-image files", "tiny images",
     "empty classes",
     "exact duplicates across classes", "exact duplicates across splits", "near duplicates within a class"],
)
def test_every_problem_of_the_messy_folder_is_named_with_its_files(messy, messy_report, kind: str) -> None:
    _, expected = messy
    _, report = messy_report
    assert sorted(problem(report, kind)["paths"]) == sorted(expected[kind])


def test_unreadable_files_come_with_the_decoders_reason(messy_report) -> None:
    _, report = messy_report
    assert "truncated" in problem(report, "truncated")["reasons"]["train/dog/half.jpg"]
    assert "text" in problem(report, "not an image")["reasons"]["train/dog/notes.jpg"]
    assert "PostScript" in problem(report, "not an image")["reasons"]["train/dog/poster.jpg"]
    assert "HEIC" in problem(report, "corrupt")["reasons"]["train/dog/IMG_0003.HEIC"]


def test_modes_that_load_fine_are_counted_not_reported_as_errors(messy, messy_report) -> None:
    _, expected = messy
    _, report = messy_report
    assert set(expected["modes"]) <= set(report["modes"])
    assert report["modes"]["grayscale"] == 2  # grey.jpg and the 16-bit scan


def test_class_table_counts_readable_images_per_split(messy_report) -> None:
    _, report = messy_report
    assert report["classes"]["dog"] == {"train": 14, "val": 3, "test": 0, "unreadable": 6}
    assert report["classes"]["empty"]["train"] == 0
    assert report["images"] == 57 and report["sizes"]["smallest"] == "16x16"


def test_printed_report_names_every_unreadable_file_and_the_empty_class(messy, capsys) -> None:
    root, expected = messy
    assert run_cli("check-data", str(root)) == 0
    out = capsys.readouterr().out
    for path in expected["corrupt"] + expected["truncated"] + expected["not an image"]:
        assert path in out
    assert "empty, only_hidden" in out and "OK: train can use this folder" in out


def test_without_all_long_lists_are_cut_and_say_how_to_see_them(tmp_path: Path, capsys) -> None:
    root = make_image_folder(tmp_path / "pets", per_class=3, classes=("cat", "dog"))
    for i in range(8):
        (root / "train" / "cat" / f"note{i}.jpg").write_text("not a photo")
    assert run_cli("check-data", str(root)) == 0
    out = capsys.readouterr().out
    assert "note4.jpg" in out and "note5.jpg" not in out and "and 3 more (--all" in out
    assert run_cli("check-data", str(root), "--all") == 0
    assert "note7.jpg" in capsys.readouterr().out


def test_names_with_brackets_are_printed_as_they_are(tmp_path: Path, capsys) -> None:
    """The report is drawn with Rich, which reads [..] as a style: a folder or class named so keeps its name."""
    root = make_image_folder(tmp_path / "pets [old]", per_class=3, classes=("cat", "dog"))
    (root / "train" / "cat").rename(root / "train" / "cat [x]")
    assert run_cli("check-data", str(root)) == 0
    out = capsys.readouterr().out
    assert "pets [old]" in out and "cat [x]" in out and "fewer than 10 training images: cat [x] (3)" in out


def write_classes(root: Path, counts: dict[str, int]) -> Path:
    for name, count in counts.items():
        for i in range(count):
            draw_image(root / "train" / name / f"{name}_{i:03d}.png", name, seed=f"{name}/{i}")
    return root


def test_15_to_1_imbalance_is_reported(tmp_path: Path, capsys) -> None:
    root = write_classes(tmp_path / "uneven", {"cat": 150, "dog": 10})
    json_path = tmp_path / "report.json"
    assert run_cli("check-data", str(root), "--json", str(json_path)) == 0
    report = json.loads(json_path.read_text())
    assert report["balance"] == {"ratio": 15.0, "largest": "cat", "smallest": "dog", "imbalanced": True}
    assert "15.0x" in problem(report, "class imbalance")["message"]
    assert "class imbalance" in capsys.readouterr().out


def test_balanced_folder_claims_no_imbalance_and_no_duplicates(image_folder: Path, tmp_path: Path, capsys) -> None:
    """The look-alike drawings of conftest are similar but not copies: no duplicate is claimed either."""
    json_path = tmp_path / "report.json"
    assert run_cli("check-data", str(image_folder), "--json", str(json_path)) == 0
    report = json.loads(json_path.read_text())
    assert not report["balance"]["imbalanced"] and report["problems"] == []
    assert "imbalance" not in capsys.readouterr().out


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda root: None, "does not exist"),
        (lambda root: (root / "train" / "cat").mkdir(parents=True), "at least 2"),
        (lambda root: make_image_folder(root, per_class=12, classes=("cat",)), "at least 2"),
    ],
    ids=["missing-path", "no-images", "single-class"],
)
def test_folders_that_cannot_be_trained_on_exit_1_with_one_line(tmp_path: Path, capsys, build, message: str) -> None:
    root = tmp_path / "pets"
    build(root)
    json_path = tmp_path / "report.json"
    assert run_cli("check-data", str(root), "--json", str(json_path)) == 1
    err = capsys.readouterr().err.strip().splitlines()  # the progress bar, if any, then the one-line error
    assert err[-1].startswith("Error:") and message in err[-1] and sum("Error" in line for line in err) == 1
    assert "Traceback" not in "\n".join(err)
    assert json.loads(json_path.read_text())["trainable"] is False


def test_every_image_unreadable_in_one_class_leaves_one_class_so_exit_1(tmp_path: Path, capsys) -> None:
    root = make_image_folder(tmp_path / "pets", per_class=3, classes=("cat", "dog"))
    for path in (root / "train" / "dog").iterdir():
        path.write_bytes(b"broken")
    assert run_cli("check-data", str(root)) == 1
    assert "only cat" in capsys.readouterr().err


def test_train_on_the_messy_folder_uses_exactly_the_good_classes(messy, tmp_path: Path, capsys) -> None:
    """The issue's promise: a short train on a messy folder completes, skipping and listing the bad files."""
    root, expected = messy
    run = tmp_path / "runs" / "messy"
    assert run_cli("train", "--data", str(root), *FAST, "--epochs", "1", "--freeze-epochs", "0",
                   "--output", str(run.parent), "--name", run.name) == 0
    out = capsys.readouterr().out
    assert "6 unreadable" in out and "empty class folder(s) skipped: empty, only_hidden" in out
    assert json.loads((run / "labels.json").read_text()) == ["cat", "dog", "fox"]
    skipped = (run / "skipped.csv").read_text(encoding="utf-8")
    for path in expected["corrupt"] + expected["truncated"] + expected["not an image"]:
        assert path in skipped
    splits = (run / "splits.csv").read_text(encoding="utf-8")
    assert "half.jpg" not in splits and "photo ü 1.jpeg" in splits and "IMG_0004.HEIC" in splits  # trained on


@pytest.fixture(scope="module")
def with_panorama(tmp_path_factory) -> Path:
    """A good folder plus one valid 240-megapixel picture."""
    from ..bad_uploads import flat_png

    root = make_image_folder(tmp_path_factory.mktemp("huge") / "pets", per_class=6)
    (root / "train" / "cat" / "panorama.png").write_bytes(flat_png(20000, 12000))
    return root


def test_check_data_calls_a_huge_picture_too_large_and_says_how_to_include_it(with_panorama: Path, capsys) -> None:
    assert run_cli("check-data", str(with_panorama)) == 0
    out = capsys.readouterr().out
    assert "Too large: 1 image" in out and "downscale it" in out and "240 megapixels" in out
    assert "corrupt" not in out.lower()


def test_train_leaves_a_huge_picture_out_and_says_to_downscale_it(with_panorama: Path, tmp_path: Path,
                                                                   capsys) -> None:
    run = tmp_path / "runs" / "huge"
    assert run_cli("train", "--data", str(with_panorama), *FAST, "--epochs", "1", "--freeze-epochs", "0",
                   "--output", str(run.parent), "--name", run.name) == 0
    out = capsys.readouterr().out
    assert "1 image(s) are too large" in out and "downscale them" in out and "cannot be decoded" not in out
    skipped = dict(line.split(",", 1) for line in (run / "skipped.csv").read_text().splitlines()[1:])
    assert skipped["train/cat/panorama.png"].strip('"').startswith("too large: 240 megapixels")
