"""The profile service process: server factory and entry point."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from emma.profile.config import ProfileConfig
from emma.profile.outbox import Outbox
from emma.profile.service import ProfileServicer
from emma.profile.store import ProfileStore
from emma.profile.v1 import profile_pb2, profile_pb2_grpc
from emma.profile.wallet import Wallet
from emma.runtime.main import run_service
from emma.runtime.redis_client import connect_any_redis
from emma.runtime.server import EmmaServer, create_server

SERVICE_NAME = profile_pb2.DESCRIPTOR.services_by_name["ProfileService"].full_name


def build_server(config: ProfileConfig) -> tuple[EmmaServer, int]:
    """The profile server bound to config.host:config.port; call inside a running event loop."""
    server, port = create_server(config.host, config.port, [SERVICE_NAME], workers=config.workers)
    client = connect_any_redis(config.redis_url)
    store = ProfileStore(client, config)
    outbox = (
        Outbox(client, config.events_stream, config.events_stream_maxlen)
        if config.events_stream
        else None
    )
    wallet = Wallet(client, config.key_prefix, timedelta(days=config.wallet_days))
    profile_pb2_grpc.add_ProfileServiceServicer_to_server(
        ProfileServicer(store, config, outbox=outbox, wallet=wallet), server.grpc_server
    )
    server.on_stop(store.close)
    return server, port


def main(argv: Sequence[str] | None = None) -> int:
    return run_service("emma-profile", ProfileConfig, build_server, argv)
