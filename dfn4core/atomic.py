"""Atomic file writing: every file dfn4 writes goes to a hidden temporary file beside it, then is renamed.

Temporary names carry the writer's process id (".NAME.PID.HEX.part"), so a later run in the same
folder removes what a killed run left behind without touching the files of a run still going.
Temporary files are created with mode 0666 less the umask, so outputs get the user's usual permissions.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
from collections.abc import Callable
from pathlib import Path

logger = logging.getLogger(__name__)

_TEMP_NAME = re.compile(r"^\..+\.(\d+)\.[0-9a-f]{8}\.part$")


def temp_path(path: Path) -> Path:
    """A fresh hidden temporary name beside `path` (not created)."""
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.part")


def write_atomically(path: Path, write: Callable[[str], None]) -> Path:
    """Run `write(tmp)` on a temp file beside `path`, then rename it onto `path`.

    A crash or error while writing leaves `path` as it was and no temp file behind.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # 0666 & ~umask, unlike mkstemp's 0600
    mode = os.fstat(fd).st_mode & 0o777
    os.close(fd)
    try:
        write(str(tmp))
        os.chmod(tmp, mode)  # some writers (safetensors) recreate the file as 0600
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)  # signal 0: existence check only
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # another user's process, or a pid we cannot check: keep its files
    return True


def remove_stale_temps(folder: Path) -> list[Path]:
    """Removes temporary files of dfn4's naming in `folder` whose writing process no longer runs.

    Returns:
        The removed paths.
    """
    if os.name != "posix" or not folder.is_dir():
        return []  # on Windows os.kill(pid, 0) would end the process rather than probe it
    removed = []
    for tmp in folder.glob(".*.part"):
        match = _TEMP_NAME.match(tmp.name)
        if match is None or _alive(int(match.group(1))):
            continue
        try:
            tmp.unlink()
        except OSError:
            logger.warning("could not remove the stale temporary file %s", tmp)
            continue
        logger.info("removed %s, left by an interrupted run", tmp)
        removed.append(tmp)
    return removed


def same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file (through links, `..` or hard links)."""
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist
        return False
