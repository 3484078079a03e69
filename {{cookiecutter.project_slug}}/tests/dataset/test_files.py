"""Which files are images: hidden and system files are recognised, extensions in any case."""

from __future__ import annotations

from pathlib import Path

from {{ cookiecutter.package_name }}.dataset.files import is_hidden, is_image_file


def test_hidden_and_system_files_are_recognised(tmp_path: Path) -> None:
    for name in (".DS_Store", "._IMG_1.jpg", "Thumbs.db", "__MACOSX"):
        assert is_hidden(tmp_path / name)
    (tmp_path / "IMG_1.JPEG").write_bytes(b"x")
    (tmp_path / "notes.txt").write_bytes(b"x")
    assert is_image_file(tmp_path / "IMG_1.JPEG") and not is_image_file(tmp_path / "notes.txt")
