"""A write-behind buffer's items on disk, so that a killed process leaves them to its successor."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

T = TypeVar("T")


class SpoolInUse(RuntimeError):
    """Another process holds the spool file: two processes must never share one."""


class Spool(Generic[T]):
    """An append-only file of the items a buffer holds, one line each: appended when an
    item is kept, cleared once every item is written, read back at the next start.

    Lines go straight to the kernel (write(2), no fsync), so a process that is killed loses
    none of them; a machine that crashes may lose the last moments' (the page cache). The
    file is locked while open: a second process with the same path fails at start.
    """

    def __init__(
        self, path: Path, encode: Callable[[T], bytes], decode: Callable[[bytes], T]
    ) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._encode = encode
        self._decode = decode
        self._fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as error:
            os.close(self._fd)
            raise SpoolInUse(f"{path} is in use by another process") from error

    def append(self, item: T) -> None:
        line = self._encode(item)
        if b"\n" in line:
            raise ValueError("a spooled item must encode to one line")
        os.write(self._fd, line + b"\n")

    def items(self) -> list[T]:
        """What the file holds, oldest first; a last line cut short (no newline) is skipped:
        its write never completed, so its item was never reported kept."""
        lines = self.path.read_bytes().split(b"\n")[:-1]
        return [self._decode(line) for line in lines if line]

    def take_over(self, path: Path) -> int:
        """Moves the lines of another spool file, one that no process holds any more, to
        the end of this one and removes it; returns how many. A file in use is left alone.

        Killed between the move and the removal, both files hold the lines, and they are
        written twice: every held write survives that (see WriteBehind).
        """
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            return 0
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return 0
            data = path.read_bytes()
            # Complete lines only: a last line cut short was never reported kept.
            complete = memoryview(data)[: data.rfind(b"\n") + 1]
            while complete:
                complete = complete[os.write(self._fd, complete) :]
            os.unlink(path)
            return data.count(b"\n")
        finally:
            os.close(fd)

    def clear(self) -> None:
        os.ftruncate(self._fd, 0)

    def close(self) -> None:
        os.close(self._fd)  # also releases the lock
