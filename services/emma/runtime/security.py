"""TLS and mutual TLS from configuration: server credentials, mesh channel credentials, tokens."""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc

from emma.runtime.config import load_config, require, setting

if TYPE_CHECKING:
    _UnaryUnary = grpc.aio.UnaryUnaryClientInterceptor[Any, Any]
    _UnaryStream = grpc.aio.UnaryStreamClientInterceptor[Any, Any]
    _StreamUnary = grpc.aio.StreamUnaryClientInterceptor[Any, Any]
    _StreamStream = grpc.aio.StreamStreamClientInterceptor[Any, Any]
else:
    _UnaryUnary = grpc.aio.UnaryUnaryClientInterceptor
    _UnaryStream = grpc.aio.UnaryStreamClientInterceptor
    _StreamUnary = grpc.aio.StreamUnaryClientInterceptor
    _StreamStream = grpc.aio.StreamStreamClientInterceptor

log = logging.getLogger(__name__)

CLIENT_AUTH_MODES = ("none", "require")


def _check_file(path: str, env: str) -> None:
    require(not path or Path(path).is_file(), f"{env}={path!r}: no such file")


@dataclasses.dataclass(frozen=True)
class SecurityConfig:
    """TLS of the server, TLS and credentials of outgoing mesh calls, callers and reflection;
    the same variables for every service."""

    tls_cert: str = setting("", "EMMA_TLS_CERT", "server certificate chain (PEM); TLS when set")
    tls_key: str = setting("", "EMMA_TLS_KEY", "private key (PEM) of EMMA_TLS_CERT")
    tls_ca: str = setting("", "EMMA_TLS_CA", "CA bundle (PEM) that client certificates chain to")
    tls_client_auth: str = setting(
        "none",
        "EMMA_TLS_CLIENT_AUTH",
        "client certificates: none, or require (mutual TLS)",
        choices=CLIENT_AUTH_MODES,
    )
    tokens_path: str = setting(
        "", "EMMA_TOKENS", "callers file (YAML/JSON): token hashes and identities -> scopes"
    )
    reflection: bool = setting(True, "EMMA_REFLECTION", "serve gRPC reflection")
    mesh_tls_ca: str = setting(
        "", "EMMA_MESH_TLS_CA", "CA bundle (PEM) of the mesh servers; TLS to them when set"
    )
    mesh_tls_cert: str = setting(
        "", "EMMA_MESH_TLS_CERT", "client certificate (PEM) presented to mesh servers"
    )
    mesh_tls_key: str = setting("", "EMMA_MESH_TLS_KEY", "private key (PEM) of EMMA_MESH_TLS_CERT")
    mesh_token: str = setting("", "EMMA_MESH_TOKEN", "bearer token sent on calls to mesh servers")

    def __post_init__(self) -> None:
        require(
            bool(self.tls_cert) == bool(self.tls_key),
            "EMMA_TLS_CERT and EMMA_TLS_KEY: set both or neither",
        )
        require(
            self.tls_client_auth == "none" or bool(self.tls_ca),
            "EMMA_TLS_CLIENT_AUTH=require: EMMA_TLS_CA must name the CA of the client certificates",
        )
        require(
            not self.tls_ca or bool(self.tls_cert),
            "EMMA_TLS_CA: client certificates need TLS; set EMMA_TLS_CERT and EMMA_TLS_KEY",
        )
        require(
            bool(self.mesh_tls_cert) == bool(self.mesh_tls_key),
            "EMMA_MESH_TLS_CERT and EMMA_MESH_TLS_KEY: set both or neither",
        )
        require(
            not self.mesh_tls_cert or bool(self.mesh_tls_ca),
            "EMMA_MESH_TLS_CERT: a client certificate needs TLS; set EMMA_MESH_TLS_CA",
        )
        require(
            self.mesh_token == self.mesh_token.strip() and " " not in self.mesh_token,
            "EMMA_MESH_TOKEN: must not contain spaces",
        )
        for field in dataclasses.fields(self):
            if field.name.endswith(("_cert", "_key", "_ca", "_path")):
                _check_file(getattr(self, field.name), field.metadata["env"])

    @property
    def tls(self) -> bool:
        return bool(self.tls_cert)

    @property
    def mesh_tls(self) -> bool:
        return bool(self.mesh_tls_ca)


def load_security(environ: Mapping[str, str] | None = None) -> SecurityConfig:
    """The security settings from the environment; ConfigError names a bad variable."""
    return load_config(SecurityConfig, environ=os.environ if environ is None else environ)


def is_loopback(host: str) -> bool:
    """True for addresses only this machine reaches: localhost, 127.0.0.0/8, ::1."""
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _CertificateFiles:
    """Serves the files' certificates, re-read on a new handshake once any of them changed."""

    def __init__(self, config: SecurityConfig) -> None:
        self._paths = [Path(p) for p in (config.tls_cert, config.tls_key, config.tls_ca) if p]
        self._config = config
        self._stamp = self._stamps()
        self.initial = self._read()

    def _stamps(self) -> tuple[tuple[int, int], ...]:
        return tuple((s.st_mtime_ns, s.st_size) for s in (p.stat() for p in self._paths))

    def _read(self) -> grpc.ServerCertificateConfiguration:
        config = self._config
        return grpc.ssl_server_certificate_configuration(
            [(Path(config.tls_key).read_bytes(), Path(config.tls_cert).read_bytes())],
            Path(config.tls_ca).read_bytes() if config.tls_ca else None,
        )

    def fetch(self) -> grpc.ServerCertificateConfiguration | None:
        """Called by gRPC before each handshake: None keeps the current certificates."""
        try:
            stamp = self._stamps()
            if stamp == self._stamp:
                return None
            fresh = self._read()
        except (OSError, ValueError) as error:
            # Mid-rotation (one file written, the next not yet): keep serving the old pair.
            log.warning(
                "TLS files unreadable; keeping the loaded ones", extra={"error": str(error)}
            )
            return None
        self._stamp = stamp
        log.info("TLS certificates reloaded")
        return fresh


def server_credentials(config: SecurityConfig) -> grpc.ServerCredentials | None:
    """TLS credentials of a server (client certificates required when configured), or None
    for plaintext. Certificate files are re-read when they change, for rotation."""
    if not config.tls:
        return None
    files = _CertificateFiles(config)
    return grpc.dynamic_ssl_server_credentials(
        files.initial,
        files.fetch,  # type: ignore[arg-type]  # the stubs miss that None keeps the certificates
        require_client_authentication=config.tls_client_auth == "require",
    )


def mesh_channel_credentials(config: SecurityConfig) -> grpc.ChannelCredentials | None:
    """TLS credentials (with this service's client certificate, if set) for calls to other
    mesh services, or None for plaintext."""
    if not config.mesh_tls:
        return None
    return grpc.ssl_channel_credentials(
        root_certificates=Path(config.mesh_tls_ca).read_bytes(),
        private_key=Path(config.mesh_tls_key).read_bytes() if config.mesh_tls_key else None,
        certificate_chain=Path(config.mesh_tls_cert).read_bytes() if config.mesh_tls_cert else None,
    )


class BearerToken(_UnaryUnary, _UnaryStream, _StreamUnary, _StreamStream):
    """Adds `authorization: Bearer <token>` to every outgoing call.

    Metadata rather than gRPC call credentials: those are refused on plaintext channels,
    and a mesh behind a sidecar proxy that terminates TLS must still present its token.
    """

    def __init__(self, token: str) -> None:
        self._header = ("authorization", f"Bearer {token}")

    def _with_token(self, details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        metadata = grpc.aio.Metadata(*(details.metadata or ()), self._header)
        return grpc.aio.ClientCallDetails(
            details.method,
            details.timeout,
            metadata,
            details.credentials,
            details.wait_for_ready,
        )

    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(self._with_token(details), request)

    async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(self._with_token(details), request)

    async def intercept_stream_unary(self, continuation: Any, details: Any, requests: Any) -> Any:
        return await continuation(self._with_token(details), requests)

    async def intercept_stream_stream(self, continuation: Any, details: Any, requests: Any) -> Any:
        return await continuation(self._with_token(details), requests)


def mesh_call_interceptors(config: SecurityConfig) -> list[Any]:
    """Client interceptors presenting this service's token on mesh calls, if it has one."""
    return [BearerToken(config.mesh_token)] if config.mesh_token else []
