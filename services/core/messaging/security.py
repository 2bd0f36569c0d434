"""Kafka client TLS from the environment, for the processes configured by variables (edges, the relay).

nameko workers take the same settings from their config (``KAFKA_CONSUMER_OPTIONS``/``KAFKA_PRODUCER_OPTIONS``,
services/core/runtime/config.py); a process configured by environment variables reads these instead:

| variable | kafka-python setting | |
|---|---|---|
| ``KAFKA_SECURITY_PROTOCOL`` | ``security_protocol`` | ``PLAINTEXT`` (default) or ``SSL`` |
| ``KAFKA_SSL_CAFILE`` | ``ssl_cafile`` | the CA that signed the brokers' certificates (else the system's) |
| ``KAFKA_SSL_CERTFILE`` | ``ssl_certfile`` | the client certificate (mTLS), with ``KAFKA_SSL_KEYFILE`` |
| ``KAFKA_SSL_KEYFILE`` | ``ssl_keyfile`` | its private key |

The brokers' host names are checked against their certificates (kafka-python's default). Any ``KAFKA_SSL_*``
variable without ``KAFKA_SECURITY_PROTOCOL=SSL`` is refused rather than ignored: a forgotten protocol would
otherwise send the log in plaintext.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

KAFKA_SECURITY_PROTOCOL = "KAFKA_SECURITY_PROTOCOL"
KAFKA_SSL_CAFILE = "KAFKA_SSL_CAFILE"
KAFKA_SSL_CERTFILE = "KAFKA_SSL_CERTFILE"
KAFKA_SSL_KEYFILE = "KAFKA_SSL_KEYFILE"

_FILES = {KAFKA_SSL_CAFILE: "ssl_cafile", KAFKA_SSL_CERTFILE: "ssl_certfile", KAFKA_SSL_KEYFILE: "ssl_keyfile"}
_PROTOCOLS = ("PLAINTEXT", "SSL")


class KafkaSecurityError(ValueError):
    """The Kafka TLS variables are inconsistent or name a missing file; the message names the variable."""


def kafka_security_from_env(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """kafka-python client settings for TLS (empty for PLAINTEXT); ``KafkaSecurityError`` when they are wrong."""
    protocol = (environ.get(KAFKA_SECURITY_PROTOCOL, "").strip() or "PLAINTEXT").upper()
    files = {name: value.strip() for name in _FILES if (value := environ.get(name, "")).strip()}
    if protocol not in _PROTOCOLS:
        raise KafkaSecurityError(f"{KAFKA_SECURITY_PROTOCOL} must be one of {', '.join(_PROTOCOLS)}, not {protocol!r}")
    if protocol == "PLAINTEXT":
        if files:
            msg = f"{', '.join(sorted(files))} set but {KAFKA_SECURITY_PROTOCOL} is not SSL: set it or unset them"
            raise KafkaSecurityError(msg)
        return {}
    if (KAFKA_SSL_CERTFILE in files) != (KAFKA_SSL_KEYFILE in files):
        raise KafkaSecurityError(f"{KAFKA_SSL_CERTFILE} and {KAFKA_SSL_KEYFILE} go together: set both or neither")
    for name, path in files.items():
        if not Path(path).is_file():
            raise KafkaSecurityError(f"{name}={path} is not a readable file")
    return {"security_protocol": "SSL", **{_FILES[name]: path for name, path in files.items()}}
