"""Writing files so that nothing is lost: whole or not at all, with the user's permissions.

``atomic_write(path)`` (an open file) and ``atomic_path(path)`` (a file name, for writers that
want one) write to a temporary file beside ``path`` and rename it over ``path`` only once it is
complete and on disk, so an interrupted write leaves the old file intact. Every file the package
writes for a user goes through them. The
temporary file is created like any file the user makes (her umask applies), and it names the
process that writes it, so that ``remove_abandoned(folder)`` can clear the ones of killed runs.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import secrets
import shutil
import socket
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from .errors import FishCAMError

TEMP_SUFFIX = ".tmp"
# Temporary names carry the machine (a short hash of its name) and the process: a folder shared by
# several machines (a cluster's cache) must not lose a file that another machine is still writing.
_HOST = hashlib.sha1(socket.gethostname().encode()).hexdigest()[:8]
_TEMP_NAME = re.compile(r"\.(?P<host>[0-9a-f]{8})-(?P<pid>\d+)-[0-9a-f]+\.tmp$")
_OTHER_MACHINES_GRACE_S = 24 * 3600


def temp_path(path: str | os.PathLike) -> Path:
    """A fresh temporary name beside ``path``: ``.<name>.<host>-<pid>-<random>.tmp``."""
    path = Path(path)
    return path.with_name(f".{path.name}.{_HOST}-{os.getpid()}-{secrets.token_hex(4)}{TEMP_SUFFIX}")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, durable: bool = True) -> Iterator[Path]:
    """A fresh temporary path beside ``path`` for a writer that wants a file name (``savefig``,
    ``to_csv``, a memory map). On leaving the block without error the file is flushed to disk
    (unless ``durable=False``: pictures that can be made again, where a sync per file is slow on
    network drives) and renamed onto ``path``; on any error it is removed and ``path`` is untouched.
    Returns ``path``'s temporary twin; the writer creates it (so the user's umask applies)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    try:
        yield tmp
        if durable:
            with open(tmp, "rb+") as written:
                os.fsync(written.fileno())
        os.replace(tmp, path)
    except OSError as error:
        tmp.unlink(missing_ok=True)
        if _names_nothing_or(error, tmp):  # name the file being written, not its temporary twin
            raise type(error)(error.errno, error.strerror, str(path)) from error
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _names_nothing_or(error: OSError, tmp: Path) -> bool:
    """A system error about ``tmp``, or a failed write that names no file; our own errors (a full
    disk's ``NoSpaceError``) carry their message already."""
    plain = type(error).__module__ == "builtins" and error.errno is not None
    return plain and (error.filename is None or error.filename == str(tmp))


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb", **open_args) -> Iterator[IO]:
    """``atomic_path`` for a writer that wants an open file: ``with atomic_write(p, "w") as f``.
    Readers see the old file or the whole new one, never a part."""
    with atomic_path(path) as tmp:
        # "x": a new file (never another writer's), created with the permissions the umask gives.
        with open(tmp, mode.replace("w", "x"), **open_args) as handle:
            yield handle


def process_alive(pid: int) -> bool:
    """True if a process with this id runs on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def _abandoned(tmp: Path) -> bool:
    named = _TEMP_NAME.search(tmp.name)
    if named is None:
        return True  # a name of an older version, which named no process
    if named["host"] != _HOST:  # another machine's: its process cannot be asked, so only once it is old
        return time.time() - tmp.stat().st_mtime > _OTHER_MACHINES_GRACE_S
    return not process_alive(int(named["pid"]))


def remove_abandoned(folder: str | os.PathLike, pattern: str = "*") -> list[Path]:
    """Delete the temporary files (``.<name>...tmp``) in ``folder`` matching ``pattern`` whose
    writing process is gone: this machine's whose process has ended, another machine's a day
    after they were last written, and those of older versions, which named no process.
    Returns the files removed."""
    removed = []
    folder = Path(folder)
    if not folder.is_dir():
        return removed
    for tmp in folder.glob(f".{pattern}{TEMP_SUFFIX}"):
        try:
            if _abandoned(tmp):
                tmp.unlink()
                removed.append(tmp)
        except FileNotFoundError:
            pass  # its writer finished (or another cleaner came first)
    return removed


def earlier_outputs(folder: str | os.PathLike, patterns: tuple[str, ...]) -> list[Path]:
    """What an earlier run left in ``folder``: the entries matching ``patterns`` (globs), sorted."""
    folder = Path(folder)
    return sorted({p for pattern in patterns for p in folder.glob(pattern)}) if folder.is_dir() else []


def describe(paths: list[Path]) -> str:
    """Entry names for a message: ``best.pt, eval-test/, last.pt``."""
    return ", ".join(p.name + ("/" if p.is_dir() else "") for p in paths)


def remove_all(paths: list[Path]) -> None:
    """Delete files and folders (with their contents)."""
    for path in paths:
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)


# ---------------------------------------------------------------------------------------
# One writer per folder

_HELD: dict[Path, int] = {}  # folders this process holds, and how many nested holds it has on each


class FolderBusyError(FishCAMError, RuntimeError):
    """Another process is writing the folder: two writers would mix their files."""


def lock_path(folder: str | os.PathLike) -> Path:
    """The lock file of ``folder``: ``.<name>.lock`` beside it, so that replacing the folder whole
    (a dataset written anew) keeps its lock."""
    folder = Path(folder).expanduser().absolute()
    return folder.with_name(f".{folder.name}.lock")


@contextlib.contextmanager
def hold_folder(folder: str | os.PathLike, what: str = "a run", wait_if_same: bool = False) -> Iterator[None]:
    """Hold ``folder`` for writing during the block: a second process (on this machine, or another
    that shares the disk) that asks for it meanwhile gets ``FolderBusyError`` naming the holder.
    The lock is the operating system's (``flock``), so a killed process leaves no stale lock;
    the holder of a folder may hold it again (nested). ``what`` says what is written, for the message;
    with ``wait_if_same``, a process that would write the very same ``what`` waits for the holder
    instead (two notebooks making the one dataset both need, which the second then finds made)."""
    path = lock_path(folder)
    key = path.resolve()  # the same key for the same folder however it is named (.., links)
    if key in _HELD:
        _HELD[key] += 1
        try:
            yield
        finally:
            _HELD[key] -= 1
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = _acquire(path, Path(folder), what, wait_if_same)
    except PermissionError:
        # The folder's parent is not ours to write (a run folder "." in a home directory): lock in the cache.
        path = _lock_in_cache(key)
        handle = _acquire(path, Path(folder), what, wait_if_same)
    except FolderBusyError:
        raise
    except OSError as error:
        if type(error).__module__ != "builtins" or error.errno is None:
            raise
        # A folder that cannot be written: say so of the folder the user named, not of its lock file.
        raise type(error)(error.errno, error.strerror, str(folder)) from error
    _HELD[key] = 1
    try:
        yield
    finally:
        del _HELD[key]
        with contextlib.suppress(OSError):
            path.unlink()  # while still locked: whoever opens it next makes a new file (see _acquire)
        handle.close()


def _lock_in_cache(key: Path) -> Path:
    from .settings import cache_dir

    folder = cache_dir() / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / (hashlib.sha1(str(key).encode()).hexdigest()[:16] + ".lock")


def _acquire(path: Path, folder: Path, what: str, wait_if_same: bool) -> IO:
    unnamed = 0
    while True:
        handle = open(path, "a+")
        if not _try_lock(handle):
            handle.seek(0)
            holder = handle.read().strip()
            # An empty file: its holder has the lock but has not written its name yet; look again.
            if (wait_if_same and holder.endswith(f": {what}")) or (not holder and unnamed < 20):
                unnamed += not holder
                handle.close()
                time.sleep(0.1 if not holder else 0.5)
                continue
            handle.close()
            raise FolderBusyError(f"{folder} is being written by {holder or 'another process'}; wait for it to "
                                  f"finish, or use another folder. (Its lock is {path}; it goes when that process "
                                  f"ends.)")
        # The holder before us may have removed the file after we opened it: lock the file that is there.
        try:
            same = os.path.samestat(os.fstat(handle.fileno()), os.stat(path))
        except FileNotFoundError:
            same = False
        if same:
            handle.seek(0)
            handle.truncate()
            handle.write(f"process {os.getpid()} on {socket.gethostname()}: {what}")
            handle.flush()
            return handle
        handle.close()


_WINDOWS_LOCK_BYTE = 1 << 20  # one fixed byte past any holder's text, locked whatever the file holds


def _try_lock(handle: IO) -> bool:
    """True when this process now holds the lock; False when another does. A file system that
    cannot lock at all (NFS without lockd, some network mounts) is said once and not locked."""
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        handle.seek(_WINDOWS_LOCK_BYTE)
        try:
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False
        finally:
            handle.seek(0)
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError as error:
        if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return False
        warnings.warn(f"cannot lock {handle.name} ({error.strerror}): this file system does not lock, so a second "
                      f"writer into the folder would not be stopped", stacklevel=4)
        return True
