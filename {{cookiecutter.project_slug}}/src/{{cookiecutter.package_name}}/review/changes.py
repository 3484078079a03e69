"""Move and remove photos the way ``review`` does, so that nothing is ever lost, and put them back.

    DATA/review-log.csv       every change: time, review, run, action, old_path, new_path, status
    DATA/.removed/<class>/    where "remove" puts a photo (a hidden folder: the folder scan skips it)

Each change is one rename, which the operating system does in one step. The log says "pending" (on
disk, fsync) before the rename and "done" after it, so a crash leaves each photo at its old or its new
path and the log names both; ``undo_last_review`` puts back whatever moved. A name that is taken gets
``photo (1).jpg``, and the new name is reserved as an empty file (O_EXCL: it fails if the name exists)
before the rename, so a rename can never land on someone else's file.

Plain file operations (no PyTorch), tested without a model.
"""

from __future__ import annotations

import csv
import os
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath

from {{ cookiecutter.package_name }}.dataset.folders import REMOVED_FOLDER, REVIEW_LOG, SPLIT_ALIASES
from {{ cookiecutter.package_name }}.errors import UserError, shell_quote

COLUMNS = ["time", "review", "run", "action", "old_path", "new_path", "status"]
ACTIONS = ("keep", "move", "remove")
SPLIT_FOLDERS = {"train", "val"}  # review never touches test photos: the final exam stays as it is


@dataclass
class Change:
    """One photo to move: paths relative to the data folder, in the forward slashes of splits.csv."""

    old: str
    new: str
    action: str  # "move", "remove", or "undo" (putting one back)


# ---- reading a decisions file and checking it -----------------------------------------------------
def read_decisions(path: str | Path) -> list[tuple[str, str, str]]:
    """The rows of a decisions CSV: (path, action, class); ``class`` only matters for ``move``."""
    file = Path(path).expanduser()
    try:
        with open(file, newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.DictReader(handle))
    except OSError as err:
        raise UserError(f"cannot read {file} ({err.strerror}); pass a CSV with columns path,action,class.") from None
    if rows and not {"path", "action"} <= set(rows[0]):
        raise UserError(f"{file} needs the columns path,action,class (action: keep, move or remove).")
    return [((row.get("path") or "").strip(), (row.get("action") or "").strip().lower(),
             (row.get("class") or "").strip()) for row in rows]


def where_is(relative: str, classes: list[str]) -> tuple[str, str]:
    """(split folder, class) of a path as splits.csv writes it: 'train/cat/a.jpg' -> ('train', 'cat'),
    'cat/a.jpg' (classes directly in the data folder) -> ('', 'cat')."""
    parts = PurePosixPath(relative).parts
    aliases = {alias for split in SPLIT_FOLDERS for alias in SPLIT_ALIASES[split]}
    if len(parts) >= 3 and parts[0].lower() in aliases and parts[1] in classes:
        return parts[0], parts[1]
    if len(parts) >= 2 and parts[0] in classes:
        return "", parts[0]
    raise UserError(f"{relative} is not a train or val photo in a class folder ({', '.join(classes)}); "
                    "review changes only those.")


def plan_changes(root: Path, decisions: list[tuple[str, str, str]], classes: list[str]) -> list[Change]:
    """Check every decision before anything moves, and say where each photo goes (names not chosen yet)."""
    changes, seen = [], set()
    for number, (relative, action, target) in enumerate(decisions, start=2):  # line 1 is the header
        where = f"row {number} ({relative or 'no path'})"
        if action not in ACTIONS:
            raise UserError(f"{where}: action {action!r} is not one of keep, move, remove.")
        path = PurePosixPath(relative.replace("\\", "/"))
        if not relative or path.is_absolute() or ".." in path.parts:
            raise UserError(f"{where}: give the path inside the data folder, as in splits.csv (e.g. train/cat/a.jpg).")
        if action == "keep":  # logged, so that the page does not ask again about it
            if (root / path).is_file():
                changes.append(Change(str(path), str(path), action))
            continue
        if not (root / path).is_file():
            raise UserError(f"{where}: {root / path} does not exist (moved already?); "
                            "take it out of the decisions file or run review again.")
        if str(path) in seen:
            raise UserError(f"{where}: the photo appears twice in the decisions file; keep one row.")
        seen.add(str(path))
        split, label = where_is(str(path), classes)
        if action == "move":
            if target not in classes:
                raise UserError(f"{where}: class {target!r} is not one of {', '.join(classes)}.")
            if target == label:
                raise UserError(f"{where}: the photo is in {label} already; use keep, or another class.")
            folder = PurePosixPath(split, target) if split else PurePosixPath(target)
        else:
            folder = PurePosixPath(REMOVED_FOLDER, label)
        changes.append(Change(str(path), str(folder / path.name), action))
    return changes


def check_writable(root: Path, changes: list[Change]) -> None:
    """Write a test file in every folder a change touches before the first photo moves: a read-only
    folder stops the whole review with one line, instead of half of it done. (A real write, because
    permission bits say nothing on a read-only disk, or to an administrator.)"""
    folders = {root} | {(root / c.old).parent for c in changes} | {(root / c.new).parent for c in changes}
    for folder in sorted(folders):
        existing = folder
        while not existing.is_dir() and existing != root:
            existing = existing.parent  # .removed/<class>/ is created when the first photo goes there
        probe = existing / f".review-write-test-{os.getpid()}"
        try:
            os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL))
            os.unlink(probe)
        except OSError as err:
            raise UserError(f"cannot write in {existing} ({err.strerror}); nothing was changed. Make the data "
                            "folder writable (or copy it somewhere you can write) and try again.") from None


# ---- the log -------------------------------------------------------------------------------------
def read_log(root: Path) -> list[dict[str, str]]:
    log = root / REVIEW_LOG
    if not log.is_file():
        return []
    with open(log, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _log(root: Path, review: str, run: str, change: Change, status: str) -> None:
    """Append one line to the log and wait until it is on disk."""
    log = root / REVIEW_LOG
    new = not log.is_file()
    with open(log, "a", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        if new:
            writer.writerow(COLUMNS)
        writer.writerow([datetime.now(timezone.utc).isoformat(timespec="seconds"), review, run, change.action,
                         change.old, change.new, status])
        handle.flush()
        os.fsync(handle.fileno())


# ---- moving --------------------------------------------------------------------------------------
def _free_name(root: Path, relative: str) -> str:
    """``relative`` if nothing is there, else 'name (1).ext', 'name (2).ext', ...: the first free name."""
    wanted = PurePosixPath(relative)
    for number in range(10_000):
        candidate = wanted.parent / (wanted.name if number == 0 else f"{wanted.stem} ({number}){wanted.suffix}")
        if not os.path.lexists(root / candidate):
            return str(candidate)
    raise UserError(f"{root / wanted.parent} has too many files called {wanted.stem} (...); tidy it up first.")


def _move(root: Path, change: Change, review: str, run: str) -> Change:
    """Log "pending", reserve the new name, rename onto the reservation, log "done". Returns the change made.

    The reservation is an empty file created with O_EXCL, which fails if anything has the name by then:
    so the rename can only ever replace our own empty file, never a photo.
    """
    change = Change(change.old, _free_name(root, change.new), change.action)
    (root / change.new).parent.mkdir(parents=True, exist_ok=True)
    _log(root, review, run, change, "pending")
    try:
        os.close(os.open(root / change.new, os.O_WRONLY | os.O_CREAT | os.O_EXCL))
    except OSError as err:  # FileExistsError: someone took the name a moment ago
        _log(root, review, run, change, "failed")
        raise UserError(f"could not move {change.old} to {change.new} ({err.strerror}); nothing happened to it. "
                        f"What moved before it is listed in {root / REVIEW_LOG}; run the same command again.") from None
    try:
        os.replace(root / change.old, root / change.new)
    except OSError as err:
        (root / change.new).unlink(missing_ok=True)  # our empty reservation, never a photo
        _log(root, review, run, change, "failed")
        raise UserError(f"could not move {change.old} ({err.strerror}); it is still where it was. "
                        f"What moved before it is listed in {root / REVIEW_LOG}.") from None
    _log(root, review, run, change, "done")
    return change


def apply_changes(root: Path, changes: list[Change], run: str) -> list[Change]:
    """Carry out checked changes, one logged rename each, and log the photos kept; returns the moves and
    removals with the names chosen."""
    check_writable(root, changes)
    review = datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    moved = [_move(root, change, review, run) for change in changes if change.action != "keep"]
    for change in changes:
        if change.action == "keep":
            _log(root, review, run, change, "done")
    return moved


def apply_decisions(root: str | Path, decisions: list[tuple[str, str, str]], classes: list[str],
                    run: str = "") -> list[Change]:
    """What ``review RUN --apply FILE`` and the page's button do: check all, then move and log each."""
    root = Path(root).expanduser()
    return apply_changes(root, plan_changes(root, decisions, classes), run)


# ---- undo ----------------------------------------------------------------------------------------
def in_place(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """The latest log row of every change that may be in place (done, or pending: cut off by a crash)
    and is not undone, oldest first. An undo row runs from a change's new path back."""
    undone = {(r["review"], r["old_path"]) for r in rows if r["action"] == "undo" and r["status"] == "done"}
    last: dict[tuple[str, str], dict[str, str]] = {}  # (review, new path) -> its latest row
    for row in rows:
        if row["action"] not in ("undo", "keep"):
            last.pop((row["review"], row["new_path"]), None)  # re-inserted: ordered by its latest row
            last[(row["review"], row["new_path"])] = row
    return [row for key, row in last.items() if row["status"] in ("done", "pending") and key not in undone]


def undo_last_review(data: str | Path) -> tuple[list[Change], list[str]]:
    """``review --undo DATA``: put the last review's photos back where they were, newest change first.

    Never overwrites: if something now sits at a photo's old name, it comes back as 'name (1).jpg'.
    Returns the photos put back and a note for each one that could not be (gone since).
    """
    root = Path(data).expanduser()
    if not root.is_dir():
        raise UserError(f"data folder {root} does not exist; pass the folder review changed, e.g. data/my-pets.")
    open_changes = in_place(read_log(root))
    if not open_changes:
        raise UserError(f"nothing to undo: {root / REVIEW_LOG} lists no review changes still in place.")
    review = open_changes[-1]["review"]
    back = [Change(r["new_path"], r["old_path"], "undo") for r in reversed(open_changes) if r["review"] == review]
    check_writable(root, back)
    restored, notes = [], []
    for change in back:
        moved, original = root / change.old, root / change.new
        if moved.is_file() and moved.stat().st_size == 0 and original.is_file():
            moved.unlink()  # a crash between reserving the name and the rename: only our empty file is there
        elif moved.is_file():
            restored.append(_move(root, change, review, ""))
            continue
        elif not original.is_file():
            notes.append(f"{change.old} is gone (moved or deleted outside review); {change.new} not restored")
            continue
        _log(root, review, "", change, "done")  # it never left: nothing to move, the change is closed
    return restored, notes


def kept_photos(root: Path) -> set[str]:
    """Photos someone chose to keep in an earlier review (the page leaves them out), by path."""
    return {row["old_path"] for row in read_log(root) if row["action"] == "keep"}


# ---- what the next train says --------------------------------------------------------------------
def changes_since(data: str | Path, since: datetime | None) -> Counter:
    """{"move": n, "remove": n}: photos review moved and removed after ``since`` (ever, if None) that are
    still moved and removed."""
    rows = in_place(read_log(Path(data).expanduser()))
    return Counter(row["action"] for row in rows if row["status"] == "done"
                   and (since is None or datetime.fromisoformat(row["time"]) > since))


def since_last_run(data: str | Path, run: Path) -> str | None:
    """The line ``train`` prints about review's changes to ``data`` since the previous run on it (its
    splits.csv, written when it started, next to ``run`` in the output folder); None if there are none."""
    root = Path(data).expanduser()
    if not (root / REVIEW_LOG).is_file():
        return None
    earlier = [splits.stat().st_mtime for splits in run.parent.glob("*/splits.csv")
               if splits.parent != run and _data_of(splits.parent) == root.resolve()]
    since = datetime.fromtimestamp(max(earlier), timezone.utc) if earlier else None
    counts = changes_since(root, since)
    if not counts:
        return None
    return (f"Review: {counts['move']} photo(s) moved, {counts['remove']} removed by review since the last run "
            f"(listed in {root / REVIEW_LOG}).")


def _data_of(run: Path) -> Path | None:
    """The data folder in a run's config.yaml, resolved (None if it cannot be read)."""
    import yaml

    try:
        data = (yaml.safe_load((run / "config.yaml").read_text(encoding="utf-8")) or {}).get("data")
        return Path(str(data)).expanduser().resolve()
    except (OSError, yaml.YAMLError, AttributeError):
        return None


def summary_line(done: list[Change], root: Path) -> str:
    """'Moved 2 photo(s), removed 1 ...' after a review was applied."""
    moved = sum(change.action == "move" for change in done)
    removed = len(done) - moved
    if not done:
        return "Nothing to change: every row says keep."
    return (f"Moved {moved} photo(s), removed {removed} (to {root / REMOVED_FOLDER}); logged in {root / REVIEW_LOG}. "
            f"Undo with: {{ cookiecutter.project_slug }} review --undo {shell_quote(root)}")
