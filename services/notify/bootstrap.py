"""Wiring the notify service from its configuration: the network folder, the database, the transports.

The edge and the worker call :func:`build_application`; tests call it too, with a SQLite engine, their own
clock and a recording ``Transports``.
"""

from __future__ import annotations

import random as _random
from collections.abc import Callable, Mapping
from pathlib import Path

import sqlalchemy as sa

from services.core.envelope import now_micros
from services.core.eventstore import EventStore
from services.core.eventstore.signing import service_event_store
from services.core.identity.directory import Directory
from services.core.identity.keystore import load_directory
from services.core.identity.webhook_secrets import load_webhook_secrets
from services.core.keyvault.routing_keys import load_routing_keys
from services.notify.adapters.transports import EmailSender, NetworkTransports, Transports, WebhookSender
from services.notify.application.app import NotifyApplication
from services.notify.application.dispatch import DEFAULT_CONCURRENCY, SendAll, send_in_order
from services.notify.config import SERVICE, NotifySettings


def notify_event_store(network_dir: Path, directory: Directory) -> EventStore:
    """Notify's event store, signing as ``svc:notify`` with the key the directory lists for it."""
    return service_event_store(network_dir, SERVICE, directory)


def network_transports(settings: NotifySettings) -> NetworkTransports:
    """Webhooks over HTTPS and e-mail through ``NOTIFY_SMTP_*`` (none configured: e-mail fails for good)."""
    email = EmailSender(settings.smtp) if settings.smtp is not None else None
    return NetworkTransports(WebhookSender(timeout_seconds=settings.send_timeout_seconds), email)


def build_application(engine: sa.Engine, network_dir: Path, *, directory: Directory | None = None,
                      settings: NotifySettings | None = None, transports: Transports | None = None,
                      secrets: Mapping[str, bytes] | None = None, clock: Callable[[], int] = now_micros,
                      random: Callable[[], float] = _random.random, send_all: SendAll = send_in_order,
                      concurrency: int = DEFAULT_CONCURRENCY) -> NotifyApplication:
    """The application over ``engine`` (migrated) and the network folder's keys, directory and webhook secrets.

    ``secrets`` defaults to ``load_webhook_secrets(network_dir)``; ``transports`` to none (the edge does not
    send: only the worker, which passes ``network_transports(settings)``).
    """
    directory = directory or load_directory(network_dir)
    return NotifyApplication(
        engine, notify_event_store(network_dir, directory), load_routing_keys(network_dir), directory,
        settings=settings, transports=transports,
        secrets=load_webhook_secrets(network_dir) if secrets is None else secrets, clock=clock, random=random,
        send_all=send_all, concurrency=concurrency)
