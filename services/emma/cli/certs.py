"""`emma certs dev`: a development CA, a server certificate, caller certificates and tokens."""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import hashlib
import ipaddress
import os
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# Names the services are reached by: loopback, Docker Compose and the Kubernetes Services.
SERVER_NAMES = (
    "localhost",
    "127.0.0.1",
    "::1",
    "decision",
    "profile",
    "context",
    "learner",
    "emma-decision",
    "emma-profile",
    "emma-context",
    "emma-learner",
    "triggers",
    "emma-triggers",
)

# Callers of the development setup and their scopes; `decision` is the mesh's own identity.
DEV_CALLERS: dict[str, tuple[str, ...]] = {
    "decision": ("decide",),
    "till": ("decide",),
    "ingest": ("ingest",),
    "admin": ("admin",),
}

IDENTITY_PREFIX = "spiffe://emma/"
VALID_DAYS = 365


def caller_identity(name: str) -> str:
    """The URI SAN a caller's certificate carries, and the callers file maps to scopes."""
    return IDENTITY_PREFIX + name


@dataclasses.dataclass(frozen=True)
class Issued:
    """Where one certificate and its key were written."""

    cert: Path
    key: Path


@dataclasses.dataclass(frozen=True)
class DevCerts:
    """Every file `emma certs dev` writes."""

    directory: Path
    ca: Issued
    server: Issued
    callers: dict[str, Issued]
    tokens: dict[str, Path]
    callers_file: Path


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write_private(path: Path, data: bytes) -> None:
    # Created 0600 from the start, so the secret is never readable by others, not even briefly.
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    _write_private(
        path,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _alt_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _builder(
    subject: str, issuer: x509.Name | None, key: ec.EllipticCurvePrivateKey
) -> x509.CertificateBuilder:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer or name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        # An hour back, so a clock a little behind does not reject a fresh certificate.
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
    )


def make_ca(common_name: str = "Emma development CA") -> tuple[x509.Certificate, Any]:
    key = _new_key()
    cert = (
        _builder(common_name, None, key)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def issue(
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    common_name: str,
    *,
    dns_and_ips: Sequence[str] = (),
    uris: Sequence[str] = (),
    server: bool,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A leaf certificate signed by the CA: for servers (serverAuth) or callers (clientAuth)."""
    key = _new_key()
    names: list[x509.GeneralName] = [_alt_name(n) for n in dns_and_ips]
    names += [x509.UniformResourceIdentifier(u) for u in uris]
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (
        _builder(common_name, ca_cert.subject, key)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(ca_key, hashes.SHA256()), key


def token_hash(token: str) -> str:
    """The hex SHA-256 of a token, as the callers file stores it."""
    return hashlib.sha256(token.encode()).hexdigest()


def make_dev_certs(
    directory: Path,
    *,
    server_names: Sequence[str] = SERVER_NAMES,
    callers: dict[str, tuple[str, ...]] = DEV_CALLERS,
) -> DevCerts:
    """Writes a CA, a server certificate, a certificate and a token per caller, and the
    callers file mapping each caller's token hash and certificate identity to its scopes."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_cert, ca_key = make_ca()
    ca = Issued(directory / "ca.pem", directory / "ca.key")
    _write_cert(ca.cert, ca_cert)
    _write_key(ca.key, ca_key)

    server_cert, server_key = issue(
        ca_cert, ca_key, "emma-server", dns_and_ips=server_names, server=True
    )
    server = Issued(directory / "server.pem", directory / "server.key")
    _write_cert(server.cert, server_cert)
    _write_key(server.key, server_key)

    issued: dict[str, Issued] = {}
    tokens: dict[str, Path] = {}
    entries: dict[str, Any] = {}
    for name, scopes in callers.items():
        cert, key = issue(ca_cert, ca_key, name, uris=[caller_identity(name)], server=False)
        issued[name] = Issued(directory / f"{name}.pem", directory / f"{name}.key")
        _write_cert(issued[name].cert, cert)
        _write_key(issued[name].key, key)
        token = secrets.token_urlsafe(32)
        tokens[name] = directory / f"{name}.token"
        _write_private(tokens[name], token.encode())
        entries[name] = {
            "token_sha256": token_hash(token),
            "identity": caller_identity(name),
            "scopes": list(scopes),
        }
    callers_file = directory / "callers.yaml"
    callers_file.write_text(
        "# Callers of the development mesh: token hashes and certificate identities -> scopes.\n"
        + yaml.safe_dump({"callers": entries}, sort_keys=False)
    )
    return DevCerts(directory, ca, server, issued, tokens, callers_file)


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "certs",
        help="make development certificates and caller tokens",
        description="Certificates and tokens for TLS, mutual TLS and caller scopes "
        "(docs/security.md).",
    )
    kinds = parser.add_subparsers(dest="certs_command", required=True, metavar="KIND")
    dev = kinds.add_parser(
        "dev",
        help="a development CA, a server certificate, caller certificates and tokens",
        description="Writes ca.pem, server.pem/.key (for localhost, 127.0.0.1, ::1 and the mesh "
        "service names), NAME.pem/.key/.token for the callers decision, till, ingest and admin, "
        "and callers.yaml for EMMA_TOKENS. Keys and tokens are written 0600. Not for production.",
    )
    dev.add_argument("--out", type=Path, default=Path("certs"), help="directory (default certs)")
    dev.add_argument(
        "--name",
        action="append",
        default=[],
        help="another DNS name or IP address for the server certificate (repeatable)",
    )
    dev.set_defaults(func=run_dev)
    token = kinds.add_parser(
        "token",
        help="a new random caller token and the SHA-256 the callers file stores",
        description="Prints a fresh token (give it to the caller) and its hash (for EMMA_TOKENS).",
    )
    token.set_defaults(func=run_token)


def run_dev(args: argparse.Namespace) -> int:
    names = list(dict.fromkeys([*SERVER_NAMES, *args.name]))
    made = make_dev_certs(args.out, server_names=names)
    print(f"wrote {made.directory}/: ca.pem, server.pem, server.key, callers.yaml")
    for name, scopes in DEV_CALLERS.items():
        print(f"  {name:<9} {name}.pem {name}.key {name}.token  scopes: {', '.join(scopes)}")
    base = made.directory.resolve()
    print("serve with TLS, mutual TLS and caller scopes:")
    print(f"  export EMMA_TLS_CERT={base}/server.pem EMMA_TLS_KEY={base}/server.key")
    print(f"  export EMMA_TLS_CA={base}/ca.pem EMMA_TLS_CLIENT_AUTH=require")
    print(f"  export EMMA_TOKENS={base}/callers.yaml")
    print(f"  export EMMA_MESH_TLS_CA={base}/ca.pem")
    print(f"  export EMMA_MESH_TLS_CERT={base}/decision.pem EMMA_MESH_TLS_KEY={base}/decision.key")
    return 0


def run_token(args: argparse.Namespace) -> int:
    token = secrets.token_urlsafe(32)
    print(f"token:        {token}")
    print(f"token_sha256: {token_hash(token)}")
    return 0
