"""Files that hold personal data on disk (an upload on its way into an import, a report
of rejected rows, a generated password): in a folder only this OS user can open (0700),
each file 0600 from the moment it exists, a half-written one never left behind, and
none kept longer than it serves.

Every such file is made here: :func:`temporary_file` for what lives only while a request
runs, :func:`private_file` for what is kept (written under a temporary name, renamed when
whole), :func:`remove_leftovers` at start for the temporaries of a process that was
killed, :func:`remove_older_than` from the retention job.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import IO, Any

TEMP_PREFIX = ".tmp-"


def private_folder(path: Path) -> Path:
    """``path`` made if needed and set to 0700 (an existing folder's mode too)."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.chmod(0o700)
    return path


def _create(path: Path) -> int:
    """A new file, 0600 whatever the umask, refused if the name exists (or is a link)."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)


def _temporary_name(folder: Path, suffix: str) -> Path:
    return folder / f"{TEMP_PREFIX}{os.getpid()}-{secrets.token_hex(8)}{suffix}"


@contextlib.contextmanager
def temporary_file(folder: Path, suffix: str = "") -> Iterator[Path]:
    """An empty 0600 file in the private ``folder``, removed when the block ends,
    however it ends (one left by a killed process goes at the next start)."""
    path = _temporary_name(private_folder(folder), suffix)
    os.close(_create(path))
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


@contextlib.contextmanager
def private_file(path: Path, mode: str = "w", **options: Any) -> Iterator[IO[Any]]:
    """``path`` opened for writing (``open``'s ``mode`` and options), 0600: written under
    a temporary name in the same folder and renamed to ``path`` only when the block ends
    without an error; on an error nothing is left. A missing folder is made 0700; an
    existing one is left as it is (an operator's `--report` folder is theirs)."""
    if not mode.startswith("w"):
        raise ValueError("private_file only writes")
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temp = _temporary_name(path.parent, path.suffix)
    try:
        with os.fdopen(_create(temp), mode, **options) as out:
            yield out
        temp.replace(path)
    finally:
        temp.unlink(missing_ok=True)


def read_or_create_secret(path: Path) -> str:
    """The random secret kept in ``path`` (0600), made on first use; the same for every
    process that reads it after."""
    if not path.exists():
        private_folder(path.parent)
        with contextlib.suppress(FileExistsError), os.fdopen(_create(path), "w") as out:
            out.write(secrets.token_hex(24))
    return path.read_text().strip()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_leftovers(folder: Path) -> int:
    """Remove the temporary files of processes that are gone (killed in the middle of an
    import, say); returns how many. Another running worker's files are kept."""
    if not folder.is_dir():
        return 0
    removed = 0
    for path in folder.glob(f"{TEMP_PREFIX}*"):
        owner = path.name[len(TEMP_PREFIX) :].split("-", 1)[0]
        if owner.isdigit() and _alive(int(owner)):
            continue
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed += 1
    return removed


def remove_older_than(folder: Path, age: timedelta, *, now: float | None = None) -> int:
    """Remove the files in ``folder`` last written more than ``age`` ago; returns how many."""
    if not folder.is_dir():
        return 0
    limit = (time.time() if now is None else now) - age.total_seconds()
    removed = 0
    for path in folder.iterdir():
        with contextlib.suppress(FileNotFoundError):
            if path.is_file() and not path.is_symlink() and path.stat().st_mtime < limit:
                path.unlink()
                removed += 1
    return removed
