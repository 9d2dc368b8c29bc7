"""TLS: the self-signed certificate, and the sandbox served over https."""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import ssl
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from cryptography import x509

from d365nb import sandbox
from d365nb.sandbox.tls import make_certificate


def test_certificate_names_loopback_and_key_is_private(tmp_path):
    cert_path, key_path = make_certificate(tmp_path)
    cert = x509.load_pem_x509_certificate(Path(cert_path).read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in san.get_values_for_type(x509.DNSName)
    assert ipaddress.IPv4Address("127.0.0.1") in san.get_values_for_type(x509.IPAddress)
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert stat.S_IMODE(os.stat(key_path).st_mode) == 0o600


def trust(ca: str) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=ca)


def test_sandbox_serves_https_verified_by_its_ca():
    with sandbox.start(data="empty", tls=True) as h:
        assert h.url.startswith("https://127.0.0.1:") and h.api.startswith("https://")
        assert h.ca and Path(h.ca).is_file()
        auth = {"Authorization": f"Bearer {h.token}"}
        r = httpx.get(h.api + "WhoAmI", headers=auth, verify=trust(h.ca))
        assert r.status_code == 200 and "UserId" in r.json()
        localhost = h.api.replace("127.0.0.1", "localhost")
        assert httpx.get(localhost + "WhoAmI", headers=auth, verify=trust(h.ca)).status_code == 200
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.get(h.api + "WhoAmI", headers=auth)  # not trusted without the CA
        # Faults still drop https connections as connection errors.
        h.set_faults("drop=1")
        with pytest.raises(httpx.TransportError):
            httpx.get(h.api + "WhoAmI", headers=auth, verify=trust(h.ca))


def test_cli_prints_the_ca_with_tls():
    proc = subprocess.Popen(
        [sys.executable, "-m", "d365nb.cli", "sandbox", "--tls", "--data", "empty"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        line = json.loads(proc.stdout.readline())
        assert set(line) == {"url", "token", "api", "ca"}
        r = httpx.get(
            line["api"] + "WhoAmI",
            headers={"Authorization": f"Bearer {line['token']}"},
            verify=trust(line["ca"]),
        )
        assert r.status_code == 200
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0
