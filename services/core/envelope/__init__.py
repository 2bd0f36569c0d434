"""The secure envelope: how an event crosses Kafka (cleartext header, sealed sections, signature).

Producers seal with :class:`Sealer`; consumers verify with :class:`Verifier` (one, or a batch) and open
the sections they hold keys for with :class:`Opener`. docs/envelope-format.md gives every byte.
"""

from services.core.envelope.ciphers import CipherCache
from services.core.envelope.envelope import EnvelopeSigner, SealedEvent, Sealer, parse_envelope
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
from services.core.envelope.header import EventHeader, new_event_id, now_micros
from services.core.envelope.verification import Opener, SigningKeyResolver, VerifiedEnvelope, Verifier

__all__ = [
    "BadSignatureError", "CipherCache", "EnvelopeError", "EnvelopeSigner", "EventHeader", "MalformedEnvelopeError",
    "Opener", "SealedEvent", "Sealer", "SectionKind", "ShreddedSubjectError", "SigningKeyResolver",
    "TamperedHeaderError", "TamperedSectionError", "UnknownKeyError", "UnsupportedVersionError",
    "VerifiedEnvelope", "Verifier", "WrongRecipientError", "new_event_id", "now_micros", "parse_envelope",
]
