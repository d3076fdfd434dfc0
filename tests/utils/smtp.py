"""SMTP servers that misbehave, for the faults of tests and the chaos suite (scripts/chaos.py)."""

import contextlib
import socket
import threading


class FakeSMTP:
    """A TCP server on an SMTP port in place of the mail sink, while a fault lasts.

    Without ``forward_to``: accepts connections and never answers (nor closes them) until
    ``close()``. With it: passes each connection on to a real SMTP server there, holding every
    reply for ``delay`` seconds, so mail still arrives, each command answered slowly.
    """

    def __init__(self, port: int, forward_to: int | None = None, delay: float = 0.0) -> None:
        self.forward_to, self.delay = forward_to, delay
        self.listener = socket.create_server(("127.0.0.1", port), reuse_port=False)
        self.sockets: list[socket.socket] = []
        self.accepted = 0  # connections taken so far
        self.stopped = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.sockets.append(client)
            self.accepted += 1
            if self.forward_to is not None:
                try:
                    upstream = socket.create_connection(("127.0.0.1", self.forward_to))
                except OSError:
                    client.close()
                    continue
                self.sockets.append(upstream)
                threading.Thread(target=self._pump, args=(client, upstream, 0.0), daemon=True).start()
                threading.Thread(target=self._pump, args=(upstream, client, self.delay), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, delay: float) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                if self.stopped.wait(delay):
                    return
                target.sendall(data)
        with contextlib.suppress(OSError):
            target.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        """Stop listening and close every connection: a client waiting for a reply sees it closed."""
        self.stopped.set()
        # shutdown() first: close() alone leaves the port listening while accept() blocks in a thread.
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        for sock in self.sockets:
            with contextlib.suppress(OSError):
                sock.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
