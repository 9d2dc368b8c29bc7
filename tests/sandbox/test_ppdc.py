"""Microsoft's PowerPlatform-Dataverse-Client (PyPI) against the `--tls` sandbox.

The SDK only speaks https and authenticates with an azure-identity `TokenCredential`; here the
credential hands out the sandbox's bearer token (the one thing faked: Entra ID sign-in).
"""

from __future__ import annotations

import time

import pytest

pytest.importorskip("PowerPlatform.Dataverse")

from azure.core.credentials import AccessToken  # noqa: E402
from PowerPlatform.Dataverse.client import DataverseClient  # noqa: E402

from d365nb import sandbox  # noqa: E402


class SandboxCredential:
    """A TokenCredential returning the sandbox token for any scope."""

    def __init__(self, token: str) -> None:
        self._token = token
        self.scopes: list[str] = []

    def get_token(self, *scopes: str, **kwargs) -> AccessToken:
        self.scopes.extend(scopes)
        return AccessToken(self._token, int(time.time()) + 3600)

    def __repr__(self) -> str:
        return "SandboxCredential()"


@pytest.fixture(scope="module")
def ppdc(tmp_path_factory):
    with sandbox.start(data="empty", tls=True) as h:
        mp = pytest.MonkeyPatch()
        # requests reads REQUESTS_CA_BUNDLE; ssl-based clients read SSL_CERT_FILE.
        mp.setenv("REQUESTS_CA_BUNDLE", h.ca)
        mp.setenv("SSL_CERT_FILE", h.ca)
        credential = SandboxCredential(h.token)
        client = DataverseClient(h.url, credential)
        try:
            yield h, client, credential
        finally:
            client.close()
            mp.undo()


def test_sdk_create_get_update_delete(ppdc):
    h, client, credential = ppdc
    id = client.records.create("lead", {"subject": "From the SDK", "lastname": "Gates"})
    assert h.org.store.exists("lead", id)
    assert credential.scopes[0] == f"{h.url}/.default"
    record = client.records.retrieve("lead", id, select=["subject", "lastname"])
    assert record["subject"] == "From the SDK" and record["lastname"] == "Gates"
    client.records.update("lead", id, {"subject": "Changed by the SDK"})
    assert client.records.retrieve("lead", id, select=["subject"])["subject"] == (
        "Changed by the SDK"
    )
    client.records.delete("lead", id)
    assert not h.org.store.exists("lead", id)
    assert client.records.retrieve("lead", id) is None  # the SDK maps our 404 to None


def test_sdk_list_with_a_filter(ppdc):
    h, client, _ = ppdc
    for name in ("Alpha", "Beta", "Alpha"):
        client.records.create("contact", {"lastname": name, "firstname": "SDK"})
    pages = client.records.list_pages(
        "contact", filter="lastname eq 'Alpha'", select=["lastname", "firstname"], page_size=1
    )
    rows = [r for page in pages for r in page]  # one per page: the SDK follows nextLinks
    listed = list(client.records.list("contact", filter="lastname eq 'Beta'"))
    assert [r["lastname"] for r in listed] == ["Beta"]
    assert len(rows) == 2
    assert {r["lastname"] for r in rows} == {"Alpha"}


def test_sdk_multi_record_create(ppdc):
    h, client, _ = ppdc
    before = h.org.store.count("lead")
    ids = client.records.create(
        "lead", [{"subject": f"Bulk {i}", "lastname": "Many"} for i in range(25)]
    )
    assert len(ids) == 25 and len(set(ids)) == 25
    assert h.org.store.count("lead") == before + 25
    assert all(h.org.store.exists("lead", i) for i in ids)


def test_sdk_batch_with_a_change_set(ppdc):
    h, client, _ = ppdc
    batch = client.batch.new()
    batch.records.create("lead", {"subject": "batched", "lastname": "B"})
    batch.tables.get("lead")  # a GET with raw spaces in its request line
    with batch.changeset() as cs:
        contact = cs.records.create("contact", {"lastname": "Changeset"})
        cs.records.create("account", {"name": "Batchco", "primarycontactid@odata.bind": contact})
    result = batch.execute()
    statuses = [r.status_code for r in result.responses]
    assert statuses == [204, 200, 204, 204]
    assert result.responses[1].data["value"][0]["EntitySetName"] == "leads"
    contact_id, account_id = (r.entity_id for r in result.responses[2:])
    account = client.records.retrieve("account", account_id, select=["_primarycontactid_value"])
    assert account["_primarycontactid_value"] == contact_id
