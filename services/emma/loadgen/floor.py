"""The floor: a plain gRPC echo chain of Decide's shape, client -> A -> (B and C in parallel).

Each of A, B and C is its own process with a bare grpc.aio server (no interceptors, no
tracing, no protobuf), on the same event loop as the services. B and C answer a fixed
number of bytes; A sends its two requests at once and answers when both replied. What
the chain costs is what any mesh of this shape costs on this machine: Decide's figures
divided by the floor's say how much the services themselves add.

    python -m emma.loadgen.floor --port P --reply-bytes N [--fan-out B_ADDR,C_ADDR
                                 --fan-out-bytes BYTES_TO_B,BYTES_TO_C]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import subprocess
import sys
import time
from collections.abc import Sequence
from types import TracebackType

import grpc

from emma.runtime import eventloop
from emma.runtime.redis_server import free_port

SERVICE = "emma.bench.v1.Chain"
METHOD = f"/{SERVICE}/Call"
READY_TIMEOUT_S = 20.0


@dataclasses.dataclass(frozen=True)
class Sizes:
    """Serialized sizes of Decide's messages in bytes (measured from real ones when given)."""

    request: int = 160
    response: int = 420
    profile_request: int = 20
    profile_response: int = 900
    context_request: int = 120
    context_response: int = 700


DEFAULT_SIZES = Sizes()


def _bytes(count: int) -> bytes:
    return b"x" * max(0, count)


async def serve(port: int, reply_bytes: int, fan_out: Sequence[tuple[str, int]]) -> None:
    """Serves Call until cancelled: answers `reply_bytes` after calling every `fan_out` hop."""
    reply = _bytes(reply_bytes)
    channels = [grpc.aio.insecure_channel(address) for address, _ in fan_out]
    hops = [
        (channel.unary_unary(METHOD, None, None), _bytes(size))
        for channel, (_, size) in zip(channels, fan_out, strict=True)
    ]

    async def call(request: bytes, context: object) -> bytes:
        if hops:
            await asyncio.gather(*(hop(payload, timeout=5.0) for hop, payload in hops))
        return reply

    server = grpc.aio.server()
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                SERVICE, {"Call": grpc.unary_unary_rpc_method_handler(call)}
            ),
        )
    )
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    for channel in channels:
        await channel.channel_ready()
    try:
        await server.wait_for_termination()
    finally:
        await server.stop(0)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emma.loadgen.floor", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--reply-bytes", type=int, default=100)
    parser.add_argument("--fan-out", default="", help="addresses to call, comma-separated")
    parser.add_argument("--fan-out-bytes", default="", help="bytes sent to each, comma-separated")
    args = parser.parse_args(argv)
    addresses = [a for a in args.fan_out.split(",") if a]
    sizes = [int(s) for s in args.fan_out_bytes.split(",") if s] or [0] * len(addresses)
    with contextlib.suppress(KeyboardInterrupt):
        eventloop.run(serve(args.port, args.reply_bytes, list(zip(addresses, sizes, strict=True))))
    return 0


class EchoChain:
    """Starts B, C and then A as processes; `address` is A's. Stops them on exit."""

    def __init__(self, sizes: Sizes = DEFAULT_SIZES, env: dict[str, str] | None = None) -> None:
        self.sizes = sizes
        self.env = env
        self.processes: list[subprocess.Popen[bytes]] = []
        self.address = ""

    def _spawn(self, port: int, reply: int, fan_out: str = "", fan_out_bytes: str = "") -> str:
        command = [sys.executable, "-m", "emma.loadgen.floor", "--port", str(port)]
        command += ["--reply-bytes", str(reply)]
        if fan_out:
            command += ["--fan-out", fan_out, "--fan-out-bytes", fan_out_bytes]
        self.processes.append(subprocess.Popen(command, stdin=subprocess.DEVNULL, env=self.env))
        return f"127.0.0.1:{port}"

    def start(self) -> EchoChain:
        try:
            sizes = self.sizes
            b = self._spawn(free_port(), sizes.profile_response)
            c = self._spawn(free_port(), sizes.context_response)
            _wait_ready([b, c], self.processes)
            self.address = self._spawn(
                free_port(),
                sizes.response,
                f"{b},{c}",
                f"{sizes.profile_request},{sizes.context_request}",
            )
            _wait_ready([self.address], self.processes)
        except BaseException:
            self.stop()
            raise
        return self

    @property
    def pids(self) -> list[int]:
        return [process.pid for process in self.processes]

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def __enter__(self) -> EchoChain:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _wait_ready(addresses: Sequence[str], processes: Sequence[subprocess.Popen[bytes]]) -> None:
    """Returns once every address answers a call. A call, not `channel_ready_future`: that
    leaves a connectivity-polling thread behind, which may still poll the channel after
    it was closed here (grpcio's race: "Cannot invoke RPC: Channel closed!")."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    for address in addresses:
        with grpc.insecure_channel(address) as channel:
            call = channel.unary_unary(METHOD, None, None)
            while True:
                dead = [p for p in processes if p.poll() is not None]
                if dead:
                    raise RuntimeError(f"echo-chain process exited with code {dead[0].returncode}")
                try:
                    call(b"", timeout=0.2, wait_for_ready=True)
                    break
                except grpc.RpcError:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"echo-chain server {address} not ready") from None


if __name__ == "__main__":
    raise SystemExit(main())
