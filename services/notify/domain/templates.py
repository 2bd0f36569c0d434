"""A notice in words, in Spanish (the default) or English, over ``NoticeFacts`` and nothing else.

Every line is a fixed phrase of the notice type and language, or one of the facts: the reference, the
referral, the service type and the department in words of the language, the deadline in Peru's time (UTC-5,
no daylight saving) and in ISO 8601 UTC, and where to act (the configured ``act_at`` and the RPC to call).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from services.core.generated.referralnet.common.v1.vocabulary_pb2 import Region, ServiceType
from services.core.generated.referralnet.notify.v1.notify_pb2 import NoticeType

if TYPE_CHECKING:
    from services.notify.domain.notices import NoticeFacts

LANGUAGES = ("es", "en")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _peru_zone() -> tzinfo:
    try:
        return ZoneInfo("America/Lima")
    except ZoneInfoNotFoundError:  # no tz database on the host: Peru has kept UTC-5 without DST since 1994
        return timezone(timedelta(hours=-5), "PET")


PERU = _peru_zone()


@dataclass(frozen=True)
class RenderedNotice:
    """A notice's e-mail subject and text (the text is also the webhook's ``text``)."""

    subject: str
    text: str


@dataclass(frozen=True)
class _Template:
    title: str  # the subject, before the service and reference
    lead: str  # what happened
    action: str  # what to do, with {act_at}


_SERVICES: dict[str, dict[int, str]] = {
    "es": {
        ServiceType.SERVICE_TYPE_SHELTER: "alojamiento (casa de acogida)",
        ServiceType.SERVICE_TYPE_LEGAL_AID: "asistencia legal",
        ServiceType.SERVICE_TYPE_PSYCHOSOCIAL: "atención psicosocial",
        ServiceType.SERVICE_TYPE_MEDICAL: "atención médica",
        ServiceType.SERVICE_TYPE_REPATRIATION: "repatriación",
        ServiceType.SERVICE_TYPE_FAMILY_REINTEGRATION: "reintegración familiar",
        ServiceType.SERVICE_TYPE_EDUCATION_VOCATIONAL: "educación y formación laboral",
        ServiceType.SERVICE_TYPE_INTERPRETATION: "interpretación",
        ServiceType.SERVICE_TYPE_CHILD_PROTECTION: "protección de niñas, niños y adolescentes",
    },
    "en": {
        ServiceType.SERVICE_TYPE_SHELTER: "shelter",
        ServiceType.SERVICE_TYPE_LEGAL_AID: "legal aid",
        ServiceType.SERVICE_TYPE_PSYCHOSOCIAL: "psychosocial care",
        ServiceType.SERVICE_TYPE_MEDICAL: "medical care",
        ServiceType.SERVICE_TYPE_REPATRIATION: "repatriation",
        ServiceType.SERVICE_TYPE_FAMILY_REINTEGRATION: "family reintegration",
        ServiceType.SERVICE_TYPE_EDUCATION_VOCATIONAL: "education and vocational training",
        ServiceType.SERVICE_TYPE_INTERPRETATION: "interpretation",
        ServiceType.SERVICE_TYPE_CHILD_PROTECTION: "child protection",
    },
}

# Department names are proper nouns, the same in both languages (with their Spanish accents).
_REGION_NAMES: dict[int, str] = {
    Region.REGION_AMAZONAS: "Amazonas",
    Region.REGION_ANCASH: "Áncash",
    Region.REGION_APURIMAC: "Apurímac",
    Region.REGION_AREQUIPA: "Arequipa",
    Region.REGION_AYACUCHO: "Ayacucho",
    Region.REGION_CAJAMARCA: "Cajamarca",
    Region.REGION_CALLAO: "Callao",
    Region.REGION_CUSCO: "Cusco",
    Region.REGION_HUANCAVELICA: "Huancavelica",
    Region.REGION_HUANUCO: "Huánuco",
    Region.REGION_ICA: "Ica",
    Region.REGION_JUNIN: "Junín",
    Region.REGION_LA_LIBERTAD: "La Libertad",
    Region.REGION_LAMBAYEQUE: "Lambayeque",
    Region.REGION_LIMA: "Lima",
    Region.REGION_LORETO: "Loreto",
    Region.REGION_MADRE_DE_DIOS: "Madre de Dios",
    Region.REGION_MOQUEGUA: "Moquegua",
    Region.REGION_PASCO: "Pasco",
    Region.REGION_PIURA: "Piura",
    Region.REGION_PUNO: "Puno",
    Region.REGION_SAN_MARTIN: "San Martín",
    Region.REGION_TACNA: "Tacna",
    Region.REGION_TUMBES: "Tumbes",
    Region.REGION_UCAYALI: "Ucayali",
}

_ANSWER_ES = "Acepte o rechace la oferta antes del plazo con AcceptHandoff o DeclineHandoff en {act_at}."
_ANSWER_EN = "Accept or decline the offer before the deadline with AcceptHandoff or DeclineHandoff at {act_at}."

_TEMPLATES: dict[str, dict[int, _Template]] = {
    "es": {
        NoticeType.NOTICE_TYPE_HANDOFF_OFFERED: _Template(
            "Oferta de derivación",
            "Su organización recibió una oferta de derivación que espera respuesta.",
            _ANSWER_ES,
        ),
        NoticeType.NOTICE_TYPE_OFFER_REMINDER: _Template(
            "Recordatorio: oferta de derivación sin respuesta",
            "Una oferta de derivación a su organización sigue sin respuesta y su plazo está por vencer.",
            _ANSWER_ES,
        ),
        NoticeType.NOTICE_TYPE_HANDOFF_EXPIRED: _Template(
            "Oferta de derivación vencida",
            "Una oferta de derivación a su organización venció sin respuesta y se ofreció al siguiente proveedor.",
            "Ya no puede aceptarse. Consulte sus derivaciones con ListHandoffs en {act_at}.",
        ),
        NoticeType.NOTICE_TYPE_REFERRAL_ESCALATED: _Template(
            "Derivación escalada",
            "Una necesidad de esta derivación no pudo ofrecerse a ningún proveedor: la coordinación debe actuar.",
            "Revise la derivación con GetReferral en {act_at}.",
        ),
        NoticeType.NOTICE_TYPE_CONSENT_REVOKED: _Template(
            "Consentimiento revocado",
            "Se revocó un consentimiento que cubría una derivación activa de su organización.",
            "Ya no podrá obtener la ficha del caso. Revise sus derivaciones con ListHandoffs en {act_at}.",
        ),
        NoticeType.NOTICE_TYPE_DELIVERY_FAILED: _Template(
            "Aviso no entregado",
            "Un aviso a otra organización no pudo entregarse después de todos los intentos.",
            "Siga la derivación con GetReferral en {act_at} y contacte a la organización por otro medio.",
        ),
    },
    "en": {
        NoticeType.NOTICE_TYPE_HANDOFF_OFFERED: _Template(
            "Handoff offer",
            "Your organisation has been offered a handoff that awaits your answer.",
            _ANSWER_EN,
        ),
        NoticeType.NOTICE_TYPE_OFFER_REMINDER: _Template(
            "Reminder: unanswered handoff offer",
            "A handoff offered to your organisation is still unanswered and its deadline is near.",
            _ANSWER_EN,
        ),
        NoticeType.NOTICE_TYPE_HANDOFF_EXPIRED: _Template(
            "Handoff offer expired",
            "A handoff offered to your organisation reached its deadline unanswered and went to the next provider.",
            "It can no longer be accepted. See your handoffs with ListHandoffs at {act_at}.",
        ),
        NoticeType.NOTICE_TYPE_REFERRAL_ESCALATED: _Template(
            "Referral escalated",
            "A need of this referral could not be offered to any provider: coordination must act.",
            "Review the referral with GetReferral at {act_at}.",
        ),
        NoticeType.NOTICE_TYPE_CONSENT_REVOKED: _Template(
            "Consent revoked",
            "A consent covering one of your organisation's active handoffs was revoked.",
            "The case file can no longer be obtained. Review your handoffs with ListHandoffs at {act_at}.",
        ),
        NoticeType.NOTICE_TYPE_DELIVERY_FAILED: _Template(
            "Notice undeliverable",
            "A notice to another organisation could not be delivered after every attempt.",
            "Follow the referral with GetReferral at {act_at} and reach the organisation another way.",
        ),
    },
}

_LABELS = {
    "es": {
        "reference": "Referencia",
        "referral": "Derivación",
        "service": "Servicio",
        "region": "Departamento",
        "deadline": "Plazo",
        "peru_time": "hora de Perú, UTC-5",
        "footer": "Este aviso solo lleva referencias: los datos del caso no salen de la red.",
    },
    "en": {
        "reference": "Reference",
        "referral": "Referral",
        "service": "Service",
        "region": "Department",
        "deadline": "Deadline",
        "peru_time": "Peru time, UTC-5",
        "footer": "This notice carries references only: case data never leaves the network.",
    },
}
_LOCAL_FORMAT = {"es": "%d/%m/%Y %H:%M", "en": "%Y-%m-%d %H:%M"}


def service_type_name(service_type: int, language: str) -> str:
    """The service type in words of ``language``; ValueError for 0 or an unknown number."""
    names = _SERVICES[_language(language)]
    if service_type not in names:
        msg = f"service_type: {service_type} is not a known service type"
        raise ValueError(msg)
    return names[service_type]


def region_name(region: int) -> str:
    """The department's name; ValueError for 0 or an unknown number."""
    if region not in _REGION_NAMES:
        msg = f"region: {region} is not a known department"
        raise ValueError(msg)
    return _REGION_NAMES[region]


def deadline_words(deadline_us: int, language: str) -> str:
    """``deadline_us`` in Peru's time and in ISO 8601 UTC: ``15/03/2026 14:30 (hora de Perú, UTC-5); ...Z``."""
    moment = _EPOCH + timedelta(microseconds=deadline_us)
    local = moment.astimezone(PERU).strftime(_LOCAL_FORMAT[_language(language)])
    return f"{local} ({_LABELS[language]['peru_time']}); {moment.strftime('%Y-%m-%dT%H:%M:%SZ')}"


def _language(language: str) -> str:
    if language not in LANGUAGES:
        msg = f"language: {language!r} is not one of {', '.join(LANGUAGES)}"
        raise ValueError(msg)
    return language


def render(facts: NoticeFacts, language: str, act_at: str) -> RenderedNotice:
    """The subject and text of ``facts`` in ``language`` (``es``/``en``); ValueError naming what cannot be said.

    An unset service type, department or deadline (0) leaves its line out; an unknown number, the UNSPECIFIED
    notice type or another language is a ValueError.
    """
    templates = _TEMPLATES[_language(language)]
    if facts.notice_type not in templates:
        msg = f"notice_type: {facts.notice_type} is not a notice type that can be sent"
        raise ValueError(msg)
    if not facts.reference:
        msg = "reference: a notice needs the handoff or referral it is about"
        raise ValueError(msg)
    for name, value in (("reference", facts.reference), ("referral_id", facts.referral_id), ("act_at", act_at)):
        if not value.isprintable():
            msg = f"{name}: {value!r} is not one printable line"
            raise ValueError(msg)
    if facts.deadline_us < 0:
        msg = f"deadline_us: {facts.deadline_us} is before 1970"
        raise ValueError(msg)
    template, labels = templates[facts.notice_type], _LABELS[language]
    service = service_type_name(facts.service_type, language) if facts.service_type else ""
    lines = [f"{labels['reference']}: {facts.reference}"]
    if facts.referral_id and facts.referral_id != facts.reference:
        lines.append(f"{labels['referral']}: {facts.referral_id}")
    if service:
        lines.append(f"{labels['service']}: {service}")
    if facts.region:
        lines.append(f"{labels['region']}: {region_name(facts.region)}")
    if facts.deadline_us:
        lines.append(f"{labels['deadline']}: {deadline_words(facts.deadline_us, language)}")
    text = "\n".join([template.lead, "", *lines, "", template.action.format(act_at=act_at), "", labels["footer"], ""])
    subject = f"ReferralNet: {template.title}" + (f": {service}" if service else "") + f" ({facts.reference})"
    return RenderedNotice(subject=subject, text=text)
