"""Attacks on envelopes: tampering anywhere, insiders re-signing moved sections, other orgs, wrong keys,
crypto-shredding, unknown versions and garbage. Every path must end in a precise EnvelopeError, never plaintext."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.core.envelope import format as fmt
from services.core.envelope.envelope import Sealer
from services.core.envelope.errors import (
    BadSignatureError,
    EnvelopeError,
    MalformedEnvelopeError,
    ShreddedSubjectError,
    TamperedHeaderError,
    TamperedSectionError,
    UnknownKeyError,
    UnsupportedVersionError,
    WrongRecipientError,
)
from services.core.envelope.format import SectionKind
from services.core.envelope.header import EventHeader, new_event_id
from services.core.envelope.verification import Opener, VerifiedEnvelope, VerifiedSection, Verifier
from services.core.generated.referralnet.envelope.v1 import envelope_pb2
from services.core.keyvault.keys import DataCategory, DataKey
from services.core.keyvault.release import open_released_key, release_key
from services.core.keyvault.released import ReleasedKey
from services.core.keyvault.vault import KeyVault
from tests.unit.envelope_support import (
    CASE_FILE,
    NGO,
    PLAINTEXTS,
    POLICE,
    ROUTING,
    SHELTER,
    TRACEPARENT,
    TRACESTATE,
    DictResolver,
    Network,
    SyntheticOrg,
    flip,
    header_bytes_of,
    make_header,
    new_data_key,
    rebuild,
    section_keys,
    sections_of,
)
from tests.unit.keyvault_support import VaultFiles, vault_files

NET = Network.create()
PLAINTEXT_MARKERS = (b"Persona", b"SINTETICO", b"shelter", "Persona".encode("utf-16-le"))


def _assert_no_plaintext(error: BaseException) -> None:
    text = f"{error} {error.args!r}".encode()
    for plaintext in (*PLAINTEXTS.values(), *PLAINTEXT_MARKERS):
        assert plaintext not in text


def _open_everything(verified: VerifiedEnvelope, keys: dict[SectionKind, DataKey]) -> dict[SectionKind, object]:
    """Try to open every section; the plaintext or the error, per kind."""
    results: dict[SectionKind, object] = {}
    for kind, key in keys.items():
        try:
            results[kind] = Opener().open(verified, kind, key)
        except EnvelopeError as error:
            _assert_no_plaintext(error)
            results[kind] = type(error)
    return results


# -- every single-byte flip --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Region:
    name: str
    start: int
    end: int
    expected: tuple[type[EnvelopeError], ...]


def _locate(wire: bytes, needle: bytes, name: str) -> tuple[int, int]:
    assert wire.count(needle) == 1, f"{name} must occur exactly once in the wire"
    start = wire.find(needle)
    return start, start + len(needle)


def _regions(wire: bytes, header: EventHeader, keys: dict[SectionKind, DataKey], nonces: bytes,
             private_key) -> list[Region]:
    """Where each known byte string sits in ``wire``, computed independently of the sealer from the layouts."""
    header_bytes = header.encode()
    header_digest = fmt.header_digest(header_bytes)
    regions = [Region("header", *_locate(wire, header_bytes, "header"), (TamperedHeaderError,)),
               Region("header_digest", *_locate(wire, header_digest, "header digest"), (TamperedHeaderError,))]
    digests = []
    for index, kind in enumerate(sorted(keys)):
        key = keys[kind]
        nonce = nonces[index * fmt.NONCE_BYTES:(index + 1) * fmt.NONCE_BYTES]
        associated = fmt.section_associated_data(header_bytes, kind, key.key_id)
        sealed = AESGCM(key.key).encrypt(nonce, PLAINTEXTS[kind], associated)
        body, tag = sealed[:-fmt.TAG_BYTES], sealed[-fmt.TAG_BYTES:]
        digest = fmt.section_digest(kind, key.key_id, nonce, sealed)
        digests.append(digest)
        name = kind.name.lower()
        body_start, body_end = _locate(wire, body, f"{name} ciphertext")
        assert wire[body_end:body_end + fmt.TAG_BYTES] == tag
        regions += [
            Region(f"{name}.key_id", *_locate(wire, key.key_id.encode(), f"{name} key id"),
                   (TamperedSectionError, MalformedEnvelopeError)),
            Region(f"{name}.nonce", *_locate(wire, nonce, f"{name} nonce"), (TamperedSectionError,)),
            Region(f"{name}.ciphertext", body_start, body_end, (TamperedSectionError,)),
            Region(f"{name}.tag", body_end, body_end + fmt.TAG_BYTES, (TamperedSectionError,)),
            Region(f"{name}.digest", *_locate(wire, digest, f"{name} digest"), (TamperedSectionError,)),
        ]
    signature = private_key.sign(fmt.signing_input(header_digest, digests))  # Ed25519 is deterministic
    regions.append(Region("signature", *_locate(wire, signature, "signature"), (BadSignatureError,)))
    return sorted(regions, key=lambda region: region.start)


def _expected_for(wire: bytes, index: int, mask: int, regions: list[Region]) -> tuple[str, tuple[type, ...]]:
    for region in regions:
        if region.start <= index < region.end:
            if region.name.endswith(".key_id"):  # a non-ASCII byte makes the key id invalid UTF-8: a parse error
                return region.name, ((MalformedEnvelopeError,) if wire[index] ^ mask >= 0x80
                                     else (TamperedSectionError,))
            return region.name, region.expected
    return "framing", (EnvelopeError,)  # tags, lengths, version, kind: any precise error will do


@pytest.mark.parametrize("kinds", [(ROUTING, CASE_FILE), (ROUTING,), (CASE_FILE,)],
                         ids=["both-with-trace", "routing", "case_file"])
def test_flipping_any_single_byte_is_detected_with_the_precise_error(kinds):
    police = NET.orgs[POLICE]
    header = make_header(police, traceparent=TRACEPARENT if len(kinds) == 2 else "",
                         tracestate=TRACESTATE if len(kinds) == 2 else "")
    keys = section_keys(kinds)
    nonces = os.urandom(fmt.NONCE_BYTES * len(kinds))
    wire = Sealer(police.signer, nonces=lambda n: nonces[:n]).seal(
        header, {kind: (key, PLAINTEXTS[kind]) for kind, key in keys.items()})
    regions = _regions(wire, header, keys, nonces, police.private_key)
    framing = len(wire) - sum(region.end - region.start for region in regions)
    assert 0 < framing < 40, "the known byte strings should cover everything but tags and lengths"
    assert NET.verifier.verify(wire).header == header

    wrong: list[str] = []
    seen: dict[str, set[str]] = {}
    for index in range(len(wire)):
        for mask in (0x01, 0x80, 0xFF):
            region, expected = _expected_for(wire, index, mask, regions)
            try:
                verified = NET.verifier.verify(flip(wire, index, mask))
            except EnvelopeError as error:
                _assert_no_plaintext(error)
                seen.setdefault(region, set()).add(type(error).__name__)
                if not isinstance(error, expected):
                    wrong.append(f"{index} ^ {mask:#x} in {region}: {type(error).__name__} {error}")
                continue
            opened = _open_everything(verified, keys)  # verify must not pass; if it does, opening must fail
            wrong.append(f"{index} ^ {mask:#x} in {region}: VERIFIED, opening gave {opened}")
    assert wrong == []
    assert {name for name in seen if name != "framing"} == {region.name for region in regions}
    assert seen["signature"] == {"BadSignatureError"}
    assert seen["header"] == {"TamperedHeaderError"}


def test_every_truncation_is_malformed():
    keys = section_keys((ROUTING, CASE_FILE))
    wire = NET.seal(make_header(NET.orgs[NGO]), keys)
    for size in range(len(wire)):
        with pytest.raises(MalformedEnvelopeError) as caught:
            NET.verifier.verify(wire[:size])
        _assert_no_plaintext(caught.value)


def test_unknown_outer_fields_do_not_change_the_canonical_hash():
    """The outer protobuf encoding is not signed: what is signed, and what audit hashes, is the canonical form."""
    keys = section_keys((ROUTING,))
    wire = NET.seal(make_header(NET.orgs[NGO]), keys)
    padded = wire + b"\x30\x01"  # field 6 (unknown), varint 1
    assert padded != wire
    original, with_padding = NET.verifier.verify(wire), NET.verifier.verify(padded)
    assert with_padding == original
    assert with_padding.canonical_hash() == original.canonical_hash()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_multi_byte_corruption_never_verifies(data):
    keys = section_keys((ROUTING, CASE_FILE))
    wire = NET.seal(make_header(NET.orgs[SHELTER]), keys)
    changes = data.draw(st.lists(st.tuples(st.integers(0, len(wire) - 1), st.integers(1, 255)), min_size=1,
                                 max_size=6))
    altered = bytearray(wire)
    for index, mask in changes:
        altered[index] ^= mask
    if bytes(altered) == wire:
        return  # the masks cancelled out
    with pytest.raises(EnvelopeError) as caught:
        NET.verifier.verify(bytes(altered))
    _assert_no_plaintext(caught.value)


# -- insiders moving sections ------------------------------------------------------------------------------

MOVES = {
    "other-event": {"event_id": new_event_id()},
    "other-stream": {"stream_id": "ref-another-stream"},
    "other-sequence": {"stream_sequence": 2},
    "other-time": {"occurred_at_unix_micros": 1_768_469_400_000_000},
    "other-type": {"event_type": "ReferralAccepted"},
    "other-service": {"producer_service": "referral"},
    "other-trace": {"traceparent": TRACEPARENT},
}


@pytest.mark.parametrize("change", MOVES.values(), ids=MOVES.keys())
def test_an_insider_moving_sections_to_another_header_cannot_get_them_opened(change):
    police = NET.orgs[POLICE]
    header = make_header(police)
    keys = section_keys((ROUTING, CASE_FILE))
    wire = NET.seal(header, keys)
    moved_header = dataclasses.replace(header, **change)
    assert moved_header != header

    forged = rebuild(moved_header.encode(), sections_of(wire), police.private_key)
    verified = NET.verifier.verify(forged)  # the insider holds the signing key: the signature is fine
    assert verified.header == moved_header
    assert _open_everything(verified, keys) == {ROUTING: TamperedSectionError, CASE_FILE: TamperedSectionError}

    original = NET.verifier.verify(wire)
    unsigned = rebuild(moved_header.encode(), sections_of(wire), None, signature=original.signature)
    with pytest.raises(BadSignatureError, match="does not verify"):
        NET.verifier.verify(unsigned)
    stale_digest = envelope_pb2.Envelope()
    stale_digest.ParseFromString(wire)
    stale_digest.header = moved_header.encode()
    with pytest.raises(TamperedHeaderError):
        NET.verifier.verify(stale_digest.SerializeToString())


def test_an_insider_splicing_a_case_file_into_another_real_event_cannot_get_it_opened():
    police = NET.orgs[POLICE]
    first_keys, second_keys = section_keys((ROUTING, CASE_FILE)), section_keys((ROUTING, CASE_FILE))
    first = NET.seal(make_header(police), first_keys)
    second = NET.seal(make_header(police, stream_sequence=2), second_keys)
    spliced = [sections_of(second)[0], sections_of(first)[1]]  # second's routing, first's case file
    verified = NET.verifier.verify(rebuild(header_bytes_of(second), spliced, police.private_key))
    # the reader even holds the right key for the spliced ciphertext
    assert _open_everything(verified, {ROUTING: second_keys[ROUTING], CASE_FILE: first_keys[CASE_FILE]}) == {
        ROUTING: PLAINTEXTS[ROUTING], CASE_FILE: TamperedSectionError}


def test_an_insider_swapping_section_kinds_cannot_get_them_opened():
    police = NET.orgs[POLICE]
    header = make_header(police)
    keys = section_keys((ROUTING, CASE_FILE))
    wire = NET.seal(header, keys)
    routing, case_file = sections_of(wire)
    routing.kind, case_file.kind = envelope_pb2.SECTION_KIND_CASE_FILE, envelope_pb2.SECTION_KIND_ROUTING
    swapped = rebuild(header.encode(), [case_file, routing], police.private_key)  # digests recomputed
    verified = NET.verifier.verify(swapped)
    # each section now claims the other kind; a reader holding the key it names still cannot open it
    assert _open_everything(verified, {ROUTING: keys[CASE_FILE], CASE_FILE: keys[ROUTING]}) == {
        ROUTING: TamperedSectionError, CASE_FILE: TamperedSectionError}
    assert _open_everything(verified, keys) == {ROUTING: UnknownKeyError, CASE_FILE: UnknownKeyError}

    routing_only = NET.seal(header, {ROUTING: keys[ROUTING]})
    (section,) = sections_of(routing_only)
    section.kind = envelope_pb2.SECTION_KIND_CASE_FILE
    relabelled = NET.verifier.verify(rebuild(header.encode(), [section], police.private_key))
    assert _open_everything(relabelled, {CASE_FILE: keys[ROUTING]}) == {CASE_FILE: TamperedSectionError}

    original_signature = NET.verifier.verify(wire).signature
    with pytest.raises(BadSignatureError):
        NET.verifier.verify(rebuild(header.encode(), [case_file, routing], None, signature=original_signature))
    with pytest.raises(TamperedSectionError, match="do not match its signed digest"):
        NET.verifier.verify(rebuild(header.encode(), [case_file, routing], police.private_key,
                                    recompute_digests=False))


# -- other organisations' keys -----------------------------------------------------------------------------


def test_a_signature_by_another_org_over_the_same_input_is_rejected():
    police, ngo = NET.orgs[POLICE], NET.orgs[NGO]
    keys = section_keys((ROUTING, CASE_FILE))
    wire = NET.seal(make_header(police), keys)
    original = NET.verifier.verify(wire)
    resigned = envelope_pb2.Envelope()
    resigned.ParseFromString(wire)
    resigned.signature = ngo.private_key.sign(original.signing_input)
    with pytest.raises(BadSignatureError, match=f"does not verify under {police.signing_key_id}"):
        NET.verifier.verify(resigned.SerializeToString())


def test_naming_another_orgs_key_for_the_producer_is_rejected():
    police, ngo = NET.orgs[POLICE], NET.orgs[NGO]
    keys = section_keys((ROUTING, CASE_FILE))
    header = make_header(police)
    wire = NET.seal(header, keys)
    claimed = dataclasses.replace(header, signing_key_id=ngo.signing_key_id)  # still producer_org = police
    forged = rebuild(claimed.encode(), sections_of(wire), ngo.private_key)
    with pytest.raises(BadSignatureError, match=f"belongs to {NGO}, not to the producer {POLICE}"):
        NET.verifier.verify(forged)


def test_another_org_taking_a_section_as_its_own_cannot_get_it_opened():
    police, ngo = NET.orgs[POLICE], NET.orgs[NGO]
    keys = section_keys((ROUTING, CASE_FILE))
    header = make_header(police)
    wire = NET.seal(header, keys)
    taken = dataclasses.replace(header, producer_org=NGO, signing_key_id=ngo.signing_key_id)
    verified = NET.verifier.verify(rebuild(taken.encode(), sections_of(wire), ngo.private_key))
    assert verified.header.producer_org == NGO
    assert _open_everything(verified, keys) == {ROUTING: TamperedSectionError, CASE_FILE: TamperedSectionError}


def test_an_unknown_signing_key_is_rejected():
    stranger = SyntheticOrg.create("ext-unknown-01")
    wire = Sealer(stranger.signer).seal(make_header(stranger), {ROUTING: (new_data_key(), b"x")})
    with pytest.raises(UnknownKeyError, match=f"signing key {stranger.signing_key_id} is not in the directory"):
        NET.verifier.verify(wire)
    police = NET.orgs[POLICE]
    header = make_header(police, signing_key_id="sig-pol-mdd-01-revoked")
    forged = rebuild(header.encode(), sections_of(wire), police.private_key)
    with pytest.raises(UnknownKeyError):
        NET.verifier.verify(forged)
    # the same key known to the directory under the stranger's org: now it verifies
    resolver = DictResolver(NET.orgs.values())
    resolver.add(stranger.signing_key_id, stranger.org_id, stranger.private_key.public_key())
    assert Verifier(resolver, workers=1).verify(wire).header.producer_org == "ext-unknown-01"


# -- data keys: only the holder of the released key opens ----------------------------------------------------


def test_a_data_key_that_was_not_released_does_not_open_the_case_file():
    keys = section_keys((ROUTING, CASE_FILE))
    verified = NET.verifier.verify(NET.seal(make_header(NET.orgs[POLICE]), keys))
    right = keys[CASE_FILE]
    opener = Opener()
    with pytest.raises(UnknownKeyError):
        opener.open(verified, CASE_FILE, new_data_key())
    with pytest.raises(UnknownKeyError):
        opener.open(verified, CASE_FILE, keys[ROUTING])
    guessed = DataKey(right.key_id, os.urandom(32))  # the id is cleartext on the wire; the bytes are not
    with pytest.raises(TamperedSectionError) as caught:
        opener.open(verified, CASE_FILE, guessed)
    _assert_no_plaintext(caught.value)
    assert opener.open(verified, CASE_FILE, right) == PLAINTEXTS[CASE_FILE]
    # the opener's cache now holds the right key under that id: it must not serve it for other bytes
    with pytest.raises(TamperedSectionError):
        opener.open(verified, CASE_FILE, guessed)
    assert opener.open(verified, CASE_FILE, right) == PLAINTEXTS[CASE_FILE]


def test_opening_never_returns_partial_plaintext():
    """Even a caller that skipped verification gets all or nothing from AES-GCM."""
    keys = section_keys((CASE_FILE,))
    verified = NET.verifier.verify(NET.seal(make_header(NET.orgs[POLICE]), keys))
    (section,) = verified.sections
    for ciphertext in (section.ciphertext[:-1], section.ciphertext[:fmt.TAG_BYTES],
                       flip(section.ciphertext, 0), flip(section.ciphertext, len(section.ciphertext) - 1)):
        unverified = dataclasses.replace(verified, sections=(dataclasses.replace(section, ciphertext=ciphertext),))
        with pytest.raises(TamperedSectionError):
            Opener().open(unverified, CASE_FILE, keys[CASE_FILE])
    other_ad = VerifiedSection(section.kind, section.key_id, section.nonce, section.ciphertext,
                               section.associated_data + b"\x00")
    with pytest.raises(TamperedSectionError):
        Opener().open(dataclasses.replace(verified, sections=(other_ad,)), CASE_FILE, keys[CASE_FILE])


@pytest.fixture
def files(tmp_path: Path) -> Iterator[VaultFiles]:
    files = vault_files(tmp_path)
    yield files
    files.engine.dispose()


def _subject_envelope(vault: KeyVault, subject: str) -> tuple[bytes, dict[SectionKind, DataKey]]:
    vault.ensure_subject(subject)
    keys = {ROUTING: vault.current_key(subject, DataCategory.ROUTING),
            CASE_FILE: vault.current_key(subject, DataCategory.CASE_FILE)}
    return NET.seal(make_header(NET.orgs[POLICE]), keys), keys


def test_only_the_org_the_case_file_key_was_released_to_can_open_it(files):
    vault = files.vault()
    wire, keys = _subject_envelope(vault, "subj-synthetic-001")
    ngo, shelter = NET.orgs[NGO], NET.orgs[SHELTER]
    released = release_key(vault, keys[CASE_FILE].key_id, ngo.org_id, ngo.kem_key_id,
                           ngo.kem_private_key.public_key(), "shelter_placement")
    delivered = ReleasedKey.from_bytes(released.to_bytes())
    verified = NET.verifier.verify(wire)

    with pytest.raises(WrongRecipientError):  # the shelter, as itself
        open_released_key(delivered, shelter.org_id, shelter.kem_key_id, shelter.kem_private_key)
    with pytest.raises(TamperedSectionError):  # the shelter, claiming to be the NGO
        open_released_key(delivered, ngo.org_id, ngo.kem_key_id, shelter.kem_private_key)

    key = open_released_key(delivered, ngo.org_id, ngo.kem_key_id, ngo.kem_private_key)
    assert key == keys[CASE_FILE]
    assert Opener().open(verified, CASE_FILE, key) == PLAINTEXTS[CASE_FILE]
    with pytest.raises(UnknownKeyError):  # the case-file key opens nothing else
        Opener().open(verified, ROUTING, key)


# -- crypto-shredding --------------------------------------------------------------------------------------


def test_after_shredding_nothing_opens_and_the_audit_hash_is_unchanged(files):
    vault = files.vault()
    subject = "subj-synthetic-002"
    wire, keys = _subject_envelope(vault, subject)
    bystander_wire, bystander_keys = _subject_envelope(vault, "subj-synthetic-003")
    verified = NET.verifier.verify(wire)
    recorded_hash, recorded_bytes = verified.canonical_hash(), verified.canonical_bytes()
    opener = Opener()
    for kind in keys:  # an opener that has used the keys: its cipher cache holds them
        assert opener.open(verified, kind, vault.key(keys[kind].key_id)) == PLAINTEXTS[kind]
    cached = opener.ciphers.cipher(keys[CASE_FILE].key_id, keys[CASE_FILE].key)
    assert opener.ciphers.cipher(keys[CASE_FILE].key_id, keys[CASE_FILE].key) is cached

    vault.shred(subject)
    opener.ciphers.forget({key.key_id for key in keys.values()})

    assert opener.ciphers.cipher(keys[CASE_FILE].key_id, keys[CASE_FILE].key) is not cached
    for any_vault in (vault, files.vault()):
        for kind, key in keys.items():
            with pytest.raises(ShreddedSubjectError):
                any_vault.key(key.key_id)
            with pytest.raises(ShreddedSubjectError):
                any_vault.current_key(subject, DataCategory(kind.name.lower()))
    ngo = NET.orgs[NGO]
    with pytest.raises(ShreddedSubjectError):
        release_key(vault, keys[CASE_FILE].key_id, ngo.org_id, ngo.kem_key_id, ngo.kem_private_key.public_key(),
                    "shelter_placement")

    # the unchanged wire still verifies (the signature is over ciphertext) and hashes as before
    again = Verifier(DictResolver(NET.orgs.values()), workers=1).verify(wire)
    assert again.canonical_hash() == recorded_hash
    assert again.canonical_bytes() == recorded_bytes
    assert fmt.canonical_hash(again.signing_input, again.signature) == recorded_hash
    # other subjects are untouched
    bystander = NET.verifier.verify(bystander_wire)
    for kind, key in bystander_keys.items():
        assert Opener().open(bystander, kind, vault.key(key.key_id)) == PLAINTEXTS[kind]


# -- versions and garbage ----------------------------------------------------------------------------------


def _signed_variant(wire: bytes, *, header_version: int = 1, kinds: tuple[int, ...] | None = None,
                    format_version: int = 1) -> bytes:
    police = NET.orgs[POLICE]
    header = envelope_pb2.EnvelopeHeader()
    header.ParseFromString(header_bytes_of(wire))
    header.format_version = header_version
    sections = sections_of(wire)
    for section, kind in zip(sections, kinds or [s.kind for s in sections], strict=True):
        section.kind = kind  # type: ignore[assignment]
    return rebuild(header.SerializeToString(deterministic=True), sections, police.private_key,
                   format_version=format_version)


def test_unsupported_versions_and_kinds_are_rejected_even_when_properly_signed():
    keys = section_keys((ROUTING, CASE_FILE))
    wire = NET.seal(make_header(NET.orgs[POLICE]), keys)
    assert NET.verifier.verify(_signed_variant(wire)).header == NET.verifier.verify(wire).header
    cases = [
        (_signed_variant(wire, format_version=2), UnsupportedVersionError, r"^envelope\.format_version: 2 "),
        (_signed_variant(wire, header_version=2), UnsupportedVersionError, r"^header\.format_version: 2 "),
        (_signed_variant(wire, kinds=(1, 3)), UnsupportedVersionError, r"^envelope\.sections\[1\]\.kind: .* 3 "),
        (_signed_variant(wire, format_version=0), MalformedEnvelopeError, r"^envelope\.format_version: missing"),
        (_signed_variant(wire, header_version=0), MalformedEnvelopeError, r"^header\.format_version: missing"),
        (_signed_variant(wire, kinds=(0, 2)), MalformedEnvelopeError, r"^envelope\.sections\[0\]\.kind: missing"),
        (_signed_variant(wire, kinds=(2, 1)), MalformedEnvelopeError, r"^envelope\.sections: .*ascending"),
        (_signed_variant(wire, kinds=(1, 1)), MalformedEnvelopeError, r"^envelope\.sections: .*one per kind"),
    ]
    for variant, error, message in cases:
        with pytest.raises(error, match=message) as caught:
            NET.verifier.verify(variant)
        _assert_no_plaintext(caught.value)


def test_structural_problems_name_the_field():
    police = NET.orgs[POLICE]
    wire = NET.seal(make_header(police), section_keys((ROUTING, CASE_FILE)))
    header_bytes = header_bytes_of(wire)
    routing, case_file = sections_of(wire)
    three = rebuild(header_bytes, [routing, case_file, case_file], police.private_key)
    none = rebuild(header_bytes, [], police.private_key)
    short_nonce = envelope_pb2.SealedSection()
    short_nonce.CopyFrom(routing)
    short_nonce.nonce = routing.nonce[:8]
    short_ct = envelope_pb2.SealedSection()
    short_ct.CopyFrom(routing)
    short_ct.ciphertext = routing.ciphertext[:fmt.TAG_BYTES - 1]
    no_key = envelope_pb2.SealedSection()
    no_key.CopyFrom(routing)
    no_key.key_id = ""
    envelope = envelope_pb2.Envelope()
    envelope.ParseFromString(wire)
    envelope.signature = envelope.signature[:63]
    short_signature = envelope.SerializeToString()
    envelope.ParseFromString(wire)
    envelope.header_digest = envelope.header_digest[:31]
    short_digest = envelope.SerializeToString()
    for variant, field in [(three, "sections"), (none, "sections"),
                           (rebuild(header_bytes, [short_nonce], police.private_key), r"sections\[0\]\.nonce"),
                           (rebuild(header_bytes, [short_ct], police.private_key), r"sections\[0\]\.ciphertext"),
                           (rebuild(header_bytes, [no_key], police.private_key), r"sections\[0\]\.key_id"),
                           (short_signature, "signature"), (short_digest, "header_digest")]:
        with pytest.raises(MalformedEnvelopeError, match=rf"^envelope\.{field}: "):
            NET.verifier.verify(variant)


@pytest.mark.parametrize("garbage", [b"", b"\x00", b"not an envelope", b"\xff" * 64, b"\x08\x01",
                                     b'{"format_version": 1}', os.urandom(16) + b"\x00"])
def test_garbage_is_malformed(garbage):
    with pytest.raises(MalformedEnvelopeError):
        NET.verifier.verify(garbage)


@settings(max_examples=300, deadline=None)
@given(garbage=st.binary(max_size=600))
def test_random_bytes_never_verify_and_never_raise_anything_else(garbage):
    with pytest.raises((MalformedEnvelopeError, UnsupportedVersionError)):
        NET.verifier.verify(garbage)
