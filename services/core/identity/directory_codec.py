"""``directory.json``: the directory as canonical JSON bytes, and back with errors that name the field.

Canonical form (what the CA signs): UTF-8, keys sorted, no insignificant whitespace, no trailing newline;
organisations sorted by org id and services by name. Only objects, arrays, strings and integers appear, so
it is also the RFC 8785 (JCS) form. An organisation's ``notify`` object (``email`` and ``webhook_url``,
either may be empty) is present only when it has endpoints, so older directories keep their exact bytes.
Public keys are standard base64 of the raw 32 bytes. Parsing is
strict: duplicate or unknown keys, a wrong type, non-canonical base64 or an unknown ``format_version`` are
errors, because the file is signed and must mean exactly one thing.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

from services.core.identity.directory import Directory
from services.core.identity.errors import DirectoryError
from services.core.identity.json_fields import Fields, no_duplicate_keys
from services.core.identity.records import KeyRecord, NetworkService, NotifyEndpoints, Organisation
from services.core.identity.vocabulary import (
    parse_region,
    parse_role,
    parse_service_type,
    region_word,
    role_word,
    service_type_word,
)

FORMAT_VERSION = 1
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def dump_directory(directory: Directory) -> bytes:
    """The canonical ``directory.json`` bytes of ``directory``."""
    document = {
        "format_version": FORMAT_VERSION,
        "network_id": directory.network_id,
        "serial": directory.serial,
        "issued_at": directory.issued_at.astimezone(UTC).strftime(_TIME_FORMAT),
        "organisations": [_dump_org(org) for org in directory.organisations],
        "services": [_dump_service(svc) for svc in directory.services],
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _dump_key(record: KeyRecord, algorithm: str) -> dict[str, str]:
    return {
        "key_id": record.key_id,
        "algorithm": algorithm,
        "public_key": base64.b64encode(record.public_bytes).decode(),
    }


def _dump_org(org: Organisation) -> dict[str, Any]:
    dumped: dict[str, Any] = {
        "org_id": org.org_id,
        "display_name": org.display_name,
        "role": role_word(org.role),
        "regions": [region_word(region) for region in org.regions],
        "services": [service_type_word(service) for service in org.services],
        "language": org.language,
        "age_group": org.age_group,
        "signing_key": _dump_key(org.signing_key, "ed25519"),
        "kem_key": _dump_key(org.kem_key, "x25519"),
        "tls_cert_sha256": org.tls_cert_sha256,
    }
    if org.notify is not None:
        dumped["notify"] = {"email": org.notify.email, "webhook_url": org.notify.webhook_url}
    return dumped


def _dump_service(svc: NetworkService) -> dict[str, Any]:
    return {
        "name": svc.name,
        "signing_key": _dump_key(svc.signing_key, "ed25519"),
        "tls_cert_sha256": svc.tls_cert_sha256,
    }


def parse_directory(data: bytes) -> Directory:
    """A validated ``Directory`` from ``directory.json`` bytes; ``DirectoryError`` naming the bad field."""
    try:
        document = json.loads(data.decode("utf-8"), object_pairs_hook=no_duplicate_keys)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DirectoryError("(document)", f"not UTF-8 JSON: {exc}") from None
    top = Fields(document, "")
    version = top.get("format_version", int)
    if version != FORMAT_VERSION:
        raise DirectoryError("format_version", f"unsupported version {version} (this code reads {FORMAT_VERSION})")
    network_id, serial, issued_at = top.get("network_id", str), top.get("serial", int), top.get("issued_at", str)
    try:
        when = datetime.strptime(issued_at, _TIME_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise DirectoryError("issued_at", "expected YYYY-MM-DDTHH:MM:SSZ") from None
    orgs = [_parse_org(fields) for fields in top.children("organisations")]
    services = [_parse_service(fields) for fields in top.children("services")]
    top.done()
    return Directory(orgs, services, network_id=network_id, serial=serial, issued_at=when)


def _parse_key(fields: Fields, algorithm: str) -> KeyRecord:
    if fields.get("algorithm", str) != algorithm:
        raise DirectoryError(fields.name("algorithm"), f"expected {algorithm!r}")
    record = KeyRecord(key_id=fields.get("key_id", str), public_bytes=fields.base64("public_key"))
    fields.done()
    return record


def _parse_org(fields: Fields) -> Organisation:
    values: dict[str, Any] = {
        "org_id": fields.get("org_id", str),
        "display_name": fields.get("display_name", str),
        "role": fields.word("role", parse_role),
        "regions": tuple(fields.words("regions", parse_region)),
        "services": tuple(fields.words("services", parse_service_type)),
        "language": fields.get("language", str),
        "age_group": fields.get("age_group", str),
        "signing_key": _parse_key(fields.child("signing_key"), "ed25519"),
        "kem_key": _parse_key(fields.child("kem_key"), "x25519"),
        "tls_cert_sha256": fields.get("tls_cert_sha256", str),
        "notify": _parse_notify(fields),
    }
    fields.done()
    with fields.blame():
        return Organisation(**values)


def _parse_notify(org: Fields) -> NotifyEndpoints | None:
    if not org.has("notify"):
        return None
    fields = org.child("notify")
    values = {"webhook_url": fields.get("webhook_url", str), "email": fields.get("email", str)}
    fields.done()
    with org.blame():  # NotifyEndpoints names ``notify.<field>``, relative to the organisation
        return NotifyEndpoints(**values)


def _parse_service(fields: Fields) -> NetworkService:
    values: dict[str, Any] = {
        "name": fields.get("name", str),
        "signing_key": _parse_key(fields.child("signing_key"), "ed25519"),
        "tls_cert_sha256": fields.get("tls_cert_sha256", str),
    }
    fields.done()
    with fields.blame():
        return NetworkService(**values)
