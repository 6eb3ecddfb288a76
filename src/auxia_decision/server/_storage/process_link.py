"""The server's end of a helper process: started, sent frames, read in the event loop.

The writer and the reader process (``writer_process``, ``reader_process``)
each run a script of this package on an interpreter of their own and talk
with the server over a private socket pair, in frames (``frames``).
``ProcessLink`` starts one, waits for it to open the database, sends it
payloads without blocking the event loop, and hands what it answers to its
client (``writer_client``, ``reader_client``) as the event loop reads it.

The first frame a helper sends is ``(error, code)``: ``(None, 0)`` once it
has opened the database, or why it could not and SQLite's extended error code.
"""

from __future__ import annotations

import asyncio
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Sequence
from typing import Any, Final

from auxia_decision.server._storage.frames import READ_SIZE, Frames, frame

_START_TIMEOUT_SECONDS: Final = 30.0


def helper_error(message: str, code: int) -> sqlite3.OperationalError:
    """Return an error a helper process answered with, with SQLite's error code."""
    error = sqlite3.OperationalError(message)
    error.sqlite_errorcode = code
    return error


class HelperStopped(sqlite3.OperationalError):
    """A helper process stopped, or was closed, before it answered."""


class ProcessLink:
    """A helper process and the server's end of their socket pair, in one event loop.

    Args:
        script: the helper's script, run with ``python -I``.
        arguments: its arguments after the socket's file descriptor.
        loop: the event loop that reads the answers; it must be running in
            this thread when the link is used.
        on_answers: called in the event loop with the payloads of the frames
            the process sent after its first, as they arrive.
        on_lost: called once, in the event loop, with a reason when the process
            is gone (its socket closed or failed) before ``close``.

    """

    def __init__(
        self,
        script: str,
        arguments: Sequence[str],
        loop: asyncio.AbstractEventLoop,
        on_answers: Callable[[list[Any]], None],
        on_lost: Callable[[str], None],
    ) -> None:
        self.loop = loop
        self._on_answers = on_answers
        self._on_lost = on_lost
        ours, theirs = socket.socketpair()
        with theirs:
            try:
                self.process = subprocess.Popen(  # noqa: S603 (our interpreter, our script)
                    [sys.executable, "-I", script, str(theirs.fileno()), *arguments],
                    pass_fds=(theirs.fileno(),),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    # Not in the server's process group: a terminal's signals are the server's.
                    start_new_session=True,
                )
            except BaseException:
                ours.close()
                raise
        ours.setblocking(False)
        self._socket: socket.socket | None = ours
        self._frames = Frames()
        self._outgoing = bytearray()
        self._opened: asyncio.Future[None] = loop.create_future()
        loop.add_reader(ours, self._on_readable)

    async def opened(self) -> None:
        """Wait until the process has opened the database; raise if it could not."""
        await asyncio.wait_for(asyncio.shield(self._opened), _START_TIMEOUT_SECONDS)

    @property
    def open(self) -> bool:
        """Whether the socket is still open: not lost, not closed."""
        return self._socket is not None

    def send(self, payload: Any) -> None:  # noqa: ANN401 - whatever marshal takes
        """Send a payload in a frame, now or, when the socket is full, as it drains."""
        sock = self._socket
        assert sock is not None, "send() on a closed link"
        data = frame(payload)
        if self._outgoing:
            self._outgoing += data
            return
        try:
            sent = sock.send(data)
        except BlockingIOError:
            sent = 0
        except OSError as error:
            self._lose(f"is gone ({error})")
            return
        if sent < len(data):
            self._outgoing += memoryview(data)[sent:]
            self.loop.add_writer(sock, self._on_writable)

    def _on_writable(self) -> None:
        sock = self._socket
        assert sock is not None
        try:
            sent = sock.send(self._outgoing)
        except BlockingIOError:
            return
        except OSError as error:
            self._lose(f"is gone ({error})")
            return
        del self._outgoing[:sent]
        if not self._outgoing:
            self.loop.remove_writer(sock)

    def _on_readable(self) -> None:
        sock = self._socket
        assert sock is not None
        try:
            data = sock.recv(READ_SIZE)
        except BlockingIOError:
            return
        except OSError as error:
            self._lose(f"is gone ({error})")
            return
        if not data:
            self._lose("stopped before answering")
            return
        self._hand_on(self._frames.feed(data))

    def _hand_on(self, payloads: list[Any]) -> None:
        if payloads and not self._opened.done():
            error, code = payloads.pop(0)
            if error is None:
                self._opened.set_result(None)
            else:
                self._opened.set_exception(helper_error(error, code))
        if payloads:
            self._on_answers(payloads)

    def _lose(self, reason: str) -> None:
        self.release()
        if not self._opened.done():
            self._opened.set_exception(HelperStopped(reason))
        self._on_lost(reason)

    def release(self) -> None:
        """Stop reading and writing, and close the socket (the process ends as it reads EOF)."""
        sock, self._socket = self._socket, None
        if sock is None:
            return
        if not self.loop.is_closed():
            self.loop.remove_reader(sock)
            self.loop.remove_writer(sock)
            if not self._opened.done():
                self._opened.set_exception(HelperStopped("closed before it opened the database"))
        sock.close()

    def finish(self) -> None:
        """Send what is left, tell the process no more comes, hand on its last answers, wait.

        Blocks: call it from the event loop's thread, or once that loop has stopped.
        """
        sock = self._socket
        if sock is not None:
            try:
                sock.setblocking(True)
                if self._outgoing:
                    sock.sendall(self._outgoing)
                    self._outgoing.clear()
                sock.shutdown(socket.SHUT_WR)  # the process stops after what it has
                while data := sock.recv(READ_SIZE):
                    self._hand_on(self._frames.feed(data))
            except OSError:
                pass
            self.release()
        self.process.wait()
