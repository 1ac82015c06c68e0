"""Output folders that never mix runs: claimed (checked and locked) before any sampling,
filled in a hidden sibling folder and renamed into place whole.

A folder may receive a result when it does not exist or is empty. One that holds an earlier
polydiff result (its ``metadata.json``) is replaced as a whole only when asked
(``overwrite=True``, ``--overwrite``); anything else is refused, so nothing of the user's is
ever deleted. A lock file beside the folder stops a second process writing the same one, and
staging folders a killed process left behind are removed by the next writer.
"""
from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from pathlib import Path

from .errors import InvalidInputError, PolydiffError

METADATA = "metadata.json"


class OutputFolder:
    """``with OutputFolder(path) as out: ...; out.write(result)`` — every path problem is
    raised on entry, before the caller does any work."""

    def __init__(self, path, overwrite: bool = False) -> None:
        if path is None or str(path).strip() == "":
            raise InvalidInputError("out: the output folder is empty; name a folder")
        self.path = Path(path)
        self.overwrite = overwrite
        self._lock = None
        self._staging: Path | None = None

    def __enter__(self) -> "OutputFolder":
        self._check_target()
        parent = self.path.absolute().parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
            self._lock = _lock(parent / f".{self.path.name}.lock", self.path)
            _remove_stale(parent, self.path.name)
            self._staging = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.staging-", dir=parent))
        except OSError as exc:
            self.__exit__(None, None, None)
            raise InvalidInputError(f"out: cannot write {self.path} ({_reason(exc)})") from None
        self._check_target()  # again, now that no one else can change it
        return self

    def __exit__(self, *exc) -> None:
        if self._staging is not None:
            shutil.rmtree(self._staging, ignore_errors=True)
            self._staging = None
        if self._lock is not None:
            _unlock(*self._lock)
            self._lock = None

    def write(self, result) -> list[Path]:
        """The result's files and ``metadata.json``, appearing in the folder all at once."""
        if self._staging is None:
            raise RuntimeError("OutputFolder.write outside its `with` block")
        staging = self._staging
        written = [Path(p) for p in result.writer(result.outputs, staging, result.request)]
        meta = dict(result.metadata, files=[p.relative_to(staging).as_posix() for p in written])
        (staging / METADATA).write_text(json.dumps(meta, indent=2, default=str))
        staging.chmod(0o777 & ~current_umask())
        old = None
        if self.path.exists():
            if any(self.path.iterdir()):  # an earlier result, and overwrite was checked on entry
                old = self.path.with_name(f".{self.path.name}.old-{os.getpid()}")
                os.rename(self.path, old)
            else:
                self.path.rmdir()
        os.rename(staging, self.path)
        self._staging = None
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return [self.path / p.relative_to(staging) for p in written] + [self.path / METADATA]

    def _check_target(self) -> None:
        path = self.path
        if path.exists() and not path.is_dir():
            raise InvalidInputError(f"out: {path} is a file, not a folder")
        if not path.is_dir() or not any(path.iterdir()):
            return
        if not (path / METADATA).is_file():
            raise InvalidInputError(
                f"out: {path} is not empty and holds no polydiff result; choose a new or empty folder")
        if not self.overwrite:
            raise InvalidInputError(
                f"out: {path} holds an earlier result; pass --overwrite (overwrite=True) to replace it "
                "as a whole, or choose another folder")


def next_run_folder(parent, stem: str) -> Path:
    """``parent/stem-0001``, ``-0002``, ...: the first number after every existing run."""
    parent = Path(parent)
    taken = [0]
    if parent.is_dir():
        for p in parent.iterdir():
            head, _, number = p.name.lstrip(".").partition(f"{stem}-")
            if head == "" and number[:4].isdigit():
                taken.append(int(number[:4]))
    return parent / f"{stem}-{max(taken) + 1:04d}"


def _lock(path: Path, target: Path):
    """An exclusive lock on ``path`` (created if need be), or an error naming the folder."""
    import fcntl

    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise PolydiffError(f"out: another polydiff process is writing {target}; wait for it or "
                                "choose another folder") from None
        try:  # the holder before us may have removed the file after we opened it: retry
            if os.fstat(fd).st_ino == os.stat(path).st_ino:
                return fd, path
        except FileNotFoundError:
            pass
        os.close(fd)


def _unlock(fd: int, path: Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
    os.close(fd)


def _remove_stale(parent: Path, name: str) -> None:
    """Staging and replaced folders of a writer that did not finish (we hold the lock)."""
    for prefix in (f".{name}.staging-", f".{name}.old-"):
        for p in parent.glob(f"{prefix}*"):
            shutil.rmtree(p, ignore_errors=True)


def _reason(exc: OSError) -> str:
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return "permission denied"
    return exc.strerror or type(exc).__name__


def current_umask() -> int:
    """The process umask. Linux reports it in /proc without changing it; elsewhere reading it
    means setting it (briefly 0 for every thread, e.g. a server's), so that is the fallback."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0)
    os.umask(mask)
    return mask
