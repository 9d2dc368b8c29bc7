"""Small building blocks of metadata objects: stable MetadataIds, labels, managed properties.

Dataverse gives every metadata item a `MetadataId` GUID that never changes. The sandbox derives
them from names with uuid5, so the same table or column has the same id in every run and every
process - clients may cache them, as they do against a real organisation.
"""

from __future__ import annotations

import uuid
from typing import Any

LANGUAGE_CODE = 1033  # en-US, the only language the sandbox speaks
INTRODUCED_VERSION = "5.0.0.0"
_NAMESPACE = uuid.UUID("5f0c3c4e-5a52-4a53-9d36-0d365b5a9d01")


def metadata_id(*parts: str) -> str:
    """A stable GUID for the metadata item named by `parts`, e.g. ("attribute", "lead", "subject")."""
    return str(uuid.uuid5(_NAMESPACE, "/".join(parts)))


def label(text: str | None, *key: str) -> dict[str, Any]:
    """A `Label` complex value in the shape Dataverse returns (one en-US localized label).

    >>> label("Lead", "entity", "lead")["UserLocalizedLabel"]["Label"]
    'Lead'
    """
    if not text:
        return {"LocalizedLabels": [], "UserLocalizedLabel": None}
    localized = {
        "Label": text,
        "LanguageCode": LANGUAGE_CODE,
        "IsManaged": True,
        "MetadataId": metadata_id("label", *key),
        "HasChanged": None,
    }
    return {"LocalizedLabels": [localized], "UserLocalizedLabel": dict(localized)}


def managed(value: Any, logical_name: str, can_be_changed: bool = False) -> dict[str, Any]:
    """A managed-property complex value (`BooleanManagedProperty` and friends)."""
    return {
        "Value": value,
        "CanBeChanged": can_be_changed,
        "ManagedPropertyLogicalName": logical_name,
    }


# Words Dataverse's own schema names are made of; `schema_name` splits logical names on them.
_VOCABULARY = """account activity actual address administrator annual birth by category city close code
    company complete contact country created credit customer date description disabled do domain
    duration email employees end estimated first full gender hold id income industry internal is
    job last lead limit line mail minutes mobile modified name not number object of on owner
    parent percent phone postal primary priority quality regarding revenue scheduled site source
    start state status sub subject system team telephone title type url user value version web
    """
_WORDS = sorted(_VOCABULARY.split(), key=len, reverse=True)
_SPELLING = {"email": "EMail", "url": "URL"}


def schema_name(logical_name: str) -> str:
    """A PascalCase schema name for a logical name the definition gives none for.

    Dataverse's schema names are the logical names with each word capitalised
    (`numberofemployees` -> `NumberOfEmployees`, `emailaddress1` -> `EMailAddress1`); words are
    found greedily in a small vocabulary, anything else keeps its first letter upper-cased.

    >>> schema_name("parentcustomerid"), schema_name("address1_city")
    ('ParentCustomerId', 'Address1_City')
    """
    out, i, text = [], 0, logical_name
    while i < len(text):
        word = next((w for w in _WORDS if text.startswith(w, i)), None)
        if word is None:
            j = i + 1
            while j < len(text) and not any(text.startswith(w, j) for w in _WORDS):
                j += 1
            piece = text[i:j]
            out.append(piece[:1].upper() + piece[1:])
            i = j
        else:
            out.append(_SPELLING.get(word, word.capitalize()))
            i += len(word)
    return "".join(out)
