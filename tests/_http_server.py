"""A scripted HTTP server on 127.0.0.1 for client tests: real sockets, canned answers."""

from __future__ import annotations

import http.server
import threading
import time
from collections import defaultdict, deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Answer:
    """One canned HTTP answer."""

    status: int = 200
    body: bytes = b"{}"
    headers: tuple[tuple[str, str], ...] = (("content-type", "application/json"),)
    delay: float = 0.0


@dataclass(frozen=True)
class Received:
    """One request the server received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class ScriptedServer:
    """Answers each path with its queued answers in order, then with the last one again."""

    url: str = ""
    answers: dict[str, deque[Answer]] = field(default_factory=lambda: defaultdict(deque))
    received: list[Received] = field(default_factory=list)

    def script(self, path: str, *answers: Answer) -> None:
        """Queue answers for a path."""
        self.answers[path].extend(answers)

    def requests_to(self, path: str) -> list[Received]:
        """Return the requests received for a path."""
        return [request for request in self.received if request.path.split("?")[0] == path]

    def next_answer(self, path: str) -> Answer:
        queue = self.answers.get(path.split("?", maxsplit=1)[0])
        if not queue:
            return Answer(404, b"<html>no such page</html>", (("content-type", "text/html"),))
        return queue.popleft() if len(queue) > 1 else queue[0]


@contextmanager
def scripted_server() -> Iterator[ScriptedServer]:
    """Run a ScriptedServer on an ephemeral loopback port for the duration of the block."""
    state = ScriptedServer()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            body = self.rfile.read(length)
            state.received.append(
                Received("POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            )
            answer = state.next_answer(self.path)
            if answer.delay:
                time.sleep(answer.delay)
            try:
                self.send_response(answer.status)
                for name, value in answer.headers:
                    self.send_header(name, value)
                self.send_header("content-length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up waiting: what timeout tests expect

        def log_message(self, format: str, *args: object) -> None:
            del format, args

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
