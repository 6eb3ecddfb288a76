"""Database files set aside when a store starts afresh, and deleted in the background.

A Reset that replaces everything in a file starts a new file instead of
deleting row by row (``SqliteStore.replace``). The old file, its write-ahead
log and its shared memory are renamed out of the way at once, and a thread
deletes them: the file system takes most of a second to delete a file of a
few gigabytes, which the Reset need not wait for. A server killed before its
thread is done leaves them behind, named ``<database>.reset-<token>...``: the
next store opened on the same path deletes them.
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import threading
import uuid
from collections.abc import Sequence
from typing import Final

_log = logging.getLogger("auxia_decision.store")

ASIDE: Final = ".reset-"
"""What the name of a database file set aside has after the database's own name."""
_SUFFIXES: Final = ("", "-wal", "-shm")
"""A SQLite database's files: the database, its write-ahead log and its shared memory."""


class OldFiles:
    """The files of one database path set aside, and the threads deleting them.

    Args:
        path: the database file's path.

    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._threads: list[threading.Thread] = []

    def set_aside(self) -> None:
        """Rename the database's files out of the way and start deleting them.

        Once it returns, nothing is at the database's path: a store opened
        there starts a new file.
        """
        token = uuid.uuid4().hex[:12]
        aside: list[str] = []
        for suffix in _SUFFIXES:
            target = f"{self.path}{ASIDE}{token}{suffix}"
            with contextlib.suppress(FileNotFoundError):
                os.rename(self.path + suffix, target)
                aside.append(target)
        self._delete(aside)

    def delete_leftovers(self) -> None:
        """Start deleting the files set aside and not deleted before (by a server since killed)."""
        self._delete(sorted(glob.glob(glob.escape(self.path + ASIDE) + "*")))

    def wait(self) -> None:
        """Wait until the files set aside so far are deleted."""
        threads, self._threads = self._threads, []
        for thread in threads:
            thread.join()

    def _delete(self, paths: Sequence[str]) -> None:
        if not paths:
            return
        self._threads = [thread for thread in self._threads if thread.is_alive()]
        thread = threading.Thread(target=_delete, args=(paths,), name="auxia-delete-old-files")
        thread.start()
        self._threads.append(thread)


def _delete(paths: Sequence[str]) -> None:
    """Delete files, saying which could not be."""
    for path in paths:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError as error:
            _log.warning("%s, set aside by a reset, could not be deleted: %s", path, error)
