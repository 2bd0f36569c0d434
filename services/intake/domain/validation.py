"""Checking intake's requests before anything is stored: InvalidArgument naming the field as the proto spells it.

Pure: the caller passes the instant (``now_micros``) and how to tell a known organisation (``is_org``).
Field paths are the proto's, with indexes: ``needs[1].service_type``, ``consents[0].expires_at``,
``case_file.given_names``. The messages never repeat the offending value (it may be personal data).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime

from google.protobuf.timestamp_pb2 import Timestamp

from services.core.application import InvalidArgument
from services.core.generated.referralnet.common.v1.vocabulary_pb2 import (
    ExploitationType,
    OrgRole,
    Region,
    ServiceType,
    Urgency,
)
from services.core.generated.referralnet.consent.v1.consent_pb2 import (
    ConsentGiver,
    ConsentGrant,
    DataCategory,
    Purpose,
)
from services.core.generated.referralnet.intake.v1.intake_pb2 import (
    CaseFile,
    EraseSubjectRequest,
    GetSubjectConsentRequest,
    RecordConsentRequest,
    ReleaseKeyRequest,
    RevokeConsentRequest,
    SubmitReferralRequest,
)
from services.intake.domain.consent import COORDINATOR_OVERRIDE
from services.intake.domain.ids import is_consent_id, is_subject_id

MAX_REQUEST_BYTES = 128 * 1024
MAX_NARRATIVE_CHARS = 20_000
MAX_CONSENTS = 20
MAX_LANGUAGES = 10
MIN_JUSTIFICATION_CHARS, MAX_JUSTIFICATION_CHARS = 20, 2_000
MAX_CONSENT_MICROS = 1_827 * 24 * 3600 * 1_000_000  # five years, leap days included
CASE_FILE_LIMITS = {  # field -> most characters
    "given_names": 200, "family_names": 200, "document_type": 32, "document_number": 64, "narrative":
    MAX_NARRATIVE_CHARS, "safe_contact": 1_000,
}
_IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9_-]{16,128}")
_NATIONALITY = re.compile(r"[A-Z]{2}")
_LANGUAGE = re.compile(r"[A-Za-z]{2,8}(?:-[A-Za-z0-9]{1,8}){0,4}")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_MAX_TIMESTAMP_SECONDS = 253_402_300_799  # 9999-12-31T23:59:59Z, the Timestamp type's upper bound

IsOrg = Callable[[str], bool]


def invalid(field: str, es: str, en: str) -> InvalidArgument:
    """An InvalidArgument for ``field`` (built here so every message has both languages)."""
    return InvalidArgument(field, es=es, en=en)


def _valid_enum(value: int, valid: Sequence[int]) -> bool:
    return value != 0 and value in valid


def _enum(value: int, valid: Sequence[int], field: str) -> None:
    if not _valid_enum(value, valid):
        raise invalid(field, "falta o no es un valor válido", "missing, or not a valid value")


def check_idempotency_key(key: str) -> None:
    """16-128 characters from ``[A-Za-z0-9_-]``."""
    if not _IDEMPOTENCY_KEY.fullmatch(key):
        raise invalid("idempotency_key", "debe tener de 16 a 128 caracteres entre A-Z, a-z, 0-9, '_' y '-'",
                      "must be 16 to 128 characters from A-Z, a-z, 0-9, '_' and '-'")


def check_subject_id(subject_id: str, *, required: bool = True, field: str = "subject_id") -> None:
    """A subject id intake assigned (``sub-`` and 32 hex digits); empty allowed when not ``required``."""
    if not subject_id and not required:
        return
    if not is_subject_id(subject_id):
        raise invalid(field, "no es un identificador de persona asignado por la red",
                      "is not a subject id assigned by the network")


def validate_submission(request: SubmitReferralRequest, now_micros: int, is_org: IsOrg) -> None:
    """Every field of a SubmitReferral request, in proto order; the first problem raises."""
    if request.ByteSize() > MAX_REQUEST_BYTES:
        raise invalid("request", f"supera el tamaño máximo de {MAX_REQUEST_BYTES} bytes",
                      f"is larger than the {MAX_REQUEST_BYTES} bytes allowed")
    check_idempotency_key(request.idempotency_key)
    check_subject_id(request.subject_id, required=False)
    if not request.HasField("case_file"):
        raise invalid("case_file", "es obligatorio", "is required")
    validate_case_file(request.case_file, now_micros)
    _validate_needs(request)
    _enum(request.region, Region.values(), "region")
    _enum(request.exploitation_type, ExploitationType.values(), "exploitation_type")
    if len(request.consents) > MAX_CONSENTS:
        raise invalid("consents", f"admite como máximo {MAX_CONSENTS} consentimientos",
                      f"takes at most {MAX_CONSENTS} consents")
    for index, grant in enumerate(request.consents):
        validate_grant(grant, f"consents[{index}]", now_micros, is_org, allow_override=False)


def _validate_needs(request: SubmitReferralRequest) -> None:
    if not request.needs:
        raise invalid("needs", "indique al menos una necesidad", "name at least one need")
    seen: set[int] = set()
    for index, need in enumerate(request.needs):
        _enum(need.service_type, ServiceType.values(), f"needs[{index}].service_type")
        if need.service_type in seen:
            raise invalid(f"needs[{index}].service_type", "este servicio ya figura en otra necesidad",
                          "this service type is already another need")
        seen.add(need.service_type)
        _enum(need.urgency, Urgency.values(), f"needs[{index}].urgency")


def validate_case_file(case_file: CaseFile, now_micros: int) -> None:
    """Bounded text fields, an ISO date of birth in the past, ISO 3166 nationality, BCP 47 languages."""
    for name, limit in CASE_FILE_LIMITS.items():
        if len(getattr(case_file, name)) > limit:
            raise invalid(f"case_file.{name}", f"admite como máximo {limit} caracteres",
                          f"takes at most {limit} characters")
    _validate_birth_date(case_file.date_of_birth, now_micros)
    if case_file.nationality and not _NATIONALITY.fullmatch(case_file.nationality):
        raise invalid("case_file.nationality", "debe ser un código ISO 3166-1 alfa-2 (por ejemplo PE)",
                      "must be an ISO 3166-1 alpha-2 code (e.g. PE)")
    if len(case_file.languages) > MAX_LANGUAGES:
        raise invalid("case_file.languages", f"admite como máximo {MAX_LANGUAGES} idiomas",
                      f"takes at most {MAX_LANGUAGES} languages")
    for index, language in enumerate(case_file.languages):
        if len(language) > 35 or not _LANGUAGE.fullmatch(language):
            raise invalid(f"case_file.languages[{index}]", "debe ser una etiqueta BCP 47 (por ejemplo qu)",
                          "must be a BCP 47 tag (e.g. qu)")


def _validate_birth_date(value: str, now_micros: int) -> None:
    if not value:
        return
    try:
        born = date.fromisoformat(value) if _DATE.fullmatch(value) else None
    except ValueError:
        born = None
    today = datetime.fromtimestamp(now_micros / 1_000_000, UTC).date()
    if born is None or not date(1900, 1, 1) <= born <= today:
        raise invalid("case_file.date_of_birth", "debe ser una fecha AAAA-MM-DD pasada, o quedar vacía",
                      "must be a past date YYYY-MM-DD, or empty")


def validate_grant(grant: ConsentGrant, path: str, now_micros: int, is_org: IsOrg, *, allow_override: bool) -> None:
    """A consent as given: one recipient, purposes, categories, the giver, an expiry within five years."""
    _validate_recipient(grant, path, is_org)
    for name, values, valid in (("purposes", grant.purposes, Purpose.values()),
                                ("categories", grant.categories, DataCategory.values())):
        if not values:
            raise invalid(f"{path}.{name}", "indique al menos uno", "name at least one")
        for index, value in enumerate(values):
            _enum(value, valid, f"{path}.{name}[{index}]")
            if list(values).index(value) != index:
                raise invalid(f"{path}.{name}[{index}]", "está repetido", "is repeated")
    _enum(grant.given_by, ConsentGiver.values(), f"{path}.given_by")
    if grant.given_by == COORDINATOR_OVERRIDE and not allow_override:
        raise invalid(f"{path}.given_by", "una excepción de la coordinación se registra con RecordConsent y su "
                      "justificación", "a coordinator override is recorded with RecordConsent and a justification")
    _validate_expiry(grant, f"{path}.expires_at", now_micros)


def _validate_recipient(grant: ConsentGrant, path: str, is_org: IsOrg) -> None:
    which = grant.recipient.WhichOneof("recipient") if grant.HasField("recipient") else None
    field = f"{path}.recipient"
    if which is None:
        raise invalid(field, "indique un rol o una organización", "name a role or an organisation")
    if which == "role" and not _valid_enum(grant.recipient.role, OrgRole.values()):
        raise invalid(field, "el rol no es válido", "the role is not valid")
    if which == "org_id" and not is_org(grant.recipient.org_id):
        raise invalid(field, "la organización no figura en el directorio de la red",
                      "the organisation is not in the network directory")


def _validate_expiry(grant: ConsentGrant, field: str, now_micros: int) -> None:
    if not grant.HasField("expires_at") or not _valid_timestamp(grant.expires_at):
        raise invalid(field, "es obligatorio", "is required")
    expires = grant.expires_at.ToMicroseconds()
    if expires <= now_micros:
        raise invalid(field, "debe estar en el futuro", "must be in the future")
    if expires - now_micros > MAX_CONSENT_MICROS:
        raise invalid(field, "puede estar como máximo cinco años en el futuro", "may be at most five years ahead")


def _valid_timestamp(stamp: Timestamp) -> bool:
    return 0 < stamp.seconds <= _MAX_TIMESTAMP_SECONDS and 0 <= stamp.nanos < 1_000_000_000


def validate_record_consent(request: RecordConsentRequest, now_micros: int, is_org: IsOrg) -> None:
    """The subject (empty only for an override), the grant, and a justification exactly for an override."""
    check_subject_id(request.subject_id, required=False)
    if not request.HasField("grant"):
        raise invalid("grant", "es obligatorio", "is required")
    validate_grant(request.grant, "grant", now_micros, is_org, allow_override=True)
    override = request.grant.given_by == COORDINATOR_OVERRIDE
    if not override and not request.subject_id:
        raise invalid("subject_id", "es obligatorio salvo para una excepción de la coordinación",
                      "is required unless this is a coordinator override")
    justification = request.override_justification.strip()
    if override and not MIN_JUSTIFICATION_CHARS <= len(justification) <= MAX_JUSTIFICATION_CHARS:
        raise invalid("override_justification",
                      f"una excepción necesita una justificación de {MIN_JUSTIFICATION_CHARS} a "
                      f"{MAX_JUSTIFICATION_CHARS} caracteres",
                      f"an override needs a justification of {MIN_JUSTIFICATION_CHARS} to "
                      f"{MAX_JUSTIFICATION_CHARS} characters")
    if not override and request.override_justification:
        raise invalid("override_justification", "solo se indica para una excepción de la coordinación",
                      "is only given for a coordinator override")


def validate_revoke_consent(request: RevokeConsentRequest) -> None:
    """A subject id and a consent id, both as intake assigned them."""
    check_subject_id(request.subject_id)
    if not is_consent_id(request.consent_id):
        raise invalid("consent_id", "no es un identificador de consentimiento asignado por la red",
                      "is not a consent id assigned by the network")


def validate_release(request: ReleaseKeyRequest) -> None:
    """A subject, a purpose and the case-file category (routing facts come through the referral API)."""
    check_subject_id(request.subject_id)
    _enum(request.purpose, Purpose.values(), "purpose")
    _enum(request.category, DataCategory.values(), "category")
    if request.category == DataCategory.DATA_CATEGORY_ROUTING:
        raise invalid("category", "los datos de derivación se consultan en el servicio de derivaciones, no con "
                      "una clave", "routing facts come through the referral API, not through a released key")


def validate_get_consent(request: GetSubjectConsentRequest) -> None:
    """A subject id as intake assigned it."""
    check_subject_id(request.subject_id)


def validate_erase(request: EraseSubjectRequest) -> None:
    """A subject id as intake assigned it."""
    check_subject_id(request.subject_id)
