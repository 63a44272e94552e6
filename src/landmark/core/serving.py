"""Several server processes on one port, each accepting on its own socket.

uvicorn's supervisor hands every worker the same listening socket; the worker whose event loop
wakes first accepts a whole burst of new connections, so under keep-alive load one process works
while the others idle. Here each worker binds its own socket with SO_REUSEPORT, and the kernel
spreads the connections over them. Everything else (start, health checks, restarts, signals) is
uvicorn's.
"""

import socket

from uvicorn import Config
from uvicorn.supervisors import Multiprocess


def reuse_port_socket(host: str, port: int, backlog: int) -> socket.socket:
    """A listening socket in the port's SO_REUSEPORT group. It listens at once: the kernel
    queues a worker's share of connections while the worker starts, instead of giving them all
    to the workers that are up."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    return sock


class Workers(Multiprocess):
    """uvicorn's Multiprocess, with a socket of its own for each worker it starts."""

    def __init__(self, config: Config) -> None:
        first = reuse_port_socket(config.host, config.port, 1)
        self.port = first.getsockname()[1]  # the port chosen, when asked for port 0
        first.close()
        super().__init__(config, [])

    @property  # type: ignore[override]
    def sockets(self) -> list[socket.socket]:
        """Read each time uvicorn starts a worker: a new socket for the new worker."""
        return [reuse_port_socket(self.config.host, self.port, self.config.backlog)]

    @sockets.setter
    def sockets(self, _value: list[socket.socket]) -> None:
        pass
