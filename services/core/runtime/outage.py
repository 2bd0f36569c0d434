"""Riding out a Kafka outage in a polling greenthread.

kafka-python's ``poll()`` raises a retriable ``KafkaError`` (``KafkaConnectionError`` while every broker is
down or restarting, the group coordinator moving...). Let out of a nameko consumer's polling greenthread,
it ends that greenthread and nameko then stops the whole worker process, so a broker restart would need a
manual restart of every worker (found by tests/reliability: a full cluster restart stopped the referral,
notify and audit workers). A consumer hands such errors to :meth:`BrokerOutage.failed` instead, which waits
a little (the caller then polls again, however long the outage lasts), and calls :meth:`answered` after a
poll that worked. Non-retriable errors still propagate.
"""

from __future__ import annotations

import logging
import time

import eventlet
from kafka.errors import KafkaError

log = logging.getLogger(__name__)

PAUSE_S = 0.5  # between polls while no broker answers


class BrokerOutage:
    """The outage state of one consumer: when its polls began failing, logged once at start and at end."""

    def __init__(self, consumer_name: str, pause_s: float = PAUSE_S) -> None:
        self.consumer_name = consumer_name
        self.pause_s = pause_s
        self.since: float | None = None

    def failed(self, error: KafkaError) -> None:
        """A poll raised ``error``: re-raise it unless retriable, else note the outage and pause."""
        if not getattr(error, "retriable", False):
            raise error
        if self.since is None:
            self.since = time.monotonic()
            log.warning("consumer %s: Kafka unreachable (%s: %s); polling again until it answers",
                        self.consumer_name, type(error).__name__, error)
        eventlet.sleep(self.pause_s)

    def answered(self) -> None:
        """A poll worked: log the end of an outage, if there was one."""
        if self.since is not None:
            log.info("consumer %s: Kafka answers again after %.1fs", self.consumer_name, time.monotonic() - self.since)
            self.since = None
