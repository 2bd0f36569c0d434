"""Releasing a data key to one organisation (HPKE) and opening it there: only there, only as released."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from services.core.envelope.errors import (
    EnvelopeError,
    MalformedEnvelopeError,
    TamperedSectionError,
    UnknownKeyError,
    UnsupportedVersionError,
    WrongRecipientError,
)
from services.core.keyvault.keys import DataCategory
from services.core.keyvault.release import open_released_key, release_key
from services.core.keyvault.released import ReleasedKey
from services.core.keyvault.vault import KeyVault
from tests.unit.keyvault_support import vault_files

SHELTER, SHELTER_KEM = "org-synthetic-shelter", "kem-shelter-1"
SHELTER_KEY = X25519PrivateKey.generate()
LEGAL, LEGAL_KEM = "org-synthetic-legal-aid", "kem-legal-1"
LEGAL_KEY = X25519PrivateKey.generate()


@pytest.fixture(scope="module")
def vault(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeyVault]:
    files = vault_files(tmp_path_factory.mktemp("release"))
    vault = files.vault()
    vault.ensure_subject("subj-1")
    yield vault
    files.engine.dispose()


def _release(vault: KeyVault, category: DataCategory = DataCategory.CASE_FILE, purpose: str = "shelter") -> ReleasedKey:
    key_id = vault.current_key("subj-1", category).key_id
    return release_key(vault, key_id, SHELTER, SHELTER_KEM, SHELTER_KEY.public_key(), purpose)


def test_round_trip_through_bytes(vault: KeyVault) -> None:
    for category in DataCategory:
        released = _release(vault, category)
        data = released.to_bytes()
        assert ReleasedKey.from_bytes(data) == released
        opened = open_released_key(ReleasedKey.from_bytes(data), SHELTER, SHELTER_KEM, SHELTER_KEY)
        assert opened == vault.current_key("subj-1", category)
        assert opened.key not in data


def test_older_versions_can_be_released(vault: KeyVault) -> None:
    old = vault.current_key("subj-1", DataCategory.ROUTING)
    vault.rotate("subj-1", DataCategory.ROUTING)
    released = release_key(vault, old.key_id, SHELTER, SHELTER_KEM, SHELTER_KEY.public_key(), "shelter")
    assert open_released_key(released, SHELTER, SHELTER_KEM, SHELTER_KEY) == old


def test_another_org_cannot_open(vault: KeyVault) -> None:
    released = _release(vault)
    with pytest.raises(WrongRecipientError, match=SHELTER):
        open_released_key(released, LEGAL, LEGAL_KEM, LEGAL_KEY)
    with pytest.raises(WrongRecipientError):
        open_released_key(released, SHELTER, "kem-shelter-2", SHELTER_KEY)  # the right org, another KEM key
    with pytest.raises(TamperedSectionError):  # another org claiming to be the recipient
        open_released_key(released, SHELTER, SHELTER_KEM, LEGAL_KEY)


@pytest.mark.parametrize("field", ["purpose", "key_id", "recipient_org", "recipient_kem_key_id"])
def test_every_cleartext_field_is_bound(vault: KeyVault, field: str) -> None:
    released = _release(vault)
    other_key_id = vault.current_key("subj-1", DataCategory.ROUTING).key_id
    value: dict[str, Any] = {
        "purpose": "legal_aid", "key_id": other_key_id, "recipient_org": LEGAL, "recipient_kem_key_id": LEGAL_KEM,
    }
    forged = ReleasedKey.from_bytes(dataclasses.replace(released, **{field: value[field]}).to_bytes())
    me = (forged.recipient_org, forged.recipient_kem_key_id)  # the ids the forgery names, so the HPKE check runs
    with pytest.raises(TamperedSectionError):
        open_released_key(forged, *me, SHELTER_KEY)


def test_ciphertext_moved_to_another_release_fails(vault: KeyVault) -> None:
    routing, case_file = _release(vault, DataCategory.ROUTING), _release(vault, DataCategory.CASE_FILE)
    swapped = dataclasses.replace(case_file, ciphertext=routing.ciphertext)
    with pytest.raises(TamperedSectionError):
        open_released_key(swapped, SHELTER, SHELTER_KEM, SHELTER_KEY)


def test_flipping_any_byte_is_detected(vault: KeyVault) -> None:
    data = _release(vault).to_bytes()
    seen: set[type[EnvelopeError]] = set()
    for index in range(len(data)):
        for mask in (0x01, 0x80, 0xFF):
            altered = bytearray(data)
            altered[index] ^= mask
            with pytest.raises(EnvelopeError) as caught:
                open_released_key(ReleasedKey.from_bytes(bytes(altered)), SHELTER, SHELTER_KEM, SHELTER_KEY)
            seen.add(type(caught.value))
    assert seen == {MalformedEnvelopeError, UnsupportedVersionError, WrongRecipientError, TamperedSectionError}


def test_malformed_and_unsupported_bytes(vault: KeyVault) -> None:
    data = _release(vault).to_bytes()
    for bad in (b"", b"RNRK", data[:-1], data + b"\x00", b"XXXX" + data[4:]):
        with pytest.raises(MalformedEnvelopeError):
            ReleasedKey.from_bytes(bad)
    for version in (0, 2, 255):
        with pytest.raises(UnsupportedVersionError):
            ReleasedKey.from_bytes(data[:4] + bytes([version]) + data[5:])
    with pytest.raises(UnsupportedVersionError):
        dataclasses.replace(ReleasedKey.from_bytes(data), suite_version=2)
    good = ReleasedKey.from_bytes(data)
    cases: list[tuple[str, Any]] = [
        ("key_id", "dk-NOT-HEX"), ("key_id", "subj-1"), ("ciphertext", good.ciphertext[:-1]),
        ("ciphertext", good.ciphertext + b"\x00"), ("recipient_org", ""),
    ]
    for field, value in cases:
        with pytest.raises(MalformedEnvelopeError, match=field):
            dataclasses.replace(good, **{field: value})
        with pytest.raises(MalformedEnvelopeError, match=field):  # the same through the byte form
            ReleasedKey.from_bytes(_unchecked_bytes(dataclasses.asdict(good) | {field: value}))


def _unchecked_bytes(fields: dict[str, Any]) -> bytes:
    """The v1 byte form of any field values, valid or not (the layout in released.py, written out)."""
    out = b"RNRK" + bytes([fields["suite_version"]])
    for name in ("recipient_org", "recipient_kem_key_id", "key_id", "purpose"):
        raw = fields[name].encode()
        out += bytes([len(raw)]) + raw
    ciphertext: bytes = fields["ciphertext"]
    return out + len(ciphertext).to_bytes(2, "big") + ciphertext


@pytest.mark.parametrize("purpose", ["", "x" * 256, "\ud800", "é" * 128])
def test_unusable_purpose_is_refused_before_anything_is_encrypted(vault: KeyVault, purpose: str) -> None:
    with pytest.raises(MalformedEnvelopeError, match="purpose"):
        _release(vault, purpose=purpose)


def test_unknown_key_is_refused(vault: KeyVault) -> None:
    with pytest.raises(UnknownKeyError):
        release_key(vault, "dk-" + "0" * 32, SHELTER, SHELTER_KEM, SHELTER_KEY.public_key(), "shelter")


def test_repr_shows_no_ciphertext(vault: KeyVault) -> None:
    released = _release(vault)
    assert released.ciphertext.hex() not in repr(released)
    assert "ciphertext" not in repr(released)


@settings(max_examples=60, deadline=None)
@given(
    subject=st.text(min_size=1, max_size=128).filter(str.isprintable),
    purpose=st.text(min_size=1, max_size=80).filter(lambda p: len(p.encode()) <= 255),
)
def test_round_trip_property(vault: KeyVault, subject: str, purpose: str) -> None:
    vault.ensure_subject(subject)
    for category in DataCategory:
        key = vault.current_key(subject, category)
        released = release_key(vault, key.key_id, SHELTER, SHELTER_KEM, SHELTER_KEY.public_key(), purpose)
        again = ReleasedKey.from_bytes(released.to_bytes())
        assert again == released
        assert again.to_bytes() == released.to_bytes()
        assert open_released_key(again, SHELTER, SHELTER_KEM, SHELTER_KEY) == key
        assert vault.subject_of(key.key_id) == subject
        with pytest.raises(WrongRecipientError):
            open_released_key(again, LEGAL, LEGAL_KEM, LEGAL_KEY)
