"""Conversions between intake's domain records and the proto messages of its API and events."""

from __future__ import annotations

from google.protobuf.timestamp_pb2 import Timestamp

from services.core.generated.referralnet.consent.v1 import consent_pb2
from services.intake.domain.consent import Consent, ConsentScope


def timestamp(micros: int) -> Timestamp:
    """A Timestamp of ``micros`` Unix microseconds."""
    stamp = Timestamp()
    stamp.FromMicroseconds(micros)
    return stamp


def consent_of(grant: consent_pb2.ConsentGrant, consent_id: str, subject_id: str, recorded_by_org: str,
               recorded_at_micros: int) -> Consent:
    """The domain Consent a (validated) grant becomes when recorded."""
    recipient = grant.recipient
    by_role = recipient.WhichOneof("recipient") == "role"
    scope = ConsentScope(
        recipient_role=recipient.role if by_role else None,
        recipient_org=None if by_role else recipient.org_id,
        purposes=frozenset(grant.purposes),
        categories=frozenset(grant.categories),
    )
    return Consent(consent_id=consent_id, subject_id=subject_id, scope=scope, given_by=grant.given_by,
                   expires_at_micros=grant.expires_at.ToMicroseconds(), recorded_by_org=recorded_by_org,
                   recorded_at_micros=recorded_at_micros)


def grant_of(consent: Consent) -> consent_pb2.ConsentGrant:
    """The ConsentGrant of a recorded consent (purposes and categories in their enum order)."""
    scope = consent.scope
    recipient = (consent_pb2.ConsentRecipient(role=scope.recipient_role) if scope.recipient_role is not None
                 else consent_pb2.ConsentRecipient(org_id=scope.recipient_org))
    return consent_pb2.ConsentGrant(recipient=recipient, purposes=sorted(scope.purposes),
                                    categories=sorted(scope.categories), given_by=consent.given_by,
                                    expires_at=timestamp(consent.expires_at_micros))


def consent_message(consent: Consent) -> consent_pb2.Consent:
    """The Consent message of the API (GetSubjectConsent, RecordConsent, RevokeConsent)."""
    message = consent_pb2.Consent(consent_id=consent.consent_id, subject_id=consent.subject_id,
                                  grant=grant_of(consent), recorded_by_org=consent.recorded_by_org,
                                  recorded_at=timestamp(consent.recorded_at_micros))
    if consent.revoked_at_micros is not None:
        message.revoked_at.CopyFrom(timestamp(consent.revoked_at_micros))
        message.revoked_by_org = consent.revoked_by_org or ""
    return message
