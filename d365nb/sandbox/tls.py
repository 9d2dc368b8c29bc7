"""A self-signed certificate for serving the sandbox over https on loopback.

Clients that insist on https (Microsoft's PowerPlatform-Dataverse-Client builds `https://` URLs
only) are pointed at the PEM through `REQUESTS_CA_BUNDLE` / `SSL_CERT_FILE` / `verify=`. The
certificate is its own CA (basicConstraints CA:TRUE) so it can sit in a CA bundle, and names both
`localhost` and `127.0.0.1` so either host name verifies.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CERT_FILE = "sandbox-cert.pem"
KEY_FILE = "sandbox-key.pem"


def make_certificate(directory: str | os.PathLike[str], days: int = 30) -> tuple[str, str]:
    """Write a fresh self-signed cert and key for 127.0.0.1/localhost into `directory`.

    Returns `(cert_pem_path, key_pem_path)`. The key file is created with mode 0600.

    >>> cert, key = make_certificate(tempfile.mkdtemp())  # doctest: +SKIP
    """
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    # P-256 keys are generated in microseconds (RSA-2048 takes ~100 ms), and every TLS client
    # we care about supports them.
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "d365nb sandbox"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "d365nb"),
        ]
    )
    now = dt.datetime.now(dt.UTC)
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))  # tolerate small clock skew
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.IPv4Address("127.0.0.1")),
                    x509.IPAddress(ipaddress.IPv6Address("::1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path = folder / CERT_FILE
    key_path = folder / KEY_FILE
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_bytes = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key_bytes)
    return str(cert_path), str(key_path)
