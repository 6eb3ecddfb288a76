"""The reader process: reads users' activity from the store on an interpreter of its own.

A decision for a user whose activity is not cached needs the user's events
from the database: Python work per user on the event loop's thread, and a
thread of the server's would contend with the event loop for the interpreter
(bench/NOTES.md, "Cold reads", measures both). The server hands this process the
users it needs over a private socket pair and goes on serving; the process
reads each user's events by index, counts them by day, packs them
(``daily.packed``) and sends them back as each is read, which costs the
server a ``marshal.loads``. ``reader_client`` is the server's side.

Run as a script (``python -I reader_process.py FD PATH SENT``: ``SENT`` is
the kind number of a served treatment), it imports only the standard library
and its siblings ``daily``, ``frames`` and ``rows``, so it starts in a few
milliseconds.

Both directions carry frames (``frames``). To the reader, a frame is a list
of users, (project id, user id) each. From the reader, a frame is ``(count,
error, code, found, last, last_served)``: the ``count`` oldest users not yet
answered for (one, as it is read, in the snapshot of the others of its
list), ``found`` their packed activity in turn and ``last`` and
``last_served`` the highest interaction and served row ids that snapshot
holds; or, when ``error`` is not None, none of them could be read
(``code`` is SQLite's extended error code). These follow its first frame, which
says whether it opened the database (``process_link``).
"""

from __future__ import annotations

import contextlib
import pathlib
import signal
import socket
import sqlite3
import sys
from typing import Any

if __package__:  # imported as a module of the server
    from auxia_decision.server._storage import daily, rows
    from auxia_decision.server._storage.frames import READ_SIZE, Frames, frame
else:  # run as a script: its siblings alone, not the packages above it (the whole server)
    sys.path.insert(0, str(pathlib.Path(__file__).parent))
    import daily  # type: ignore[import-not-found, no-redef]
    import rows  # type: ignore[import-not-found, no-redef]
    from frames import READ_SIZE, Frames, frame  # type: ignore[import-not-found, no-redef]

Answer = tuple[int, str | None, int, list[daily.PackedActivity], int, int]
"""What the reader answers: (count of users, error or None, SQLite error code, their packed
activity, last interaction id, last served id)."""


def _users_arrived(sock: socket.socket, frames: Frames) -> list[Any] | None:
    """Wait for users to read, then take all that have arrived; None: the server closed."""
    data = sock.recv(READ_SIZE)
    if not data:
        return None
    users = [user for request in frames.feed(data) for user in request]
    while True:
        try:
            data = sock.recv(READ_SIZE, socket.MSG_DONTWAIT)
        except BlockingIOError:
            return users
        if not data:
            return users  # answered, then the next wait finds the end
        users += [user for request in frames.feed(data) for user in request]


def _answer(
    sock: socket.socket, connection: sqlite3.Connection, users: list[Any], sent: int
) -> None:
    """Read users in one snapshot, answering for each as it is read.

    The server decides for the users read first while the others are read
    (bench/NOTES.md, "Cold reads").
    """
    answered = 0

    def send(answer: Answer) -> None:
        nonlocal answered
        with contextlib.suppress(OSError):  # a server that died reads no answer
            sock.sendall(frame(answer))
        answered += answer[0]

    try:
        connection.execute("BEGIN")
        try:
            last, last_served = daily.read_last_ids(connection)
            for project_id, user_id in users:
                found = daily.packed(daily.read_daily_rows(connection, project_id, user_id, sent))
                send((1, None, 0, [found], last, last_served))
        finally:
            connection.execute("COMMIT")
    except sqlite3.Error as error:
        if answered < len(users):
            send((len(users) - answered, str(error), rows.error_code(error), [], 0, 0))


def read_until_closed(fd: int, path: str, sent: int) -> int:
    """Answer the users that arrive on ``fd`` with their activity in ``path``, until it closes."""
    # Signals for the server (a terminal's Ctrl-C) are its to handle: the
    # reader stops when the server closes its end of the socket.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    with socket.socket(fileno=fd) as sock:
        try:
            connection = rows.open_database(path)
            connection.execute("PRAGMA query_only = ON")
        except sqlite3.Error as error:
            sock.sendall(frame((str(error), rows.error_code(error))))
            return 1
        sock.sendall(frame((None, 0)))
        frames = Frames()
        while (users := _users_arrived(sock, frames)) is not None:
            if users:
                _answer(sock, connection, users, sent)
        connection.close()
    return 0


if __name__ == "__main__":
    sys.exit(read_until_closed(int(sys.argv[1]), sys.argv[2], int(sys.argv[3])))
