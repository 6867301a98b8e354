"""Free ports come from below the ephemeral range, are free, and never twice from one process."""

from __future__ import annotations

import socket

from emma.runtime.ports import LOWEST, ephemeral_range, free_port


def test_free_ports_are_below_the_range_outgoing_connections_use() -> None:
    low, high = ephemeral_range()
    assert 0 < low <= high
    ports = [free_port() for _ in range(50)]
    assert len(set(ports)) == len(ports)
    assert all(LOWEST <= port < low for port in ports)
    # Free indeed: a server can bind each port it was handed.
    for port in ports:
        with socket.socket() as server:
            server.bind(("127.0.0.1", port))
            server.listen()
