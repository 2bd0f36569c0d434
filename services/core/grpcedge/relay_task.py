"""The outbox relay as an edge background task: a daemon thread publishing the service's outbox to Kafka.

The edge starts it with the gRPC server (unless ``OUTBOX_RELAY=off``) and stops it after the server has
stopped. Servicers call ``wake()`` right after a commit, so an appended event goes out at once instead of
at the next idle poll (0.1 s by default). Rows committed after the last round stay in the outbox and are
published by the next relay to run: the outbox, not this thread, is what makes delivery at least once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence

import sqlalchemy as sa

from services.core.messaging.producer import ProducerFactory, kafka_producer_factory
from services.core.messaging.relay import OutboxRelay
from services.core.messaging.security import kafka_security_from_env

_LOG = logging.getLogger(__name__)

EDGE_IDLE_SLEEP_S = 0.1


class RelayTask:
    """Runs ``OutboxRelay(engine, producer).run(...)`` in a daemon thread; ``wake()`` makes it poll now."""

    def __init__(self, engine: sa.Engine, producer: ProducerFactory | str | Sequence[str], *,
                 idle_sleep_s: float = EDGE_IDLE_SLEEP_S, max_backoff_s: float = 30.0,
                 batch_size: int = 1000, close_timeout_s: float = 10.0, name: str = "outbox-relay",
                 kafka_options: Mapping[str, object] | None = None) -> None:
        """``producer``: Kafka bootstrap servers (``"h:p,h:p"`` or a list) or a factory of producers.

        With bootstrap servers, the producer also gets ``kafka_options`` (TLS...), by default the environment's
        ``KAFKA_SECURITY_PROTOCOL``/``KAFKA_SSL_*`` (services/core/messaging/security.py, which raises
        ``KafkaSecurityError``, a ValueError naming the variable, when they are inconsistent).
        """
        if not callable(producer):
            servers = producer if isinstance(producer, str) else ",".join(producer)
            options = kafka_security_from_env() if kafka_options is None else kafka_options
            producer = kafka_producer_factory(servers, **options)
        self._relay = OutboxRelay(engine, producer, batch_size=batch_size)
        self._idle_sleep_s = idle_sleep_s
        self._max_backoff_s = max_backoff_s
        self._close_timeout_s = close_timeout_s
        self._name = name
        self._stop = threading.Event()
        self._wakeup = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start relaying in a daemon thread (once)."""
        if self._thread is not None:
            raise RuntimeError("the relay task was already started")
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Make the relay poll the outbox now (cheap; call it after every commit that appended events)."""
        self._wakeup.set()

    def stop(self, timeout: float) -> None:
        """Stop after the round in progress and close the producer; wait up to ``timeout`` seconds for it."""
        self._stop.set()
        self._wakeup.set()
        if self._thread is None:
            return
        self._thread.join(timeout)
        if self._thread.is_alive():
            _LOG.warning("outbox relay still finishing a round after %.1fs; leaving it (its rows stay pending)",
                         timeout)

    @property
    def running(self) -> bool:
        """Whether the relay thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        _LOG.info("outbox relay started")
        try:
            self._relay.run(self._stop, idle_sleep_s=self._idle_sleep_s, max_backoff_s=self._max_backoff_s,
                            wakeup=self._wakeup)
        except BaseException as exc:  # only a bug gets here (rounds catch their own errors); its text is withheld
            _LOG.error("outbox relay stopped by an unexpected %s", type(exc).__name__)
        else:
            _LOG.info("outbox relay stopped")
        finally:
            self._relay.close(timeout_s=self._close_timeout_s)
