"""From a notice's facts to ``deliveries`` rows: one per channel and endpoint of each organisation told.

An organisation's endpoints and language come from the signed directory (``notify``, ``language``): a webhook
URL, an e-mail address, or both. Each delivery row is inserted at most once per (notice key, channel,
endpoint): the notice key is the causing event's id (``reminder:<handoff id>`` for a reminder), so a
redelivered event, or a second worker racing on a reminder, adds nothing. An organisation without endpoints
(or no longer in the directory) gets no notice; that is logged (ids only) and the use case goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

import uuid6

from services.core.generated.referralnet.common.v1.vocabulary_pb2 import ORG_ROLE_COORDINATOR
from services.core.generated.referralnet.notify.v1 import notify_pb2
from services.core.identity.directory import Directory, Organisation
from services.core.identity.errors import UnknownOrganisationError
from services.notify.adapters.repository import Delivery, NotifyRepository
from services.notify.domain.notices import NoticeFacts

log = logging.getLogger(__name__)

DELIVERY_PREFIX = "dlv-"
NOTICE_PREFIX = "ntc-"


def new_delivery_id() -> str:
    """A fresh delivery id: ``dlv-`` and a UUIDv7's hex digits (the webhook's ``X-Referralnet-Delivery``)."""
    return DELIVERY_PREFIX + uuid6.uuid7().hex


def new_notice_id() -> str:
    """A fresh notice id (``ntc-`` + UUIDv7 hex), shared by one notice's channels to one organisation."""
    return NOTICE_PREFIX + uuid6.uuid7().hex


def reminder_key(handoff_id: str) -> str:
    """The notice key of an offer's reminder: one reminder per handoff, ever."""
    return f"reminder:{handoff_id}"


def endpoints_of(org: Organisation) -> list[tuple[int, str]]:
    """(channel, endpoint) of each endpoint the directory lists for ``org``: webhook first, then e-mail."""
    found: list[tuple[int, str]] = []
    if org.notify is not None and org.notify.webhook_url:
        found.append((notify_pb2.CHANNEL_WEBHOOK, org.notify.webhook_url))
    if org.notify is not None and org.notify.email:
        found.append((notify_pb2.CHANNEL_EMAIL, org.notify.email))
    return found


def coordinators_for(directory: Directory, region: int) -> tuple[Organisation, ...]:
    """The coordinators serving ``region``; every coordinator when none does (or no region is known)."""
    everyone = directory.by_role(ORG_ROLE_COORDINATOR)
    serving = tuple(org for org in everyone if region and region in org.regions)
    return serving or everyone


class Planner:
    """Adds the deliveries of a notice, in the caller's session, with ids and times from ``clock``."""

    def __init__(self, directory: Directory, clock: Callable[[], int]) -> None:
        self._directory = directory
        self._clock = clock

    def to_org(self, repository: NotifyRepository, org_id: str, facts: NoticeFacts, notice_key: str) -> int:
        """The deliveries of ``facts`` to ``org_id``'s endpoints; how many rows were new."""
        try:
            org = self._directory.org(org_id)
        except UnknownOrganisationError:
            log.warning("notice %s: org %s is not in the directory; nothing to send", notice_key, org_id)
            return 0
        return self._to(repository, org, facts, notice_key)

    def to_orgs(self, repository: NotifyRepository, orgs: Iterable[Organisation], facts: NoticeFacts,
                notice_key: str) -> int:
        """The deliveries of ``facts`` to each of ``orgs``; how many rows were new."""
        return sum(self._to(repository, org, facts, notice_key) for org in orgs)

    def _to(self, repository: NotifyRepository, org: Organisation, facts: NoticeFacts, notice_key: str) -> int:
        endpoints = endpoints_of(org)
        if not endpoints:
            log.info("notice %s: org %s lists no notify endpoints; nothing to send", notice_key, org.org_id)
            return 0
        now, notice_id, added = self._clock(), new_notice_id(), 0
        for channel, endpoint in endpoints:
            delivery = Delivery(
                delivery_id=new_delivery_id(), notice_key=notice_key, channel=channel, endpoint=endpoint,
                org_id=org.org_id, notice_id=notice_id, language=org.language, notice_type=facts.notice_type,
                event_id=facts.event_id, reference=facts.reference, referral_id=facts.referral_id,
                service_type=facts.service_type, region=facts.region, deadline_us=facts.deadline_us,
                occurred_at_us=facts.occurred_at_us, next_attempt_at_us=now, created_at_us=now, updated_at_us=now)
            if repository.add_delivery(delivery):
                added += 1
            else:
                log.info("notice %s: channel %d of org %s has its delivery already", notice_key, channel, org.org_id)
        return added


def facts_of(delivery: Delivery) -> NoticeFacts:
    """The facts a delivery's notice is built from (all it stores of the notice)."""
    return NoticeFacts(notice_type=delivery.notice_type, event_id=delivery.event_id, reference=delivery.reference,
                       referral_id=delivery.referral_id, service_type=delivery.service_type, region=delivery.region,
                       deadline_us=delivery.deadline_us, occurred_at_us=delivery.occurred_at_us)
