"""download-pets, offline: the real download code runs against a miniature archive in the real layout.

The network is replaced at its one entry point (``pets._open_url``); the archives are built here with
the official structure: images/<Breed>_<n>.jpg (cat breeds capitalised, dog breeds not, plus stray
.mat files) and annotations/{trainval,test,list}.txt with lines "Abyssinian_1 1 1 1".
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import urllib.error
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }}.dataset import pets

from ..conftest import run_cli
from ..messy_data import photo

# breed -> (class id, species: 1 cat / 2 dog)
BREEDS = {"Abyssinian": (1, 1), "Bengal": (2, 1), "american_bulldog": (3, 2), "yorkshire_terrier": (4, 2)}
TRAINVAL, TEST = 5, 2  # images per breed in each official list


def add_file(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def mini_archives() -> dict[str, bytes]:
    """images.tar.gz and annotations.tar.gz, tiny but laid out like the real ones."""
    lines = {"trainval": [], "test": []}
    images = io.BytesIO()
    with tarfile.open(fileobj=images, mode="w:gz") as tar:
        for b, (breed, (class_id, species)) in enumerate(BREEDS.items()):
            for i in range(1, TRAINVAL + TEST + 1):
                name = f"{breed}_{i}"
                jpeg = io.BytesIO()
                photo(b * 100 + i, (40, 30)).save(jpeg, "JPEG")
                add_file(tar, f"images/{name}.jpg", jpeg.getvalue())
                lines["trainval" if i <= TRAINVAL else "test"].append(f"{name} {class_id} {species} {b + 1}")
        add_file(tar, "images/Abyssinian_100.mat", b"MATLAB 5.0")  # the real archive has a few of these
        add_file(tar, "images/Bengal_99.jpg", b"not listed anywhere")
    annotations = io.BytesIO()
    with tarfile.open(fileobj=annotations, mode="w:gz") as tar:
        add_file(tar, "annotations/trainval.txt", "\n".join(lines["trainval"]).encode() + b"\n")
        add_file(tar, "annotations/test.txt", "\n".join(lines["test"]).encode() + b"\n")
        listing = ["#Image CLASS-ID SPECIES BREED ID", "#All images with 1st letter as captial are cat images"]
        add_file(tar, "annotations/list.txt", "\n".join(listing + lines["trainval"] + lines["test"]).encode())
    return {"images.tar.gz": images.getvalue(), "annotations.tar.gz": annotations.getvalue()}


class FakeResponse(io.BytesIO):
    def __init__(self, data: bytes):
        super().__init__(data)
        self.headers = {"Content-Length": str(len(data))}


@pytest.fixture(scope="module")
def archives() -> dict[str, bytes]:
    return mini_archives()


@pytest.fixture
def network(archives, monkeypatch) -> list[str]:
    """A fake internet that serves the miniature archives; returns the list of URLs requested."""
    requested = []

    def open_url(url: str):
        requested.append(url)
        return FakeResponse(archives[url.rsplit("/", 1)[1]])

    monkeypatch.setattr(pets, "_open_url", open_url)
    monkeypatch.setattr(pets, "CHECKSUMS", {name: hashlib.md5(data).hexdigest() for name, data in archives.items()})
    return requested


@pytest.fixture
def offline(monkeypatch, archives) -> None:
    def open_url(url: str):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(pets, "_open_url", open_url)
    monkeypatch.setattr(pets, "CHECKSUMS", {name: hashlib.md5(data).hexdigest() for name, data in archives.items()})


def files(root: Path, split: str) -> dict[str, int]:
    return {folder.name: len(list(folder.iterdir())) for folder in sorted((root / split).iterdir())}


def test_breeds_are_laid_out_in_the_folder_convention(network, tmp_path: Path) -> None:
    """trainval -> train/ and val/ (stratified 80/20), test -> test/, one folder per breed."""
    root = tmp_path / "oxford-pets"
    assert run_cli("download-pets", str(root)) == 0
    breeds = ["abyssinian", "american_bulldog", "bengal", "yorkshire_terrier"]
    assert files(root, "train") == dict.fromkeys(breeds, 4)
    assert files(root, "val") == dict.fromkeys(breeds, 1)
    assert files(root, "test") == dict.fromkeys(breeds, TEST)
    assert (root / "test" / "american_bulldog" / "american_bulldog_6.jpg").is_file()
    assert not list(root.rglob("*.mat")) and not list(root.rglob("Bengal_99.jpg"))
    assert [url.rsplit("/", 1)[1] for url in network] == ["images.tar.gz", "annotations.tar.gz"]


def test_cats_vs_dogs_has_two_classes(network, tmp_path: Path) -> None:
    root = tmp_path / "cats-dogs"
    assert run_cli("download-pets", str(root), "--task", "cats-vs-dogs") == 0
    assert files(root, "train") == {"cat": 8, "dog": 8}
    assert files(root, "test") == {"cat": 4, "dog": 4}


def test_the_split_is_the_same_on_every_machine(network, tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    run_cli("download-pets", str(first))
    run_cli("download-pets", str(second))
    assert sorted(p.relative_to(first) for p in first.rglob("*.jpg")) == sorted(
        p.relative_to(second) for p in second.rglob("*.jpg"))


def test_running_it_again_is_a_no_op(network, tmp_path: Path, capsys) -> None:
    root = tmp_path / "oxford-pets"
    assert run_cli("download-pets", str(root)) == 0
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*")}
    requests = len(network)
    assert run_cli("download-pets", str(root)) == 0
    assert "Nothing to do" in capsys.readouterr().out
    assert len(network) == requests and {p: p.stat().st_mtime_ns for p in root.rglob("*")} == before


def test_offline_it_fails_in_one_line_saying_what_to_download_and_where(offline, tmp_path: Path, capsys) -> None:
    root = tmp_path / "oxford-pets"
    assert run_cli("download-pets", str(root)) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert pets.MIRRORS[0] + "images.tar.gz" in err and pets.MIRRORS[0] + "annotations.tar.gz" in err
    assert str(root / "downloads") in err
    assert not (root / "train").exists()


def test_archives_downloaded_by_hand_are_used_offline(offline, archives, tmp_path: Path) -> None:
    """Following the offline message (files put in DATA_DIR/downloads/) works without a network."""
    root = tmp_path / "oxford-pets"
    (root / "downloads").mkdir(parents=True)
    for name, data in archives.items():
        (root / "downloads" / name).write_bytes(data)
    assert run_cli("download-pets", str(root)) == 0
    assert json.loads((root / pets.MARKER).read_text())["images"] == len(BREEDS) * (TRAINVAL + TEST)


def test_a_damaged_download_is_refused(offline, tmp_path: Path, capsys) -> None:
    root = tmp_path / "oxford-pets"
    (root / "downloads").mkdir(parents=True)
    (root / "downloads" / "images.tar.gz").write_bytes(b"half a file")
    assert run_cli("download-pets", str(root)) == 1
    assert "checksum" in capsys.readouterr().err


def test_it_never_writes_into_a_folder_that_holds_something_else(network, tmp_path: Path, capsys) -> None:
    root = tmp_path / "my-photos"
    (root / "train" / "cat").mkdir(parents=True)
    assert run_cli("download-pets", str(root)) == 1
    assert "empty or new folder" in capsys.readouterr().err and not network


def test_the_result_passes_check_data(network, tmp_path: Path) -> None:
    root = tmp_path / "oxford-pets"
    run_cli("download-pets", str(root))
    assert run_cli("check-data", str(root)) == 0
