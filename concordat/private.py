"""The data dir is its owner's alone: directories 0700, files 0600.

It holds the SQLite store and views, Temporal's dev-server database (case state in Temporal's own
words), logs, and keys. Concordat makes its directories and files with those modes
(`make_dirs`, `make_file`), runs with the umask 0o077 (`restrict_umask`: the CLI, and every child
process `concordat up` starts, the Temporal dev server included), and `concordat up` tightens
whatever an earlier release left readable by others (`tighten`).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600
UMASK = 0o077


def restrict_umask() -> None:
    """Files and directories this process (and any child it starts) creates are its owner's alone."""
    os.umask(UMASK)


def make_dirs(path: Path) -> Path:
    """`path` and each missing parent, made 0700 (Path.mkdir(parents=True) gives parents the umask's mode)."""
    missing = []
    at = path
    while not at.exists():
        missing.append(at)
        if at.parent == at:
            break
        at = at.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=DIR_MODE)
        except FileExistsError:
            continue  # another process made it at the same moment
        directory.chmod(DIR_MODE)  # whatever the umask took from mkdir's mode
    return path


def make_file(path: Path) -> Path:
    """An empty file made 0600 unless it exists: SQLite then writes its database there, and gives its
    journal and WAL files the database file's mode."""
    make_dirs(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return path
    os.close(fd)
    return path


def tighten(data_dir: Path) -> int:
    """Make the data dir and everything in it 0700 (directories) / 0600 (files); symbolic links are
    neither followed nor changed. Returns how many modes it changed."""
    changed = 0
    make_dirs(data_dir)
    for root, dirs, files in os.walk(data_dir):
        for name in [*dirs, *files]:
            changed += _restrict(Path(root) / name)
    changed += _restrict(data_dir)
    return changed


def _restrict(path: Path) -> int:
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return 0  # gone meanwhile (a SQLite journal)
    if stat.S_ISLNK(mode):
        return 0
    wanted = DIR_MODE if stat.S_ISDIR(mode) else FILE_MODE
    if stat.S_IMODE(mode) == wanted:
        return 0
    try:
        path.chmod(wanted)
    except FileNotFoundError:
        return 0
    return 1
