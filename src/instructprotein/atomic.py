"""Write-then-rename, so that an interrupted stage never leaves a half-written output behind."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(target: str | Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success it replaces ``target``.

    The temporary file lives in the same directory so that the final ``os.replace`` is a
    rename on one file system (atomic on POSIX). On any exception the temporary is removed
    and ``target`` keeps its old content, if it had one.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(target, suffix)
    fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(target), suffix=suffix + ".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get normal permissions
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


@contextlib.contextmanager
def atomic_dir(target: str | Path) -> Iterator[Path]:
    """Like :func:`atomic_path` for a directory: build it aside, then swap it in."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(target)
    tmp = Path(tempfile.mkdtemp(prefix=_temp_prefix(target), suffix=".tmp", dir=target.parent))
    try:
        yield tmp
        honour_umask(tmp)  # mkdtemp makes 0700 (and some writers 0600 files): others could not read a model
        if target.exists():
            old = target.with_name(f".{target.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _temp_prefix(target: Path) -> str:
    """``.NAME.PID.``: the process id tells a later run whether the writer is still alive."""
    return f".{target.name}.{os.getpid()}."


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def remove_stale_temps(target: str | Path, suffix: str = "") -> list[Path]:
    """Remove what a killed writer of ``target`` left beside it; returns what was removed.

    A ``kill -9`` during ``kg build`` skips every ``finally``, leaving hidden
    ``.kg.sqlite.PID.XXXX.sqlite.tmp`` files (and SQLite's ``-journal`` next to them) that no
    rerun removed. Only temporaries of this target's kind are touched, and only those whose
    writer (the process id in the name) is gone, so two writers of different targets in one
    folder never remove each other's files. Names without a process id (the layout before
    ids) count as stale.
    """
    target = Path(target)
    removed = []
    head = f".{target.name}."
    try:
        entries = list(os.scandir(target.parent))
    except OSError:
        return removed
    for entry in entries:
        name = entry.name
        base = name
        for side in ("-journal", "-wal", "-shm"):
            base = base.removesuffix(side)
        if not (base.startswith(head) and base.endswith(suffix + ".tmp")):
            continue
        parts = base[len(head) : len(base) - len(suffix + ".tmp")].split(".")  # PID, random part
        if len(parts) == 2 and parts[0].isdigit():
            if _alive(int(parts[0])):
                continue
        elif len(parts) != 1:
            continue  # another target's temporary whose name extends ours (".kg.sqlite.mmseqs.PID.X.tmp")
        path = Path(entry.path)
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        removed.append(path)
    return removed


def honour_umask(root: str | Path) -> None:
    """Give ``root`` and everything under it the modes the umask would have given them.

    ``tempfile.mkdtemp`` / ``mkstemp`` create 0700 / 0600 on purpose (private scratch), but a
    folder built aside and renamed into place is an output: under umask 022 a model folder
    must be 0755 with 0644 files, or no other user of a shared machine can load or serve it.
    Executable bits are kept where the writer set them.
    """
    mask = _umask()
    root = Path(root)
    for dirpath, _dirnames, filenames in os.walk(root):
        os.chmod(dirpath, 0o777 & ~mask)
        for name in filenames:
            path = os.path.join(dirpath, name)
            if os.path.islink(path):
                continue
            mode = os.stat(path).st_mode
            execs = 0o111 if mode & 0o100 else 0
            os.chmod(path, (0o666 | execs) & ~mask)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(target: str | Path, text: str) -> None:
    """Atomically write a small text file."""
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
