"""Calling an edge as an organisation: an mTLS channel with the org's client certificate, and the language header.

For partner integrations, tests, the demo and the benchmarks::

    channel = org_channel(network_dir, "pol-mdd-01", "127.0.0.1:50051", server_name="intake")
    stub = IntakeServiceStub(channel)
    stub.GetSubjectConsent(request, metadata=language_metadata("en"), timeout=5)

The server's certificate names the service (SAN DNS ``intake``, ``referral``...), so ``server_name`` is
checked against it whatever host or IP ``target`` uses; the network CA is the only trusted root.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import grpc

from services.core.grpcedge.interceptor import ACCEPT_LANGUAGE
from services.core.identity.keystore import load_org_tls

TARGET_NAME_OVERRIDE = "grpc.ssl_target_name_override"


def org_channel(network_dir: Path, org_id: str, target: str, *, server_name: str,
                options: Sequence[tuple[str, Any]] = ()) -> grpc.Channel:
    """A secure channel to ``target`` as ``org_id``, expecting the server certificate of ``server_name``."""
    tls = load_org_tls(network_dir, org_id)
    credentials = grpc.ssl_channel_credentials(
        root_certificates=tls.root_certificates, private_key=tls.private_key,
        certificate_chain=tls.certificate_chain)
    return grpc.secure_channel(target, credentials, options=[(TARGET_NAME_OVERRIDE, server_name), *options])


def language_metadata(language: str) -> tuple[tuple[str, str], ...]:
    """Call metadata asking for messages in ``language`` (``es`` or ``en``; anything else gets Spanish)."""
    return ((ACCEPT_LANGUAGE, language),)
