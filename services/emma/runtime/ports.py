"""Free TCP ports for servers that bind them a moment later."""

from __future__ import annotations

import random
import socket

# Ports below the kernel's ephemeral range, from here up, are ours to pick from.
LOWEST = 10_000
# Linux's default ephemeral range, where /proc does not say.
DEFAULT_EPHEMERAL = (32_768, 60_999)
ATTEMPTS = 200
# Ports this process handed out already: two servers started together never get the same.
_handed: set[int] = set()


def ephemeral_range() -> tuple[int, int]:
    """The ports the kernel gives outgoing connections as their local ports."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range", encoding="ascii") as ports:
            low, high = (int(part) for part in ports.read().split())
    except (OSError, ValueError):
        return DEFAULT_EPHEMERAL
    return low, high


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free on `host` a moment ago, below the ephemeral range.

    A port the kernel picks (bind to 0) comes from the ephemeral range, and between this
    check and the server's bind any outgoing connection (a client of Redis, of a service)
    may take it as its local port: the server then fails with "address already in use".
    Below that range only listeners compete, and the check sees those.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    low, _ = ephemeral_range()
    for _ in range(ATTEMPTS):
        # Where the range leaves no room below it, the kernel's pick is all there is.
        port = random.randrange(LOWEST, low) if low > LOWEST else 0
        if port in _handed:
            continue
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((host, port))
            except OSError:
                continue
            port = int(probe.getsockname()[1])
        _handed.add(port)
        return port
    raise OSError(f"no free port on {host} after {ATTEMPTS} attempts")
