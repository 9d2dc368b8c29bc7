"""TLS: the self-signed certificate, and the sandbox served over https."""

from __future__ import annotations

import ipaddress
import os
import stat
from pathlib import Path

from cryptography import x509

from d365nb.sandbox.tls import make_certificate


def test_certificate_names_loopback_and_key_is_private(tmp_path):
    cert_path, key_path = make_certificate(tmp_path)
    cert = x509.load_pem_x509_certificate(Path(cert_path).read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in san.get_values_for_type(x509.DNSName)
    assert ipaddress.IPv4Address("127.0.0.1") in san.get_values_for_type(x509.IPAddress)
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert stat.S_IMODE(os.stat(key_path).st_mode) == 0o600
