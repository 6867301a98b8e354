"""`emma certs dev`: a CA, a server certificate for the mesh names, caller certificates, tokens."""

from __future__ import annotations

import ipaddress
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from emma.cli.certs import DEV_CALLERS, DevCerts, caller_identity, token_hash
from emma.cli.main import main
from emma.runtime.auth import Callers, Scope


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_keys_and_tokens_are_private_and_certificates_readable(certs: DevCerts) -> None:
    secrets = [certs.ca.key, certs.server.key, *(c.key for c in certs.callers.values())]
    secrets += list(certs.tokens.values())
    for path in secrets:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    for path in (certs.ca.cert, certs.server.cert):
        assert path.read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")


def test_server_certificate_names_loopback_and_the_mesh_services(certs: DevCerts) -> None:
    server, ca = load(certs.server.cert), load(certs.ca.cert)
    server.verify_directly_issued_by(ca)
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {"localhost", "profile", "emma-context", "decision"} <= set(
        names.get_values_for_type(x509.DNSName)
    )
    ips = set(names.get_values_for_type(x509.IPAddress))
    assert {ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")} <= ips
    usage = server.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.SERVER_AUTH]


def test_each_caller_certificate_carries_its_identity(certs: DevCerts) -> None:
    ca = load(certs.ca.cert)
    assert set(certs.callers) == set(DEV_CALLERS)
    for name, issued in certs.callers.items():
        cert = load(issued.cert)
        cert.verify_directly_issued_by(ca)
        assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == name
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert names.get_values_for_type(x509.UniformResourceIdentifier) == [caller_identity(name)]
        usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]


def test_callers_file_maps_tokens_and_identities_to_scopes(certs: DevCerts) -> None:
    text = certs.callers_file.read_text()
    callers = Callers.load(certs.callers_file)
    for name, scopes in DEV_CALLERS.items():
        secret = certs.tokens[name].read_text()
        # Only the hash is stored, never the token itself.
        assert secret not in text
        assert token_hash(secret) in text
        by_token = callers.by_token(secret)
        by_identity = callers.by_identities([caller_identity(name)])
        assert by_token is not None and by_identity is not None
        assert by_token.name == by_identity.name == name
        assert by_token.scopes == {Scope(s) for s in scopes}
    assert callers.by_token(secret + "x") is None


def test_command_writes_the_files_with_extra_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "dev"
    assert main(["certs", "dev", "--out", str(out), "--name", "emma.example.test"]) == 0
    names = load(out / "server.pem").extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert "emma.example.test" in names.value.get_values_for_type(x509.DNSName)
    assert (out / "callers.yaml").is_file()
    assert stat.S_IMODE((out / "till.token").stat().st_mode) == 0o600
    printed = capsys.readouterr().out
    assert "EMMA_TLS_CERT=" in printed
    assert "EMMA_TLS_CLIENT_AUTH=require" in printed


def test_token_command_prints_a_token_and_its_hash(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["certs", "token"]) == 0
    lines = dict(line.split(":", 1) for line in capsys.readouterr().out.splitlines())
    assert token_hash(lines["token"].strip()) == lines["token_sha256"].strip()
