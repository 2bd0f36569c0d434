"""A consumer's poll that fails for want of a broker waits and polls again; any other error still ends it."""

from __future__ import annotations

import logging

import pytest
from kafka.errors import KafkaConnectionError, TopicAuthorizationFailedError

from services.core.runtime.outage import BrokerOutage


def test_a_retriable_error_is_ridden_out_and_logged_once_at_start_and_at_end(caplog: pytest.LogCaptureFixture):
    outage = BrokerOutage("referral-worker", pause_s=0.0)
    with caplog.at_level(logging.INFO, logger="services.core.runtime.outage"):
        outage.failed(KafkaConnectionError("111 ECONNREFUSED"))
        outage.failed(KafkaConnectionError("111 ECONNREFUSED"))
        assert outage.since is not None
        outage.answered()
        outage.answered()
    assert outage.since is None
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 2
    assert "Kafka unreachable" in messages[0] and "answers again" in messages[1]


def test_a_non_retriable_error_still_propagates():
    with pytest.raises(TopicAuthorizationFailedError):
        BrokerOutage("referral-worker", pause_s=0.0).failed(TopicAuthorizationFailedError())
