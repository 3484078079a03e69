"""``download-pets``: the Oxford-IIIT Pet dataset in one command, laid out ready to train.

    {{ cookiecutter.project_slug }} download-pets data/oxford-pets                        37 breeds
    {{ cookiecutter.project_slug }} download-pets data/cats-vs-dogs --task cats-vs-dogs   2 classes

It downloads the two official archives (about 800 MB) into DATA_DIR/downloads/ and writes::

    DATA_DIR/train/<class>/*.jpg   80% of the official "trainval" list (stratified, seed 42)
    DATA_DIR/val/<class>/*.jpg     the other 20%
    DATA_DIR/test/<class>/*.jpg    the official "test" list

Running it again does nothing. Without internet, download the two archives by hand (the error
message says from where), put them in DATA_DIR/downloads/ and run the same command again.

Dataset: O. M. Parkhi, A. Vedaldi, A. Zisserman, C. V. Jawahar, "Cats and Dogs", CVPR 2012,
https://www.robots.ox.ac.uk/~vgg/data/pets/ (CC BY-SA 4.0).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tarfile
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

from {{ cookiecutter.package_name }}.dataset.folders import SPLIT_NAMES, stratified_split
from {{ cookiecutter.package_name }}.errors import UserError

# The official archives, and a mirror tried when the first address does not answer.
MIRRORS = ("https://www.robots.ox.ac.uk/~vgg/data/pets/data/", "https://thor.robots.ox.ac.uk/~vgg/data/pets/")
ARCHIVES = ("images.tar.gz", "annotations.tar.gz")
# MD5 of each archive as published (the same ones torchvision checks), to catch a broken download.
CHECKSUMS = {
    "images.tar.gz": "5c4f3ee8e5d25df40f4fd59a7f44e54c",
    "annotations.tar.gz": "95a8c909bbe2e81eed6a22bccdf3f68f",
}
TASKS = ("breeds", "cats-vs-dogs")
VAL_FRACTION, SEED = 0.2, 42
MARKER = "download-pets.json"  # written last: its presence means the layout is complete
TIMEOUT_S = 20


def download_pets(data_dir: str | Path, task: str = "breeds") -> Path:
    """Download (if needed) and lay out Oxford-IIIT Pet in ``data_dir``; returns the dataset folder."""
    if task not in TASKS:
        raise UserError(f"unknown task '{task}'; use one of {', '.join(TASKS)}.")
    root = Path(data_dir).expanduser()
    marker = root / MARKER
    if marker.is_file():
        done = json.loads(marker.read_text(encoding="utf-8"))
        if done.get("task") != task:
            raise UserError(f"{root} already holds Oxford-IIIT Pet for --task {done.get('task')}; "
                            f"give --task {task} another folder.")
        if all((root / split).is_dir() for split in SPLIT_NAMES):
            print(f"Oxford-IIIT Pet ({task}) is already in {root}: {done['images']} images. Nothing to do.")
            return root
    _refuse_other_content(root)

    downloads = root / "downloads"
    for name in ARCHIVES:
        _fetch(name, downloads)

    labels = read_annotations(downloads / "annotations.tar.gz", task)
    placement = plan_layout(labels)
    counts = write_layout(downloads / "images.tar.gz", placement, root)
    marker.write_text(json.dumps({"task": task, "images": sum(counts.values()), "splits": counts}, indent=2) + "\n",
                      encoding="utf-8")
    print(f"Oxford-IIIT Pet ({task}) is ready in {root}: {counts['train']} train, {counts['val']} val, "
          f"{counts['test']} test images. The archives in {downloads} can be deleted.")
    print(f"Next: {{ cookiecutter.project_slug }} check-data {root}, then "
          f"{{ cookiecutter.project_slug }} train --data {root}")
    return root


def _refuse_other_content(root: Path) -> None:
    """Never mix the dataset into a folder that holds something else (only downloads/ may be there)."""
    if not root.exists():
        return
    if not root.is_dir():
        raise UserError(f"{root} is a file; give download-pets a folder name, e.g. data/oxford-pets.")
    shutil.rmtree(root / ".partial", ignore_errors=True)  # an interrupted earlier run
    other = sorted(p.name for p in root.iterdir() if p.name not in ("downloads", MARKER))
    if other:
        raise UserError(f"{root} already holds {', '.join(other[:3])}; download-pets needs an empty or new folder, "
                        "e.g. data/oxford-pets.")


# ---- downloading -----------------------------------------------------------------------------------
def _open_url(url: str):
    """The one place that touches the network (tests replace it)."""
    return urllib.request.urlopen(url, timeout=TIMEOUT_S)  # noqa: S310 - fixed https addresses above


def _fetch(name: str, downloads: Path) -> Path:
    """downloads/<name>, downloaded unless it is already there; checked against its published MD5."""
    target = downloads / name
    if not target.is_file():
        downloads.mkdir(parents=True, exist_ok=True)
        errors = []
        for mirror in MIRRORS:
            try:
                _download(mirror + name, target)
                break
            except (urllib.error.URLError, OSError, TimeoutError) as err:
                errors.append(getattr(err, "reason", None) or err)
        else:
            urls = " and ".join(MIRRORS[0] + archive for archive in ARCHIVES)
            raise UserError(
                f"cannot download Oxford-IIIT Pet ({errors[0]}); download {urls} by hand (e.g. in a browser), "
                f"put both files in {downloads}/ and run this command again."
            )
    expected = CHECKSUMS.get(name)
    if expected and _md5(target) != expected:
        raise UserError(f"{target} is damaged or incomplete (its checksum is wrong); delete it and run this "
                        "command again.")
    return target


def _download(url: str, target: Path) -> None:
    """Stream ``url`` to ``target`` with a progress bar; a half-finished file never takes the real name."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

    partial = target.with_name(target.name + ".part")
    with _open_url(url) as response:
        total = int(response.headers.get("Content-Length") or 0) or None
        columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                   TimeRemainingColumn())
        with Progress(*columns) as progress, open(partial, "wb") as file:
            task = progress.add_task(f"Downloading {target.name}", total=total)
            while chunk := response.read(1 << 20):
                file.write(chunk)
                progress.advance(task, len(chunk))
    partial.replace(target)


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as file:
        while chunk := file.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


# ---- laying out --------------------------------------------------------------------------------------
def _class_name(image: str, species: str, task: str) -> str:
    """'american_bulldog_12' -> 'american_bulldog' (breeds) or 'dog' (cats-vs-dogs; species 1 = cat)."""
    if task == "cats-vs-dogs":
        return "cat" if species == "1" else "dog"
    return image.rsplit("_", 1)[0].lower()


def read_annotations(archive: Path, task: str) -> dict[str, dict[str, str]]:
    """The official lists: {"trainval": {image name: class}, "test": {...}}.

    Each line of annotations/trainval.txt and test.txt reads "Abyssinian_100 1 1 1":
    image name, class id (1-37), species (1 cat, 2 dog), breed id.
    """
    lists: dict[str, dict[str, str]] = {}
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for split in ("trainval", "test"):
                member = tar.extractfile(f"annotations/{split}.txt")
                lines = member.read().decode("utf-8").splitlines() if member else []
                lists[split] = {}
                for line in lines:
                    fields = line.split()
                    if len(fields) >= 3 and not line.startswith("#"):
                        lists[split][fields[0]] = _class_name(fields[0], fields[2], task)
    except (tarfile.TarError, KeyError, OSError, EOFError) as err:
        raise UserError(f"{archive} is not the Oxford-IIIT Pet annotations archive ({err}); delete it and run "
                        "this command again.") from None
    return lists


def plan_layout(lists: dict[str, dict[str, str]]) -> dict[str, tuple[str, str]]:
    """Image name -> (split, class): trainval split 80/20 per class into train and val, test kept as test."""
    by_class: dict[str, list[Path]] = {}
    for image, name in lists["trainval"].items():
        by_class.setdefault(name, []).append(Path(image))
    train, val = stratified_split(by_class, VAL_FRACTION, SEED)
    placement = {}
    for split, chosen in (("train", train), ("val", val)):
        for name, images in chosen.items():
            placement.update((str(image), (split, name)) for image in images)
    placement.update((image, ("test", name)) for image, name in lists["test"].items())
    return placement


def write_layout(archive: Path, placement: dict[str, tuple[str, str]], root: Path) -> dict[str, int]:
    """Copy each listed image out of the archive to split/class/; returns images per split.

    Everything is written under root/.partial first and moved into place at the end, so an
    interrupted run leaves nothing that looks finished.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    partial = root / ".partial"
    shutil.rmtree(partial, ignore_errors=True)
    counts: Counter = Counter()
    try:
        with tarfile.open(archive, "r:gz") as tar, Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn()
        ) as progress:
            task = progress.add_task("Laying out images", total=len(placement))
            for member in tar:
                path = Path(member.name)
                # Only images/<name>.jpg files named in the lists: the archive's paths are never trusted.
                if not member.isfile() or path.parent.name != "images" or path.suffix.lower() != ".jpg":
                    continue
                if path.stem not in placement:
                    continue
                split, name = placement[path.stem]
                target = partial / split / name / path.name
                target.parent.mkdir(parents=True, exist_ok=True)
                source = tar.extractfile(member)
                with open(target, "wb") as file:
                    shutil.copyfileobj(source, file)
                counts[split] += 1
                progress.advance(task)
    except (tarfile.TarError, OSError, EOFError) as err:
        shutil.rmtree(partial, ignore_errors=True)
        raise UserError(f"could not read {archive} ({err}); delete it and run this command again.") from None
    for split in SPLIT_NAMES:
        (partial / split).mkdir(parents=True, exist_ok=True)
        (partial / split).replace(root / split)
    partial.rmdir()
    missing = len(placement) - sum(counts.values())
    if missing:
        print(f"Note: {missing} listed image(s) were not in {archive.name}; they are left out.")
    return {split: counts[split] for split in SPLIT_NAMES}
