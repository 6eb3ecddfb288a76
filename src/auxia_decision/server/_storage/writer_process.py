"""The writer process: appends and commits the rows the server hands it, on its own interpreter.

The server's event loop hands each batch of rows (``rows.RowBatch``) to this
process over a private socket pair and goes on serving; the process appends
the batches that arrived meanwhile in one transaction, commits it to disk
(``synchronous=FULL``) and only then acknowledges them. With its own
interpreter it neither waits for nor holds up the server's, and no thread of
the server has to be woken for a commit: the acknowledgements arrive as
ordinary socket reads of the event loop. ``writer_client`` is the server's side.

Run as a script (``python -I writer_process.py FD PATH``), it imports only the
standard library and its sibling ``rows``, so the writer starts in a few
milliseconds.

Both directions carry frames (``frames``). To the writer, a
frame is a batch: ``(kind, values)``, a ``rows.RowKind`` and its rows' values
in turn. From the writer, a frame is ``(count, error, code, last,
last_served)``: the ``count`` oldest unanswered batches were committed
(``error`` None; ``last`` and ``last_served`` the ids of the last interaction
and served rows appended, 0 for none) or were not (``error`` the reason and
``code`` SQLite's extended error code, and none of them is stored). These
follow its first frame, which says whether it opened the database
(``process_link``).
"""

from __future__ import annotations

import contextlib
import pathlib
import signal
import socket
import sqlite3
import sys

if __package__:  # imported as a module of the server
    from auxia_decision.server._storage import rows
    from auxia_decision.server._storage.frames import READ_SIZE, Frames, frame
else:  # run as a script: its siblings alone, not the packages above it (the whole server)
    sys.path.insert(0, str(pathlib.Path(__file__).parent))
    import rows  # type: ignore[import-not-found, no-redef]
    from frames import READ_SIZE, Frames, frame  # type: ignore[import-not-found, no-redef]

Answer = tuple[int, str | None, int, int, int]
"""What the writer answers: (count of batches, error or None, SQLite error code, last
interaction id, last served id)."""


class _Inbox:
    """The batches the writer has received and not yet committed."""

    def __init__(self, sock: socket.socket) -> None:
        self._socket = sock
        self._frames = Frames()
        self.batches: list[tuple[int, rows.Values]] = []
        self.rows = 0
        self.closed = False
        """Whether the server has closed its end: no batch comes after these."""

    def wait(self) -> None:
        """Wait for data, then take all that has arrived."""
        data = self._socket.recv(READ_SIZE)
        if data:
            self._add(data)
            self.read_available()
        else:
            self.closed = True

    def read_available(self) -> bool:
        """Take what has arrived without waiting; return whether anything had."""
        arrived = False
        while not self.closed:
            try:
                data = self._socket.recv(READ_SIZE, socket.MSG_DONTWAIT)
            except BlockingIOError:
                break
            if not data:
                self.closed = True
                break
            self._add(data)
            arrived = True
        return arrived

    def linger(self) -> None:
        """Let a small group wait a little for more batches (see ``linger``)."""

        def take_more() -> int:
            before = self.rows
            self.read_available()
            return 0 if self.closed else self.rows - before

        if not self.closed:
            rows.linger(self.rows, take_more)

    def take(self) -> list[tuple[int, rows.Values]]:
        """Return the batches received so far, and forget them."""
        batches, self.batches, self.rows = self.batches, [], 0
        return batches

    def _add(self, data: bytes) -> None:
        for kind, values in self._frames.feed(data):
            self.batches.append((kind, values))
            self.rows += rows.row_count(kind, values)


def write_until_closed(fd: int, path: str) -> int:
    """Append the batches that arrive on ``fd`` to the database at ``path`` until it closes."""
    # Signals for the server (a terminal's Ctrl-C) are its to handle: the
    # writer stops when the server closes its end of the socket.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    with socket.socket(fileno=fd) as sock:
        try:
            connection = rows.open_database(path)
        except sqlite3.Error as error:
            sock.sendall(frame((str(error), rows.error_code(error))))
            return 1
        sock.sendall(frame((None, 0)))
        inbox = _Inbox(sock)
        while True:
            # Batches that came while the last group was being committed mean
            # load: a small group waits a little for company. A lone batch
            # that finds the writer idle is committed at once.
            if inbox.read_available():
                inbox.linger()
            elif not inbox.batches:
                if inbox.closed:
                    break
                inbox.wait()
            batches = inbox.take()
            if not batches:
                continue
            answer: str | None = None
            code = 0
            last = (0, 0)
            try:
                last = _commit(connection, batches)
            except sqlite3.Error as error:
                answer, code = str(error), rows.error_code(error)
            with contextlib.suppress(OSError):  # a server that died reads no answer
                sock.sendall(frame((len(batches), answer, code, *last)))
        connection.close()
    return 0


def _commit(
    connection: sqlite3.Connection, batches: list[tuple[int, rows.Values]]
) -> tuple[int, int]:
    """Commit the rows of a group of batches in one transaction; return the last ids."""
    if len(batches) == 1 and batches[0][0] == rows.RowKind.INTERACTIONS:
        return rows.commit_rows(connection, batches[0][1])
    interactions, served = rows.split_by_kind(batches)
    return rows.commit_rows(connection, interactions, served)


if __name__ == "__main__":
    sys.exit(write_until_closed(int(sys.argv[1]), sys.argv[2]))
