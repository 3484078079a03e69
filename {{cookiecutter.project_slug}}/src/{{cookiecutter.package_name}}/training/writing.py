"""Every file of the run folder is written whole or not at all.

A crash, ``kill -9`` or a full disk in the middle of writing ``config.yaml`` must not leave half of it,
or an empty one that a later ``--resume`` would read as "no settings". So each file is first written
to a hidden temporary file next to it, forced onto the disk, and then renamed over the old one: the
operating system does the rename in one step, so readers see the old file or the new one, never a mix.
(Checkpoints do the same in checkpoints.py.)
"""

from __future__ import annotations

import csv
import errno
import io
import os
from pathlib import Path

from {{ cookiecutter.package_name }}.errors import UserError


def write_atomically(path: Path, data: str | bytes) -> None:
    """Write ``data`` (text as UTF-8) to ``path``, whole or not at all; the old file stays until then.

    A full disk is raised as it is (train says what was kept); any other failure is one line.
    """
    path = Path(path)
    temporary = path.with_name(f".{path.name}.tmp")
    content = data.encode("utf-8") if isinstance(data, str) else data
    try:
        temporary.unlink(missing_ok=True)  # a leftover of a killed run
        with open(temporary, "xb") as file:
            file.write(content)
            file.flush()
            os.fsync(file.fileno())  # on disk before the rename, so a power cut cannot leave an empty file
        os.replace(temporary, path)
    except BaseException as err:
        temporary.unlink(missing_ok=True)
        if isinstance(err, OSError) and err.errno != errno.ENOSPC:
            raise UserError(f"cannot write {path} ({err.strerror or err}); "
                            f"check that you may write to {path.parent}.") from None
        raise


def write_csv(path: Path, rows: list[list[str]]) -> None:
    """A CSV file (first row: the column names), written whole or not at all."""
    text = io.StringIO(newline="")
    csv.writer(text).writerows(rows)
    write_atomically(path, text.getvalue())


def picture_bytes(picture, **options) -> bytes:
    """A Pillow image or a Matplotlib figure encoded in memory (PNG unless ``format`` says otherwise), for
    ``write_atomically``."""
    buffer = io.BytesIO()
    if hasattr(picture, "savefig"):
        picture.savefig(buffer, **{"format": "png", **options})
    else:
        picture.save(buffer, **{"format": "PNG", **options})
    return buffer.getvalue()
