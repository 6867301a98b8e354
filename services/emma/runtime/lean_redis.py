"""redis-py's asyncio connections, pool and command dispatch, without what Emma never uses.

Every Decide makes three Redis round trips, and redis-py's own Python around each command
cost more than the command's system calls: half of a script call's client-side time
(docs/performance.md). What is cut here is what Emma never turns on: redis-py's metrics
hooks (its observability is not enabled, yet each command and each pool checkout asks
for a collector), the pool's release events (re-authentication by streaming credential
providers), the pool's lock, the client's single-connection mode and HIMPORT's
per-connection state. Retry, disconnection on error, health checks and reply parsing
stay redis-py's own.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterable
from typing import Any

import redis.asyncio as redis
from redis.asyncio.connection import AbstractConnection
from redis.connection import HiredisRespSerializer
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.utils import HIREDIS_AVAILABLE


class LeanConnection(AbstractConnection):
    """A connection that packs commands with hiredis (C), as redis-py's synchronous client
    does; its asyncio client packs them in Python, about a third of a command's client-side
    work here (a decision-log entry is 24 arguments). A write waits (bounded) only when
    the transport kept bytes back, where redis-py's waits under `asyncio.wait_for`, which
    on Python 3.11 runs every write as a task of its own; a read is bounded by a timer
    rather than `asyncio.timeout`. Each saves a few per cent of a decision's instructions
    (docs/performance.md).
    """

    _packer = HiredisRespSerializer()

    async def read_response(
        self,
        disable_decoding: bool = False,
        timeout: float | None = None,  # noqa: ASYNC109 (redis-py's signature)
        *,
        disconnect_on_error: bool = True,
        push_request: bool | None = False,
    ) -> Any:
        """As redis-py's, but the socket timeout is a timer that closes the connection.

        redis-py bounds every read with `asyncio.timeout`: about 29 thousand instructions
        each, three times per decision, for a bound that almost never fires. A timer that
        closes the connection when it fires costs a quarter of that; the read then fails
        as redis-py's does, with TimeoutError, and the connection is dropped.
        """
        if timeout is not None or self.socket_timeout is None:
            # A timeout of the caller's own (pub/sub, math.inf): redis-py's way.
            return await super().read_response(
                disable_decoding,
                timeout,
                disconnect_on_error=disconnect_on_error,
                push_request=push_request,
            )
        expiry = _ReadExpiry(self)
        handle = asyncio.get_running_loop().call_later(self.socket_timeout, expiry.fire)
        try:
            return await super().read_response(
                disable_decoding,
                math.inf,  # no timer of redis-py's: this one's
                disconnect_on_error=disconnect_on_error,
                push_request=push_request,
            )
        except (RedisConnectionError, OSError) as error:
            if expiry.fired:
                await self.disconnect(nowait=True)
                raise RedisTimeoutError(f"Timeout reading from {self._host_error()}") from error
            raise
        finally:
            handle.cancel()

    def pack_command(self, *args: Any) -> list[bytes]:
        packed: list[bytes] = self._packer.pack(*args)
        return packed

    async def send_packed_command(
        self, command: bytes | str | Iterable[bytes], check_health: bool = True
    ) -> None:
        # As redis-py's, but for how the write is bounded.
        if not self.is_connected:
            await self.connect_check_health(check_health=False)
        if check_health:
            await self.check_health()  # type: ignore[no-untyped-call]
        if isinstance(command, str):
            command = command.encode()
        if isinstance(command, bytes):
            command = [command]
        writer = self._writer
        assert writer is not None  # connected above
        try:
            writer.writelines(command)
            # The transport takes the bytes at once; only draining waits, and only while
            # its buffer is over the high-water mark (a Redis that stopped reading). With
            # nothing left in the buffer and the transport open, draining would do nothing:
            # the timer and the coroutine are spared on nearly every command.
            transport = writer.transport
            if transport.get_write_buffer_size() or transport.is_closing():
                async with asyncio.timeout(self.socket_timeout):
                    await writer.drain()
        except TimeoutError:
            await self.disconnect(nowait=True)
            raise RedisTimeoutError("Timeout writing to socket") from None
        except OSError as error:
            await self.disconnect(nowait=True)
            raise RedisConnectionError(f"Error while writing to socket: {error}") from error
        except BaseException:
            # A write cut short leaves the connection in an unknown state: never reuse it.
            await self.disconnect(nowait=True)
            raise


class _ReadExpiry:
    """Closes a connection whose read outlived the socket timeout (LeanConnection)."""

    __slots__ = ("connection", "fired")

    def __init__(self, connection: AbstractConnection) -> None:
        self.connection = connection
        self.fired = False

    def fire(self) -> None:
        self.fired = True
        writer = self.connection._writer
        if writer is not None:
            # The pending read sees the connection end and fails; read_response says why.
            writer.transport.abort()


def lean_connections(
    connection_class: type[AbstractConnection],
) -> type[AbstractConnection]:
    """`connection_class` packing its commands with hiredis and writing without a task per
    command (`LeanConnection`); itself without hiredis."""
    if not HIREDIS_AVAILABLE:
        return connection_class
    return type(f"Lean{connection_class.__name__}", (LeanConnection, connection_class), {})


class LeanConnectionPool(redis.ConnectionPool):
    """redis-py's pool, checking connections out and in without its lock, metrics hooks
    and release event.

    The lock guards nothing on one event loop: no await comes between taking a connection
    from the free list and marking it in use. A connection is still made connected and
    checked for stray data before use (`ensure_connection`), and one marked for
    reconnection is dropped on release, as redis-py does.
    """

    async def get_connection(
        self, command_name: str | None = None, *keys: Any, **options: Any
    ) -> AbstractConnection:
        connection: AbstractConnection = self.get_available_connection()  # type: ignore[no-untyped-call]
        try:
            await self.ensure_connection(connection)
        except BaseException:
            await self.release(connection)
            raise
        return connection

    async def release(self, connection: AbstractConnection) -> None:
        self._in_use_connections.remove(connection)
        if connection.should_reconnect():  # type: ignore[no-untyped-call]
            await connection.disconnect()
        self._available_connections.append(connection)


async def execute_lean(client: redis.Redis, *args: Any, **options: Any) -> Any:
    """`client.execute_command(*args, **options)` as redis-py runs it (a pooled connection,
    its retry policy with a disconnect before each retry, the client's reply parsing),
    without the metrics hooks around it. Not for HIMPORT SET nor a single-connection
    client, which Emma does not use."""
    pool = client.connection_pool
    connection: AbstractConnection = await pool.get_connection(args[0])  # type: ignore[no-untyped-call]
    try:
        return await connection.retry.call_with_retry(
            lambda: _send_and_parse(client, connection, args, options),
            lambda error: connection.disconnect(),
        )
    finally:
        await pool.release(connection)


async def _send_and_parse(
    client: redis.Redis,
    connection: AbstractConnection,
    args: tuple[Any, ...],
    options: dict[str, Any],
) -> Any:
    await connection.send_command(*args)
    # Unpacked anew on every try: parse_response pops options, and a retry needs them.
    # redis-py's annotation names its TCP connection class only; any connection parses.
    return await client.parse_response(connection, args[0], **options)  # type: ignore[arg-type]
