"""Local ports for the tests' own servers."""

import socket


def free_port() -> int:
    """A local port nothing listens on (now): one to start a server on, or
    one a connection is refused at."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
