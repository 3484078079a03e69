"""Which files are images: the extensions we read, the files operating systems leave behind, and
finding the images among the files and folders someone names (``predict``'s inputs).

Only the standard library is imported here.
"""

from __future__ import annotations

from pathlib import Path

# Extensions we treat as images, compared in lowercase so IMG_001.JPG counts too (HEIC: iPhones).
IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".heic", ".heif", ".avif"}

# Files and folders that operating systems and tools leave behind: never photos, never classes.
SYSTEM_NAMES = {"__MACOSX", "Thumbs.db", "desktop.ini", "__pycache__"}


def is_hidden(path: Path) -> bool:
    """Files like .DS_Store, ._IMG_001.jpg or Thumbs.db that the operating system leaves behind."""
    return path.name.startswith(".") or path.name in SYSTEM_NAMES


def is_image_file(path: Path) -> bool:
    """True for a visible file whose extension is an image format we read."""
    return path.is_file() and not is_hidden(path) and path.suffix.lower() in IMAGE_EXTENSIONS


def find_images(inputs: list[str]) -> tuple[list[Path], list[tuple[str, str]]]:
    """Files to predict (folders searched recursively) and the ones skipped with the reason why."""
    files, skipped = [], []
    for given in inputs:
        path = Path(given).expanduser()
        if path.is_dir():
            for file in sorted(p for p in path.rglob("*") if p.is_file()):
                if any(is_hidden(Path(part)) for part in file.relative_to(path).parts):
                    continue  # .DS_Store, ._IMG_0001.jpg: the system's, not the user's
                if file.suffix.lower() in IMAGE_EXTENSIONS:
                    files.append(file)
                else:
                    skipped.append((str(file), "not an image file"))
        elif path.is_file():
            files.append(path)  # named explicitly: try it whatever its extension, and say if it fails
        else:
            skipped.append((given, "no such file or folder"))
    return files, skipped
