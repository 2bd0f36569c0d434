"""The compliance checks of the audit ledger (docs/adr/0012, "Consent and custody ledger, compliance").

Pure: no I/O and no clock. The audit edge's ``ComplianceReport`` and the auditor's CLI feed the same
checker with what they read, so both apply one set of rules:

- ``observe``: a verified event and its decoded routing payload (an intake, referral or notify event message;
  None when the payload could not be read, so its stream sequence still counts). It records consents
  (ConsentRecorded, ConsentOverrideRecorded, ConsentRevoked), disclosures (HandoffOffered: routing facts
  to a provider; KeyReleased: a subject's key to an organisation) and minors' referrals, and tracks each
  stream's sequences per (producer_org, stream_id), and erasures (SubjectErased). Notify's
  NoticeUndeliverable discloses nothing and names no subject: it counts as checked and in its stream's
  sequence (``delivery-<id>``), nothing more.
- ``observe_rejected``: a record that did not verify or decode (a violation named by its reason).
- ``observe_dead_letter``: a record some consumer dead-lettered (listed, so nothing is lost silently).
- ``observe_violation``: a finding made elsewhere (the CLI's ``checkpoint_inconsistent``).

Coverage is decided when ``result`` is asked for, from the instants the events carry (recorded, revoked,
expiry, offered, released), never from the order the checker saw them in: intake's and referral's topics
interleave differently for every reader. "Covered" is intake's own definition
(:func:`services.intake.domain.consent.covering`): a consent recorded by then, not revoked by then, not
expired then (expiry is exclusive: a consent expiring at T covers nothing at T), naming the recipient's
org or its role, the purpose and the data category. Offers disclose ``DATA_CATEGORY_ROUTING`` for
``PURPOSE_SERVICE_DELIVERY``; releases their own purpose and category. A minor's referral needs a consent
in force given by a guardian or the child-protection authority, or a coordinator's override (intake's
:func:`~services.intake.domain.consent.minor_may_be_referred`).

An erased subject is checked like any other (crypto-shredding leaves its envelopes' hashes and signatures
intact, so they still verify); a KeyReleased after its subject's SubjectErased is ``release_after_erasure``.
"After" is by position on the subject's stream (both are intake's, on ``subject-<id>``), which intake
decides in one unit of work per event, so it holds whatever the clocks said.

Filters (``result``): a subject keeps what is attributed to it (events by their payload's ``subject_id``);
a period ``[from_us, to_us)`` keeps findings and disclosures by the instant they happened. A rejected
record (its claimed time is not trusted) or a dead letter without a verified event carries no instant:
it is in every report that is not filtered by subject, so no period can hide it.

Memory grows with the events seen (each stream's sequences and each event's instant are kept, to name
both events of a duplicate and to count events per filter): fine for the network's volumes, roughly
100 bytes per event.
"""

from __future__ import annotations

import dataclasses
import sys
from array import array
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from google.protobuf.message import Message

from services.core.envelope import EventHeader
from services.core.generated.referralnet.common.v1.vocabulary_pb2 import OrgRole
from services.core.generated.referralnet.consent.v1.consent_pb2 import (
    DATA_CATEGORY_ROUTING,
    PURPOSE_SERVICE_DELIVERY,
    DataCategory,
    Purpose,
)
from services.core.generated.referralnet.intake.v1 import events_pb2 as intake
from services.core.generated.referralnet.referral.v1 import events_pb2 as referral
from services.core.identity.directory import Directory
from services.intake.domain.consent import Consent, ConsentScope, covering, minor_may_be_referred

RELEASE_WITHOUT_CONSENT = "release_without_consent"
RELEASE_AFTER_ERASURE = "release_after_erasure"
OFFER_WITHOUT_CONSENT = "offer_without_consent"
MINOR_WITHOUT_CONSENT = "minor_without_consent"
SEQUENCE_GAP = "sequence_gap"
SEQUENCE_DUPLICATE = "sequence_duplicate"
DEAD_LETTERED = "dead_lettered"
CHECKPOINT_INCONSISTENT = "checkpoint_inconsistent"
BAD_SIGNATURE = "bad_signature"
"""Check names (audit.proto's ``Violation.check``); a rejected record's check is its error's reason."""

OFFER = "offer"
KEY_RELEASE = "key_release"
"""Disclosure kinds (audit.proto's ``Disclosure.kind``)."""

_UNSPECIFIED_ROLE = OrgRole.ORG_ROLE_UNSPECIFIED


@dataclass(frozen=True)
class Violation:
    """What a check found wrong, with the events that show it (audit.proto ``Violation``)."""

    check: str
    detail: str
    event_ids: tuple[str, ...] = ()
    subject_id: str = ""


@dataclass(frozen=True)
class Disclosure:
    """A custody fact: who received what, when, under which consent (audit.proto ``Disclosure``).

    ``purpose`` and ``category`` are the enum values' words (``service_delivery``, ``routing``,
    ``case_file``); ``consent_id`` is the consent the producer's record names.
    """

    subject_id: str
    kind: str
    recipient_org: str
    purpose: str
    category: str
    consent_id: str
    at_us: int
    event_id: str


@dataclass(frozen=True)
class ComplianceResult:
    """The checks' result for one filter: events considered, violations found, disclosures made."""

    events_checked: int
    violations: list[Violation]
    disclosures: list[Disclosure]

    @property
    def clean(self) -> bool:
        """True when no check found anything."""
        return not self.violations


def purpose_word(purpose: int) -> str:
    """``PURPOSE_SERVICE_DELIVERY`` -> ``service_delivery`` (``unknown_<n>`` for a value not in the enum)."""
    return _enum_word(Purpose, purpose, "PURPOSE_")


def category_word(category: int) -> str:
    """``DATA_CATEGORY_CASE_FILE`` -> ``case_file`` (``unknown_<n>`` for a value not in the enum)."""
    return _enum_word(DataCategory, category, "DATA_CATEGORY_")


def _enum_word(enum: object, value: int, prefix: str) -> str:
    try:
        name: str = enum.Name(value)  # type: ignore[attr-defined]  # protobuf's enum wrapper
    except ValueError:
        return f"unknown_{value}"
    return name.removeprefix(prefix).lower()


def _instant(micros: int) -> str:
    """Unix microseconds as ISO 8601 UTC (for details people read)."""
    try:
        return datetime.fromtimestamp(micros / 1_000_000, UTC).isoformat(timespec="microseconds").replace(
            "+00:00", "Z")
    except (OverflowError, OSError, ValueError):
        return f"{micros}us"


@dataclass(frozen=True)
class _Finding:
    """A violation and when it happened (None: no trusted instant, in every period)."""

    violation: Violation
    at_us: int | None


@dataclass(frozen=True)
class _PendingDisclosure:
    """A disclosure whose coverage is decided at ``result`` time."""

    disclosure: Disclosure
    purpose: Purpose
    category: DataCategory
    check: str
    what: str  # "HandoffOffered hof-... to org", for the detail


@dataclass
class _Stream:
    """One stream's sequences: the first event seen at each, its instant, and the duplicates found."""

    subject_id: str
    seen: dict[int, tuple[str, int]] = field(default_factory=dict)
    duplicates: list[_Finding] = field(default_factory=list)


class ComplianceChecker:
    """Collects verified events, rejections and dead letters; ``result`` runs the checks (see the module)."""

    def __init__(self, org_roles: Mapping[str, OrgRole] | None = None) -> None:
        """``org_roles`` maps org id -> role (consents may name a role); use :meth:`for_directory`."""
        self._roles: Mapping[str, OrgRole] = dict(org_roles or {})
        self._consents: dict[str, dict[str, Consent]] = {}
        self._scopes: dict[ConsentScope, ConsentScope] = {}
        self._revocations: dict[str, tuple[int, str]] = {}
        self._disclosures: list[_PendingDisclosure] = []
        self._minors: list[tuple[str, str, str, int]] = []  # subject, event id, referral id, submitted at
        self._erasures: dict[tuple[str, str], tuple[int, str]] = {}  # (producer, stream) -> first erasure's seq, id
        self._releases: list[tuple[str, str, int, str, str, int]] = []  # producer, stream, seq, id, what, at
        self._streams: dict[tuple[str, str], _Stream] = {}
        self._findings: list[_Finding] = []
        self._instants: dict[str, array[int]] = {}

    @classmethod
    def for_directory(cls, directory: Directory) -> ComplianceChecker:
        """A checker resolving organisations' roles with the network directory."""
        return cls({org.org_id: org.role for org in directory.organisations})

    # -- observing ----------------------------------------------------------------------------------------

    def observe(self, header: EventHeader, message: Message | None, *, topic: str, partition: int,
                offset: int) -> None:
        """A verified event (its header is trusted) and its decoded routing payload, None if unreadable.

        Seeing the same event again (same event id at the same stream position) changes nothing.
        ``topic``/``partition``/``offset`` say where it was read (kept out of the checks: the same event
        read from a replay or from the ledger's store must count the same).
        """
        del topic, partition, offset  # part of the contract; the checks rely on the header alone
        subject_id = sys.intern(_subject_of(header, message))
        stream = self._streams.get((header.producer_org, header.stream_id))
        if stream is None:
            stream = _Stream(subject_id)
            self._streams[(header.producer_org, header.stream_id)] = stream
        earlier = stream.seen.get(header.stream_sequence)
        if earlier is not None:
            if earlier[0] != header.event_id:
                stream.duplicates.append(_duplicate(header, earlier[0], stream.subject_id or subject_id))
            return
        stream.seen[header.stream_sequence] = (header.event_id, header.occurred_at_unix_micros)
        instants = self._instants.get(subject_id)
        if instants is None:
            instants = self._instants[subject_id] = array("q")
        instants.append(header.occurred_at_unix_micros)
        if message is not None:
            self._record(header, message)

    def observe_rejected(self, reason: str, *, event_id: str | None, topic: str, partition: int, offset: int) -> None:
        """A record that did not verify or whose payload could not be decoded; ``reason`` becomes the check.

        ``event_id`` is the id it claims (or its verified id, for a payload that did not decode), None
        when it names none: the violation then names the record by topic, partition and offset.
        """
        where = f"{topic}[{partition}]@{offset}"
        named = f"event {event_id} ({where})" if event_id else f"the record at {where}"
        detail = f"{named} was rejected: {reason}"
        self._findings.append(_Finding(Violation(reason, detail, (event_id,) if event_id else ()), None))

    def observe_dead_letter(self, reason: str, *, event_id: str | None, consumer: str, topic: str, partition: int,
                            offset: int, subject_id: str = "", at_us: int | None = None) -> None:
        """A record consumer ``consumer`` dead-lettered with ``reason`` (read at ``topic``/``partition``/
        ``offset``: the dead-letter topic's coordinates, or the original ones when known).

        ``subject_id`` and ``at_us`` come from the dead record's envelope when it verified and decoded;
        leave them out otherwise (the dead letter is then in every report not filtered by subject).
        """
        where = f"{topic}[{partition}]@{offset}"
        named = f"event {event_id}" if event_id else "a record"
        detail = f"{named} ({where}) was dead-lettered by {consumer or 'an unnamed consumer'}: {reason}"
        violation = Violation(DEAD_LETTERED, detail, (event_id,) if event_id else (), subject_id)
        self._findings.append(_Finding(violation, at_us))

    def observe_violation(self, violation: Violation, at_us: int | None = None) -> None:
        """A finding made outside these checks (e.g. ``checkpoint_inconsistent`` by the auditor's CLI)."""
        self._findings.append(_Finding(violation, at_us))

    def _record(self, header: EventHeader, message: Message) -> None:
        if isinstance(message, intake.ConsentRecorded | intake.ConsentOverrideRecorded):
            self._consent_recorded(message)
        elif isinstance(message, intake.ConsentRevoked):
            earlier = self._revocations.get(message.consent_id)
            if earlier is None or message.revoked_at_unix_micros < earlier[0]:
                self._revocations[message.consent_id] = (message.revoked_at_unix_micros, message.revoked_by_org)
        elif isinstance(message, intake.KeyReleased):
            self._disclosures.append(_release(header, message))
            self._releases.append((header.producer_org, header.stream_id, header.stream_sequence, header.event_id,
                                   f"KeyReleased {message.release_id} to {message.recipient_org}",
                                   message.released_at_unix_micros))
        elif isinstance(message, intake.SubjectErased):
            stream = (header.producer_org, header.stream_id)
            earlier = self._erasures.get(stream)
            if earlier is None or header.stream_sequence < earlier[0]:
                self._erasures[stream] = (header.stream_sequence, header.event_id)
        elif isinstance(message, referral.HandoffOffered):
            self._disclosures.append(_offer(header, message))
        elif isinstance(message, intake.ReferralSubmitted) and message.minor:
            self._minors.append((message.subject_id, header.event_id, message.referral_id,
                                 message.submitted_at_unix_micros))

    def _consent_recorded(self, message: intake.ConsentRecorded | intake.ConsentOverrideRecorded) -> None:
        grant = message.grant
        recipient = grant.recipient.WhichOneof("recipient")
        try:
            scope = ConsentScope(
                recipient_role=grant.recipient.role if recipient == "role" else None,
                recipient_org=grant.recipient.org_id if recipient == "org_id" else None,
                purposes=frozenset(grant.purposes), categories=frozenset(grant.categories))
        except ValueError:  # names no recipient: it covers nothing, so it is not kept
            return
        scope = self._scopes.setdefault(scope, scope)  # a few scopes recur over a whole log: one object each
        consent = Consent(consent_id=message.consent_id, subject_id=sys.intern(message.subject_id), scope=scope,
                          given_by=grant.given_by, expires_at_micros=grant.expires_at.ToMicroseconds(),
                          recorded_by_org=sys.intern(message.recorded_by_org),
                          recorded_at_micros=message.recorded_at_unix_micros)
        self._consents.setdefault(message.subject_id, {}).setdefault(message.consent_id, consent)

    # -- the checks ---------------------------------------------------------------------------------------

    def result(self, subject_id: str | None = None, from_us: int | None = None,
               to_us: int | None = None) -> ComplianceResult:
        """Run every check; keep what concerns ``subject_id`` (when given) in ``[from_us, to_us)``."""
        def wanted(subject: str, at_us: int | None) -> bool:
            if subject_id is not None and subject != subject_id:
                return False
            if at_us is None:
                return True
            return (from_us is None or at_us >= from_us) and (to_us is None or at_us < to_us)

        findings = [*self._findings, *self._coverage_findings(), *self._minor_findings(), *self._sequence_findings(),
                    *self._erasure_findings()]
        violations = [finding.violation for finding in sorted(findings, key=_finding_order)
                      if wanted(finding.violation.subject_id, finding.at_us)]
        disclosures = sorted((pending.disclosure for pending in self._disclosures
                              if wanted(pending.disclosure.subject_id, pending.disclosure.at_us)),
                             key=lambda disclosure: (disclosure.at_us, disclosure.event_id))
        return ComplianceResult(self._events_checked(subject_id, from_us, to_us), violations, disclosures)

    def _events_checked(self, subject_id: str | None, from_us: int | None, to_us: int | None) -> int:
        groups: Iterable[array[int]] = (
            self._instants.values() if subject_id is None else [self._instants.get(subject_id, array("q"))])
        if from_us is None and to_us is None:
            return sum(len(instants) for instants in groups)
        low = -(2**63) if from_us is None else from_us
        high = 2**63 if to_us is None else to_us
        return sum(1 for instants in groups for at in instants if low <= at < high)

    def _consents_of(self, subject_id: str) -> list[Consent]:
        consents = []
        for recorded in self._consents.get(subject_id, {}).values():
            revoked = self._revocations.get(recorded.consent_id)
            consents.append(recorded if revoked is None else dataclasses.replace(
                recorded, revoked_at_micros=revoked[0], revoked_by_org=revoked[1]))
        return consents

    def _coverage_findings(self) -> Iterable[_Finding]:
        for pending in self._disclosures:
            disclosure = pending.disclosure
            consents = self._consents_of(disclosure.subject_id)
            role = self._roles.get(disclosure.recipient_org, _UNSPECIFIED_ROLE)
            if covering(consents, disclosure.recipient_org, role, pending.purpose, pending.category,
                        disclosure.at_us) is not None:
                continue
            named = next((c for c in consents if c.consent_id == disclosure.consent_id), None)
            detail = (f"{pending.what} at {_instant(disclosure.at_us)}: no consent of subject {disclosure.subject_id} "
                      f"covered {disclosure.category} for {disclosure.purpose} then; "
                      f"{_why_not(named, disclosure, role, pending)}")
            yield _Finding(Violation(pending.check, detail, (disclosure.event_id,), disclosure.subject_id),
                           disclosure.at_us)

    def _minor_findings(self) -> Iterable[_Finding]:
        for subject_id, event_id, referral_id, at in self._minors:
            if minor_may_be_referred((), self._consents_of(subject_id), at):
                continue
            detail = (f"ReferralSubmitted {referral_id} of a minor at {_instant(at)}: no consent in force was given "
                      f"by a guardian or the child-protection authority, and no coordinator override")
            yield _Finding(Violation(MINOR_WITHOUT_CONSENT, detail, (event_id,), subject_id), at)

    def _erasure_findings(self) -> Iterable[_Finding]:
        for producer, stream_id, sequence, event_id, what, at in self._releases:
            erasure = self._erasures.get((producer, stream_id))
            if erasure is None or sequence < erasure[0]:
                continue
            subject_id = self._streams[(producer, stream_id)].subject_id
            detail = (f"{what} at {_instant(at)} (sequence {sequence} of stream {stream_id}): subject {subject_id} "
                      f"was erased before it (SubjectErased {erasure[1]}, sequence {erasure[0]})")
            yield _Finding(Violation(RELEASE_AFTER_ERASURE, detail, (erasure[1], event_id), subject_id), at)

    def _sequence_findings(self) -> Iterable[_Finding]:
        for (producer, stream_id), stream in self._streams.items():
            yield from stream.duplicates
            expected = 1
            previous: str | None = None
            for sequence in sorted(stream.seen):
                event_id, at = stream.seen[sequence]
                if sequence > expected:
                    missing = f"{expected}" if sequence == expected + 1 else f"{expected}..{sequence - 1}"
                    detail = (f"stream {stream_id} of {producer}: sequence {missing} never seen "
                              f"(next seen: {sequence}, event {event_id})")
                    ids = (previous, event_id) if previous else (event_id,)
                    yield _Finding(Violation(SEQUENCE_GAP, detail, ids, stream.subject_id), at)
                expected, previous = sequence + 1, event_id


def _subject_of(header: EventHeader, message: Message | None) -> str:
    """The subject an event concerns: its payload's ``subject_id``, else the one its stream names."""
    subject = getattr(message, "subject_id", "") if message is not None else ""
    if subject:
        return str(subject)
    if header.stream_id.startswith("subject-"):
        return header.stream_id.removeprefix("subject-")
    return ""


def _duplicate(header: EventHeader, first_event_id: str, subject_id: str) -> _Finding:
    detail = (f"stream {header.stream_id} of {header.producer_org}: sequence {header.stream_sequence} is held by "
              f"two events, {first_event_id} and {header.event_id}")
    return _Finding(Violation(SEQUENCE_DUPLICATE, detail, (first_event_id, header.event_id), subject_id),
                    header.occurred_at_unix_micros)


def _release(header: EventHeader, message: intake.KeyReleased) -> _PendingDisclosure:
    disclosure = Disclosure(subject_id=message.subject_id, kind=KEY_RELEASE, recipient_org=message.recipient_org,
                            purpose=purpose_word(message.purpose), category=category_word(message.category),
                            consent_id=message.consent_id, at_us=message.released_at_unix_micros,
                            event_id=header.event_id)
    return _PendingDisclosure(disclosure, message.purpose, message.category, RELEASE_WITHOUT_CONSENT,
                              f"KeyReleased {message.release_id} to {message.recipient_org}")


def _offer(header: EventHeader, message: referral.HandoffOffered) -> _PendingDisclosure:
    disclosure = Disclosure(subject_id=message.subject_id, kind=OFFER, recipient_org=message.provider_org,
                            purpose=purpose_word(PURPOSE_SERVICE_DELIVERY),
                            category=category_word(DATA_CATEGORY_ROUTING), consent_id=message.consent_id,
                            at_us=message.offered_at_unix_micros,
                            event_id=header.event_id)
    return _PendingDisclosure(disclosure, PURPOSE_SERVICE_DELIVERY, DATA_CATEGORY_ROUTING, OFFER_WITHOUT_CONSENT,
                              f"HandoffOffered {message.handoff_id} to {message.provider_org}")


def _why_not(named: Consent | None, disclosure: Disclosure, role: OrgRole, pending: _PendingDisclosure) -> str:
    """Why the consent the record names does not cover it (ids, words and instants only)."""
    if not disclosure.consent_id:
        return "the record names no consent"
    if named is None:
        return f"the consent it names, {disclosure.consent_id}, was never recorded for this subject"
    at = disclosure.at_us
    if at < named.recorded_at_micros:
        reason = f"was recorded only at {_instant(named.recorded_at_micros)}"
    elif named.revoked_at_micros is not None and at >= named.revoked_at_micros:
        reason = f"was revoked at {_instant(named.revoked_at_micros)}"
    elif at >= named.expires_at_micros:
        reason = f"expired at {_instant(named.expires_at_micros)}"
    elif not named.scope.names(disclosure.recipient_org, role):
        reason = f"does not name {disclosure.recipient_org} or its role"
    elif pending.purpose not in named.scope.purposes:
        reason = f"does not allow the purpose {disclosure.purpose}"
    else:
        reason = f"does not allow the category {disclosure.category}"
    return f"the consent it names, {named.consent_id}, {reason}"


def _finding_order(finding: _Finding) -> tuple[int, str, tuple[str, ...], str]:
    violation = finding.violation
    return (-1 if finding.at_us is None else finding.at_us, violation.check, violation.event_ids, violation.detail)
