"""The directory in memory: round trip through directory.json, lookups, and field-naming parse errors."""

from __future__ import annotations

import base64
import copy
import dataclasses
import json
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature

from services.core.identity.directory import Directory
from services.core.identity.directory_codec import dump_directory, parse_directory
from services.core.identity.errors import DirectoryError, UnknownKeyIdError, UnknownOrganisationError
from services.core.identity.records import NotifyEndpoints
from services.core.identity.vocabulary import REGIONS, ROLES, SERVICE_TYPES
from tests.unit.identity_factories import make_directory

Doc = dict[str, Any]


@pytest.fixture(scope="module")
def built():
    return make_directory()


@pytest.fixture
def document(built) -> Doc:
    parsed: Doc = json.loads(dump_directory(built.directory))
    return parsed


def _org(document: Doc, org_id: str) -> tuple[int, Doc]:
    index = next(i for i, org in enumerate(document["organisations"]) if org["org_id"] == org_id)
    return index, document["organisations"][index]


def _parse(document: Doc) -> Directory:
    return parse_directory(json.dumps(document).encode())


# -- round trip ---------------------------------------------------------------------------------------------


def test_directory_round_trips_through_json(built):
    data = dump_directory(built.directory)
    parsed = parse_directory(data)
    assert parsed == built.directory
    assert dump_directory(parsed) == data
    assert [org.org_id for org in parsed.organisations] == sorted(org.org_id for org in built.directory.organisations)


def test_dump_is_canonical(built):
    data = dump_directory(built.directory)
    reencoded = json.dumps(json.loads(data), sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    assert data == reencoded
    assert json.loads(data)["format_version"] == 1
    assert "Sintética".encode() in data  # UTF-8, not \\u escapes


def test_notify_endpoints_round_trip_and_appear_only_where_set(built):
    endpoints = {"alb-cus-01": NotifyEndpoints(webhook_url="https://partner.example/hooks", email="a@b.example"),
                 "leg-aqp-01": NotifyEndpoints(email="guardia@legal.example")}
    directory = built.directory
    orgs = [dataclasses.replace(org, notify=endpoints.get(org.org_id)) for org in directory.organisations]
    with_notify = Directory(orgs, directory.services, network_id=directory.network_id, serial=2,
                            issued_at=directory.issued_at)
    data = dump_directory(with_notify)
    parsed = parse_directory(data)
    assert {org.org_id: org.notify for org in parsed.organisations if org.notify} == endpoints
    assert dump_directory(parsed) == data
    document = json.loads(data)
    assert _org(document, "alb-cus-01")[1]["notify"] == {"email": "a@b.example",
                                                         "webhook_url": "https://partner.example/hooks"}
    assert _org(document, "leg-aqp-01")[1]["notify"] == {"email": "guardia@legal.example", "webhook_url": ""}
    assert sum("notify" in org for org in document["organisations"]) == 2
    assert b'"notify":{' not in dump_directory(directory)  # the canonical form of orgs without it is unchanged


# -- lookups ------------------------------------------------------------------------------------------------


def test_signing_key_resolves_an_org_key_that_verifies_its_signatures(built):
    org_id, public_key = built.directory.signing_key("pol-mdd-01#sig-1")
    assert org_id == "pol-mdd-01"
    signature = built.signing_keys["pol-mdd-01#sig-1"].sign(b"event")
    public_key.verify(signature, b"event")
    other = built.signing_keys["alb-cus-01#sig-1"].sign(b"event")
    with pytest.raises(InvalidSignature):
        public_key.verify(other, b"event")


def test_each_service_key_resolves_to_its_own_service_producer(built):
    org_id, public_key = built.directory.signing_key("svc:referral#sig-1")
    signer = built.directory.signer("svc:referral#sig-1")
    assert (org_id, signer.org_id, signer.service) == ("svc:referral", "svc:referral", "referral")
    public_key.verify(built.signing_keys["svc:referral#sig-1"].sign(b"x"), b"x")
    assert built.directory.signing_key("svc:notify#sig-1")[0] == "svc:notify"
    assert built.directory.signer("pol-cus-01#sig-1").service is None


@pytest.mark.parametrize("key_id", ["pol-mdd-01#sig-2", "pol-mdd-01#kem-1", "svc:billing#sig-1", "", "pol-mdd-01"])
def test_unknown_signing_key_ids_raise_a_key_error_with_a_plain_message(built, key_id):
    with pytest.raises(UnknownKeyIdError) as caught:
        built.directory.signing_key(key_id)
    assert isinstance(caught.value, KeyError)  # what the envelope verifier catches
    assert str(caught.value) == f"no signing key {key_id!r} in the directory"


def test_kem_key_and_org_lookups(built):
    key_id, public_key = built.directory.kem_key("alb-pun-01")
    assert key_id == "alb-pun-01#kem-1"
    assert len(public_key.public_bytes_raw()) == 32
    assert built.directory.org("alb-pun-01").age_group == "minors"
    prosecutor = built.directory.org("fis-lim-01")
    assert built.directory.org_by_tls_fingerprint(prosecutor.tls_cert_sha256) == prosecutor
    for lookup in (built.directory.kem_key, built.directory.org, built.directory.org_by_tls_fingerprint):
        with pytest.raises(UnknownOrganisationError):
            lookup("nobody-01")


def test_providers_of_filters_by_service_region_and_age_group(built):
    def ids(*args: Any, **kwargs: Any) -> list[str]:
        return [org.org_id for org in built.directory.providers_of(*args, **kwargs)]

    shelter, cusco, puno = SERVICE_TYPES["shelter"], REGIONS["cusco"], REGIONS["puno"]
    assert ids(shelter, cusco) == ["alb-cus-01"]
    assert ids(shelter, puno) == ["alb-pun-01"]
    assert ids(shelter, puno, minor=True) == ["alb-pun-01"]
    assert ids(shelter, puno, minor=False) == []
    assert ids(shelter, cusco, minor=True) == []
    assert ids(SERVICE_TYPES["child_protection"], REGIONS["loreto"]) == ["pro-nna-01"]
    assert ids(SERVICE_TYPES["legal_aid"], REGIONS["tumbes"]) == []


def test_by_role(built):
    assert [org.org_id for org in built.directory.by_role(ROLES["police"])] == ["pol-cus-01", "pol-mdd-01"]
    assert [org.org_id for org in built.directory.by_role(ROLES["auditor"])] == ["aud-lim-01"]


# -- parse errors name the field ----------------------------------------------------------------------------

Mutation = Callable[[Doc], str]


def _set_org(org_id: str, key: str, value: object, suffix: str = "") -> Mutation:
    def mutate(document: Doc) -> str:
        index, org = _org(document, org_id)
        org[key] = value
        return f"organisations[{index}].{key}{suffix}"

    return mutate


def _set_key(org_id: str, which: str, key: str, value: object) -> Mutation:
    def mutate(document: Doc) -> str:
        index, org = _org(document, org_id)
        org[which][key] = value
        return f"organisations[{index}].{which}.{key}"

    return mutate


def _drop(org_id: str, key: str) -> Mutation:
    def mutate(document: Doc) -> str:
        index, org = _org(document, org_id)
        del org[key]
        return f"organisations[{index}].{key}"

    return mutate


def _top(key: str, value: object) -> Mutation:
    def mutate(document: Doc) -> str:
        document[key] = value
        return key

    return mutate


def _set_notify(org_id: str, value: object, suffix: str = "") -> Mutation:
    return _set_org(org_id, "notify", value, suffix)


def _duplicate_org(document: Doc) -> str:
    document["organisations"].append(copy.deepcopy(document["organisations"][0]))
    return f"organisations[{len(document['organisations']) - 1}].org_id"


def _reused_public_key(document: Doc) -> str:
    first, second = document["organisations"][0], document["organisations"][1]
    second["signing_key"]["public_key"] = first["signing_key"]["public_key"]
    return "organisations[1].signing_key.public_key"


def _service_key_of_another_service(document: Doc) -> str:
    index = next(i for i, svc in enumerate(document["services"]) if svc["name"] == "intake")
    document["services"][index]["signing_key"]["key_id"] = "svc:audit#sig-1"
    return f"services[{index}].signing_key.key_id"


BAD_FIELDS: dict[str, Mutation] = {
    "unknown role": _set_org("pol-mdd-01", "role", "pirate"),
    "role given as enum name": _set_org("pol-mdd-01", "role", "ORG_ROLE_POLICE"),
    "unknown region": _set_org("pol-mdd-01", "regions", ["atlantis"], "[0]"),
    "no regions": _set_org("pol-mdd-01", "regions", []),
    "repeated region": _set_org("leg-aqp-01", "regions", ["puno", "puno"], "[1]"),
    "unknown service": _set_org("alb-cus-01", "services", ["shelter", "spa"], "[1]"),
    "police offering services": _set_org("pol-mdd-01", "services", ["shelter"]),
    "shelter without shelter": _set_org("alb-cus-01", "services", ["legal_aid"]),
    "language": _set_org("alb-cus-01", "language", "fr"),
    "age group": _set_org("alb-cus-01", "age_group", "elderly"),
    "empty display name": _set_org("alb-cus-01", "display_name", "  "),
    "path-like org id": _set_org("alb-cus-01", "org_id", "../ca"),
    "service-like org id": _set_org("alb-cus-01", "org_id", "svc:intake"),
    "uppercase fingerprint": _set_org("alb-cus-01", "tls_cert_sha256", "AB" * 32),
    "missing display name": _drop("alb-cus-01", "display_name"),
    "unknown field": _set_org("alb-cus-01", "nickname", "x"),
    "string instead of array": _set_org("alb-cus-01", "regions", "cusco"),
    "bad base64": _set_key("alb-cus-01", "signing_key", "public_key", "not base64!"),
    "short key": _set_key("alb-cus-01", "kem_key", "public_key", base64.b64encode(b"k" * 31).decode()),
    "key id of another org": _set_key("alb-cus-01", "signing_key", "key_id", "pol-mdd-01#sig-1"),
    "kem id as signing id": _set_key("alb-cus-01", "signing_key", "key_id", "alb-cus-01#kem-1"),
    "key number zero": _set_key("alb-cus-01", "signing_key", "key_id", "alb-cus-01#sig-0"),
    "wrong algorithm": _set_key("alb-cus-01", "kem_key", "algorithm", "ed25519"),
    "future format": _top("format_version", 2),
    "boolean serial": _top("serial", True),
    "bad time": _top("issued_at", "yesterday"),
    "notify: http to a remote host": _set_notify(
        "alb-cus-01", {"email": "", "webhook_url": "http://partner.example/x"}, ".webhook_url"),
    "notify: two addresses": _set_notify("alb-cus-01", {"email": "a@b.example,c@d.example", "webhook_url": ""},
                                         ".email"),
    "notify: both empty": _set_notify("alb-cus-01", {"email": "", "webhook_url": ""}),
    "notify: email missing": _set_notify("alb-cus-01", {"webhook_url": "https://partner.example/x"}, ".email"),
    "notify: unknown field": _set_notify("alb-cus-01", {"email": "a@b.example", "webhook_url": "", "secret": "x"},
                                         ".secret"),
    "notify: null": _set_notify("alb-cus-01", None),
    "notify: number": _set_notify("alb-cus-01", {"email": 7, "webhook_url": ""}, ".email"),
    "duplicate org": _duplicate_org,
    "public key reused": _reused_public_key,
    "service key of another service": _service_key_of_another_service,
}


@pytest.mark.parametrize("mutation", BAD_FIELDS.values(), ids=BAD_FIELDS.keys())
def test_a_bad_field_is_named_in_the_error(document, mutation):
    expected_field = mutation(document)
    with pytest.raises(DirectoryError) as caught:
        _parse(document)
    assert caught.value.field == expected_field
    assert expected_field in str(caught.value)


def test_the_unmodified_document_parses(document, built):
    assert _parse(document) == built.directory


@pytest.mark.parametrize(
    "data",
    [b"", b"\xff\xfe", b"[]", b'{"format_version":1,"format_version":1}', b"not json"],
    ids=["empty", "not utf-8", "array", "duplicate key", "not json"],
)
def test_unreadable_documents_raise_directory_errors(data):
    with pytest.raises(DirectoryError):
        parse_directory(data)
