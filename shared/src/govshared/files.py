"""Data files only their service reads: databases, stored materials, emails, keys.

Files are created 0600 and folders 0700 from the first byte (never created with the process's
umask and narrowed afterwards, which leaves a window), whatever the umask of the container.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path

FILE_MODE = 0o600
DIR_MODE = 0o700


def private_dir(path: Path) -> Path:
    """Create ``path`` (and missing parents) 0700; an existing folder of ours is narrowed to 0700."""
    # ``mkdir(parents=True)`` gives the parents it makes the umask's mode: make each one here.
    missing = []
    folder = path
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    for folder in reversed(missing):
        folder.mkdir(mode=DIR_MODE, exist_ok=True)
    with contextlib.suppress(PermissionError):
        # A folder another user owns (a mounted volume) keeps its mode: the mount decides it.
        if path.stat().st_uid == os.getuid():
            path.chmod(DIR_MODE)
    return path


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, the file 0600 from its creation."""
    private_dir(path.parent)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def touch_private(path: Path) -> Path:
    """Create ``path`` empty and 0600 if it does not exist (a SQLite database before it opens)."""
    private_dir(path.parent)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
    return path
