"""Caller authentication and scopes: bearer tokens or client certificates, checked per RPC."""

from __future__ import annotations

import enum
import functools
import hashlib
import hmac
import inspect
import logging
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeAlias

import grpc
import yaml

from emma.runtime.config import ConfigError
from emma.runtime.method_handlers import Handler, WrappingInterceptor, rewrapped
from emma.runtime.security import SecurityConfig, is_loopback

log = logging.getLogger(__name__)

Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"


class Scope(enum.StrEnum):
    DECIDE = "decide"  # app backends, tills, and the decision service reading the mesh
    INGEST = "ingest"  # event sources writing what customers did and said
    ADMIN = "admin"  # consent, export and erasure of customers


# The scope every RPC needs, in one place. A method missing here is refused to everyone,
# so a new RPC stays closed until it is given a scope.
METHOD_SCOPES: dict[str, Scope] = {
    "/emma.decision.v1.DecisionService/Decide": Scope.DECIDE,
    "/emma.decision.v1.DecisionService/Activate": Scope.DECIDE,
    "/emma.decision.v1.DecisionService/Reward": Scope.DECIDE,
    "/emma.profile.v1.ProfileService/GetProfile": Scope.DECIDE,
    "/emma.profile.v1.ProfileService/LinkIdentity": Scope.INGEST,
    "/emma.profile.v1.ProfileService/RecordEvents": Scope.INGEST,
    "/emma.profile.v1.ProfileService/RecordEventStream": Scope.INGEST,
    "/emma.profile.v1.ProfileService/UpdatePreferences": Scope.INGEST,
    "/emma.profile.v1.ProfileService/UpdateConsent": Scope.ADMIN,
    "/emma.profile.v1.ProfileService/ExportCustomer": Scope.ADMIN,
    "/emma.profile.v1.ProfileService/EraseCustomer": Scope.ADMIN,
    "/emma.context.v1.ContextService/Resolve": Scope.DECIDE,
    "/emma.context.v1.ContextService/GetStore": Scope.DECIDE,
    "/emma.context.v1.ContextService/FindNearestStores": Scope.DECIDE,
}

# Open without credentials: orchestrator probes, and reflection (describes public protos only;
# EMMA_REFLECTION=false removes it).
PUBLIC_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")

_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
_PREFIX = 8


class Caller:
    """An authenticated caller: its name from the callers file and what it may do."""

    __slots__ = ("name", "scopes")

    def __init__(self, name: str, scopes: Iterable[Scope]) -> None:
        self.name = name
        self.scopes = frozenset(scopes)

    def __repr__(self) -> str:
        return f"Caller({self.name!r}, {sorted(self.scopes)})"


class Callers:
    """Callers by token hash and by certificate identity (URI SAN or common name)."""

    def __init__(
        self, by_token_hash: Mapping[bytes, Caller], by_identity: Mapping[str, Caller]
    ) -> None:
        # Indexed by the first bytes of the hash only, so the full hashes are compared in
        # constant time and the lookup's timing reveals nothing about a stored token.
        self._by_prefix: dict[bytes, list[tuple[bytes, Caller]]] = {}
        for digest, caller in by_token_hash.items():
            self._by_prefix.setdefault(digest[:_PREFIX], []).append((digest, caller))
        self._by_identity = dict(by_identity)

    def by_token(self, token: str) -> Caller | None:
        digest = hashlib.sha256(token.encode()).digest()
        found = None
        for stored, caller in self._by_prefix.get(digest[:_PREFIX], ()):
            if hmac.compare_digest(stored, digest):
                found = caller
        return found

    def by_identities(self, identities: Iterable[str]) -> Caller | None:
        for identity in identities:
            caller = self._by_identity.get(identity)
            if caller is not None:
                return caller
        return None

    @classmethod
    def parse(cls, document: Any, source: str) -> Callers:
        """From `{callers: {name: {token_sha256, identity, scopes}}}`; ConfigError on mistakes."""
        if not isinstance(document, dict) or not isinstance(document.get("callers"), dict):
            raise ConfigError(f"{source}: expected a mapping with a `callers` mapping")
        by_hash: dict[bytes, Caller] = {}
        by_identity: dict[str, Caller] = {}
        for name, entry in document["callers"].items():
            where = f"{source}: callers.{name}"
            if not isinstance(entry, dict):
                raise ConfigError(f"{where}: expected a mapping")
            unknown = set(entry) - {"token_sha256", "identity", "scopes"}
            if unknown:
                raise ConfigError(f"{where}: unknown keys {sorted(unknown)}")
            scopes = entry.get("scopes")
            if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
                raise ConfigError(f"{where}.scopes: expected a list of scope names")
            try:
                caller = Caller(str(name), (Scope(s) for s in scopes))
            except ValueError as error:
                raise ConfigError(
                    f"{where}.scopes: {error}; scopes are {[s.value for s in Scope]}"
                ) from None
            token_hash = entry.get("token_sha256")
            identity = entry.get("identity")
            if token_hash is None and identity is None:
                raise ConfigError(f"{where}: give token_sha256, identity or both")
            if token_hash is not None:
                if not isinstance(token_hash, str) or not _SHA256_HEX.match(token_hash.lower()):
                    raise ConfigError(f"{where}.token_sha256: expected 64 hex digits")
                digest = bytes.fromhex(token_hash)
                if digest in by_hash:
                    raise ConfigError(f"{where}.token_sha256: also used by another caller")
                by_hash[digest] = caller
            if identity is not None:
                if not isinstance(identity, str) or not identity:
                    raise ConfigError(f"{where}.identity: expected a non-empty string")
                if identity in by_identity:
                    raise ConfigError(f"{where}.identity: also used by another caller")
                by_identity[identity] = caller
        return cls(by_hash, by_identity)

    @classmethod
    def load(cls, path: Path) -> Callers:
        """The callers file, YAML or JSON (JSON is YAML)."""
        try:
            document = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as error:
            raise ConfigError(f"EMMA_TOKENS={str(path)!r}: {error}") from None
        return cls.parse(document, f"EMMA_TOKENS={str(path)!r}")


def bearer_token(metadata: Iterable[tuple[str, Any]] | None) -> str | None:
    """The token of an `authorization: Bearer <token>` header, "" when malformed, else None."""
    for key, value in metadata or ():
        if key == "authorization":
            scheme, _, token = str(value).partition(" ")
            return token.strip() if scheme.lower() == "bearer" else ""
    return None


def certificate_identities(context: Context) -> list[str]:
    """The verified client certificate's URI/DNS SANs and common name, most specific first."""
    auth = context.auth_context()
    names = [*auth.get("x509_subject_alternative_name", []), *auth.get("x509_common_name", [])]
    return [name.decode() if isinstance(name, bytes) else str(name) for name in names]


class AuthInterceptor(WrappingInterceptor):
    """Answers UNAUTHENTICATED without a known credential and PERMISSION_DENIED without the
    method's scope; health checks and reflection pass."""

    def __init__(self, callers: Callers) -> None:
        self._callers = callers
        super().__init__()

    def passes(self, method: str) -> bool:
        return method.startswith(PUBLIC_PREFIXES)

    def wrap(self, handler: Handler, method: str) -> Handler:
        check = functools.partial(self._authorize, method)

        def guarded(behaviour: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
            return _guarded(behaviour, check)

        def guarded_stream(behaviour: Callable[..., Any]) -> Callable[..., Any]:
            return _guarded_stream(behaviour, check)

        return rewrapped(
            handler,
            unary_unary=guarded,
            stream_unary=guarded,
            unary_stream=guarded_stream,
            stream_stream=guarded_stream,
        )

    def identify(self, context: Context) -> tuple[Caller | None, str]:
        """The caller, or None and why not."""
        token = bearer_token(context.invocation_metadata())
        if token is not None:
            caller = self._callers.by_token(token) if token else None
            return caller, "" if caller else "invalid bearer token"
        identities = certificate_identities(context)
        if identities:
            caller = self._callers.by_identities(identities)
            return caller, "" if caller else "client certificate identity not known"
        return None, "missing credentials: a bearer token or a client certificate"

    async def _authorize(self, method: str, context: Context) -> None:
        caller, problem = self.identify(context)
        if caller is None:
            log.info("call refused", extra={"method": method, "reason": problem})
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, problem)
            return
        scope = METHOD_SCOPES.get(method)
        if scope is None or scope not in caller.scopes:
            needed = f"scope {scope.value!r}" if scope else "a method open to callers"
            log.info(
                "call refused", extra={"method": method, "caller": caller.name, "needs": needed}
            )
            await context.abort(
                grpc.StatusCode.PERMISSION_DENIED, f"caller {caller.name!r} lacks {needed}"
            )


Check = Callable[[Context], Awaitable[None]]


def _guarded(behaviour: Callable[..., Any], check: Check) -> Callable[..., Awaitable[Any]]:
    async def guarded(request: Any, context: Context) -> Any:
        await check(context)
        result = behaviour(request, context)
        return await result if inspect.isawaitable(result) else result

    return guarded


def _guarded_stream(behaviour: Callable[..., Any], check: Check) -> Callable[..., Any]:
    if inspect.isasyncgenfunction(behaviour):

        async def generated(request: Any, context: Context) -> Any:
            await check(context)
            async for response in behaviour(request, context):
                yield response

        return generated
    # A handler that writes with context.write() and returns nothing.
    return _guarded(behaviour, check)


def auth_interceptors(config: SecurityConfig) -> list[Any]:
    """The interceptor checking callers when a callers file is configured; none otherwise."""
    if not config.tokens_path:
        return []
    return [AuthInterceptor(Callers.load(Path(config.tokens_path)))]


def warn_if_exposed(host: str, config: SecurityConfig) -> None:
    """Logs a warning when anyone on the network could call this server without credentials."""
    if config.tokens_path or config.tls_client_auth == "require" or is_loopback(host):
        return
    log.warning(
        "listening beyond loopback without caller authentication; set EMMA_TOKENS "
        "(docs/security.md)",
        extra={"host": host, "tls": config.tls},
    )
