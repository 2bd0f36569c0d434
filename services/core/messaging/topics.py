"""Topic names: one versioned events topic per producing service, one dead-letter topic per consumer."""

from __future__ import annotations

SERVICES = ("intake", "referral", "audit", "notify")
CHECKPOINT_TOPIC = "referralnet.audit.checkpoints.v1"


def events_topic(service: str) -> str:
    """The topic a service publishes its events to, e.g. ``referralnet.intake.events.v1``."""
    return f"referralnet.{service}.events.v1"


def dead_letter_topic(consumer: str) -> str:
    """A consumer's dead-letter topic, e.g. ``referralnet.referral-worker.dlq.v1``."""
    return f"referralnet.{consumer}.dlq.v1"
