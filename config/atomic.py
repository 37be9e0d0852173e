"""Replacing a file so that, whatever happens, it is either the old version or the new one.

Write a temporary file in the same folder, flush and fsync it, set its mode, then rename it over
the target (atomic on POSIX) and fsync the folder so the rename itself is durable.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

TEMP_PREFIX = "."
TEMP_SUFFIX = ".tmp"


def atomic_write(path: Path, text: str, mode: int, before_rename: Callable[[], None] | None = None) -> None:
    """Replace ``path`` with ``text``; on any failure the old file is untouched and no temp file remains.

    ``before_rename`` runs between the durable temporary file and the rename (tests crash there).
    """
    folder = path.parent
    fd, temp_name = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}{path.name}.", suffix=TEMP_SUFFIX, dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp_name, mode)
        if before_rename is not None:
            before_rename()
        os.replace(temp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp_name)
        raise
    _fsync_folder(folder)


def stale_temporaries(path: Path) -> list[Path]:
    """Temporary files a crash left next to ``path``."""
    return sorted(path.parent.glob(f"{TEMP_PREFIX}{path.name}.*{TEMP_SUFFIX}"))


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
