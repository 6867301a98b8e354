"""`emma health` and waiting for a gRPC service to report SERVING (standard health protocol).

`emma health` is the probe for servers with TLS on: Kubernetes' native gRPC probes speak
plaintext only, so a pod whose server requires TLS (and client certificates) runs this
command as an exec probe instead.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

# A starting service should be seen within a few tens of ms, not after gRPC's 1 s+ backoff.
_FAST_RECONNECT = [
    ("grpc.initial_reconnect_backoff_ms", 50),
    ("grpc.min_reconnect_backoff_ms", 50),
    ("grpc.max_reconnect_backoff_ms", 250),
]


def check(
    address: str,
    service: str,
    timeout: float = 0.5,
    credentials: grpc.ChannelCredentials | None = None,
    server_name: str = "",
) -> bool:
    """True when `service` at `address` answers SERVING right now (over TLS with
    `credentials`; `server_name` is the name the certificate must carry, if not the host)."""
    return status(address, service, timeout, credentials, server_name) == "SERVING"


def status(
    address: str,
    service: str,
    timeout: float = 0.5,
    credentials: grpc.ChannelCredentials | None = None,
    server_name: str = "",
) -> str:
    """The service's health status name, or the gRPC status code name of a failed check."""
    options = [("grpc.ssl_target_name_override", server_name)] if server_name else []
    channel = (
        grpc.secure_channel(address, credentials, options=options)
        if credentials is not None
        else grpc.insecure_channel(address)
    )
    with channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            response = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
        except grpc.RpcError as error:
            code = error.code() if isinstance(error, grpc.Call) else None
            return code.name if code is not None else "UNAVAILABLE"
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(response.status))


def tls_credentials(
    ca: Path | None, cert: Path | None, key: Path | None
) -> grpc.ChannelCredentials:
    """TLS trusting `ca` (the system roots when None), presenting `cert` when given."""
    return grpc.ssl_channel_credentials(
        root_certificates=ca.read_bytes() if ca else None,
        private_key=key.read_bytes() if key else None,
        certificate_chain=cert.read_bytes() if cert else None,
    )


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "health",
        help="check a service through the gRPC health protocol (exit 0 when SERVING)",
        description="Asks ADDRESS's standard health service about SERVICE (the whole server "
        "when empty) and exits 0 when it answers SERVING, 1 otherwise. With --tls-ca (or "
        "--tls) the check runs over TLS, presenting --tls-cert/--tls-key when the server "
        "requires client certificates: the exec probe for pods whose server has TLS on.",
    )
    parser.add_argument("address", help="host:port, e.g. 127.0.0.1:50051")
    parser.add_argument("--service", default="", help="health-check name (default: the server)")
    parser.add_argument(
        "--timeout", type=float, default=1.0, help="seconds to wait (default %(default)s)"
    )
    parser.add_argument("--tls", action="store_true", help="TLS, trusting the system's CAs")
    parser.add_argument("--tls-ca", type=Path, help="CA bundle (PEM) of the server; implies TLS")
    parser.add_argument("--tls-cert", type=Path, help="client certificate (PEM), for mutual TLS")
    parser.add_argument("--tls-key", type=Path, help="private key (PEM) of --tls-cert")
    parser.add_argument(
        "--tls-server-name", default="", help="name the server certificate must carry"
    )
    parser.add_argument("--quiet", action="store_true", help="print nothing; the exit code says")
    parser.set_defaults(func=run)


def _problem(args: argparse.Namespace) -> str | None:
    if bool(args.tls_cert) != bool(args.tls_key):
        return "give both --tls-cert and --tls-key, or neither"
    if (args.tls_cert or args.tls_server_name) and not (args.tls or args.tls_ca):
        return "--tls-cert and --tls-server-name need TLS (--tls-ca or --tls)"
    for path in (args.tls_ca, args.tls_cert, args.tls_key):
        if path is not None and not path.is_file():
            return f"{path}: no such file"
    if args.timeout <= 0:
        return "--timeout must be > 0"
    return None


def run(args: argparse.Namespace) -> int:
    problem = _problem(args)
    if problem:
        print(f"emma health: {problem}", file=sys.stderr)
        return 2
    credentials = (
        tls_credentials(args.tls_ca, args.tls_cert, args.tls_key)
        if args.tls or args.tls_ca
        else None
    )
    answer = status(args.address, args.service, args.timeout, credentials, args.tls_server_name)
    if not args.quiet:
        print(f"{args.address} {args.service or '(server)'}: {answer}")
    return 0 if answer == "SERVING" else 1


def wait_serving(
    address: str,
    service: str,
    timeout: float,
    *,
    alive: Callable[[], bool] = lambda: True,
    interval: float = 0.05,
) -> bool:
    """Polls until `service` is SERVING (True), or the timeout passes or `alive()` fails (False)."""
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(address, options=_FAST_RECONNECT) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        request = health_pb2.HealthCheckRequest(service=service)
        while time.monotonic() < deadline and alive():
            try:
                response = stub.Check(request, timeout=0.5, wait_for_ready=False)
                if response.status == health_pb2.HealthCheckResponse.SERVING:
                    return True
            except grpc.RpcError:
                pass
            time.sleep(interval)
    return False
