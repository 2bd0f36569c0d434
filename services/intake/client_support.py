"""What a provider runs on its own side with a ReleaseKey answer: open the released key, verify, read the file.

Pure (no I/O): the provider passes its org id, its KEM key (id and private key) and the network directory it
loaded. Every envelope is verified against the directory and must come from intake before anything in it is
opened; one that does not verify raises the precise EnvelopeError rather than being skipped.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from services.core.envelope import BadSignatureError, Opener, SectionKind, Verifier
from services.core.generated.referralnet.intake.v1.intake_pb2 import CaseFile, ReleaseKeyResponse
from services.core.identity.directory import Directory
from services.core.identity.records import service_owner
from services.core.keyvault import ReleasedKey, open_released_key

INTAKE_PRODUCER = service_owner("intake")
CASE_FILE_EVENT = "ReferralSubmitted"


def open_case_files(response: ReleaseKeyResponse, org_id: str, kem_key_id: str, kem_private_key: X25519PrivateKey,
                    directory: Directory) -> list[CaseFile]:
    """The case files (one per ReferralSubmitted, oldest first) the released key opens.

    Raises WrongRecipientError / TamperedSectionError when the key was not released to this org and KEM
    key, the envelope errors when an envelope does not verify, and BadSignatureError when one was not
    produced by intake.
    """
    key = open_released_key(ReleasedKey.from_bytes(response.released_key), org_id, kem_key_id, kem_private_key)
    verifier, opener = Verifier(directory, workers=1), Opener()
    case_files = []
    try:
        for wire in response.envelopes:
            envelope = verifier.verify(wire)
            if envelope.header.producer_org != INTAKE_PRODUCER:
                msg = f"event {envelope.header.event_id} was produced by {envelope.header.producer_org}, not intake"
                raise BadSignatureError(msg)
            if envelope.header.event_type == CASE_FILE_EVENT:
                case_files.append(CaseFile.FromString(opener.open(envelope, SectionKind.CASE_FILE, key)))
    finally:
        verifier.close()
    return case_files
