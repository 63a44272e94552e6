"""`landmark serve --workers N`: each worker listens on its own socket (core/serving.py), so a
burst of keep-alive connections is spread over the workers instead of landing on one."""

import os
import socket
from pathlib import Path

from conftest import _free_port
from test_webhooks_processes import serve

CONNECTIONS = 32


def children(parent: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and int((entry / "stat").read_text().split()[3]) == parent:
                found.append(int(entry.name))
        except OSError:  # the process ended while listed
            continue
    return found


def established_inodes(port: int) -> set[str]:
    """Socket inodes of the server's side of connections to `port` (/proc/net/tcp)."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port, state = int(fields[1].split(":")[1], 16), fields[3]
        if local_port == port and state == "01":  # ESTABLISHED
            inodes.add(fields[9])
    return inodes


def connections_per_process(parent: int, port: int) -> dict[int, int]:
    inodes = established_inodes(port)
    counts = {}
    for pid in children(parent):
        fds = Path(f"/proc/{pid}/fd")
        links = [os.readlink(fd) for fd in fds.iterdir() if fd.is_symlink()]
        counts[pid] = sum(link[8:-1] in inodes for link in links if link.startswith("socket:["))
    return counts


def test_two_workers_share_a_burst_of_connections(tmp_path: Path) -> None:
    port = _free_port()
    url = f"sqlite+aiosqlite:///{tmp_path / 'serve.db'}"
    server = serve(url, port, tmp_path / "log", "--workers", "2", LANDMARK_VAR_DIR=str(tmp_path))
    assert server.process is not None
    try:
        # All connections first, as a load generator opens them; then a request on each, so
        # that every one has been accepted by some worker.
        sockets = [socket.create_connection(("127.0.0.1", port)) for _ in range(CONNECTIONS)]
        request = f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
        for sock in sockets:
            sock.sendall(request)
        for sock in sockets:
            assert sock.recv(4096).startswith(b"HTTP/1.1 200")
        counts = connections_per_process(server.process.pid, port)
        serving = sorted(n for n in counts.values() if n)
        assert sum(serving) == CONNECTIONS
        # Even odds per connection: fewer than 4 of 32 on one worker is a one-in-a-million draw.
        assert len(serving) == 2 and serving[0] >= 4, counts
        for sock in sockets:
            sock.close()
    finally:
        server.stop()
