"""Kafka TLS from the environment: the variables, their mistakes, and the two processes that read them.

The relay process (``python -m services.core.messaging.relay``) and the edge's relay thread (``RelayTask``)
build their producer with these settings; here the producer factory is captured instead of connecting.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from services.core.grpcedge import relay_task
from services.core.messaging import relay
from services.core.messaging.security import KafkaSecurityError, kafka_security_from_env


@pytest.fixture
def pem_files(tmp_path: Path) -> dict[str, str]:
    """Three files standing in for the cluster CA, the user certificate and its key (only their existence counts)."""
    files = {}
    for name in ("ca.crt", "user.crt", "user.key"):
        (tmp_path / name).write_text("synthetic\n")
        files[name] = str(tmp_path / name)
    return files


def _ssl_env(files: dict[str, str]) -> dict[str, str]:
    return {"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CAFILE": files["ca.crt"],
            "KAFKA_SSL_CERTFILE": files["user.crt"], "KAFKA_SSL_KEYFILE": files["user.key"]}


def test_nothing_set_is_plaintext():
    assert kafka_security_from_env({}) == {}
    assert kafka_security_from_env({"KAFKA_SECURITY_PROTOCOL": "plaintext"}) == {}


def test_ssl_with_a_client_certificate(pem_files):
    assert kafka_security_from_env(_ssl_env(pem_files)) == {
        "security_protocol": "SSL", "ssl_cafile": pem_files["ca.crt"],
        "ssl_certfile": pem_files["user.crt"], "ssl_keyfile": pem_files["user.key"]}


def test_ssl_alone_trusts_the_system_cas():
    assert kafka_security_from_env({"KAFKA_SECURITY_PROTOCOL": "ssl"}) == {"security_protocol": "SSL"}


@pytest.mark.parametrize(("change", "message"), [
    ({"KAFKA_SECURITY_PROTOCOL": ""}, "is not SSL"),  # TLS files but the protocol forgotten: never plaintext
    ({"KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}, "must be one of"),
    ({"KAFKA_SSL_KEYFILE": ""}, "go together"),
    ({"KAFKA_SSL_CAFILE": "/nonexistent/ca.crt"}, "KAFKA_SSL_CAFILE=/nonexistent/ca.crt is not a readable file"),
])
def test_inconsistent_settings_are_refused_naming_the_variable(pem_files, change, message):
    with pytest.raises(KafkaSecurityError, match=message):
        kafka_security_from_env({**_ssl_env(pem_files), **change})


def test_the_edge_relay_thread_gives_its_producer_the_tls_settings(monkeypatch, pem_files):
    captured: dict[str, Any] = {}

    def factory(servers: str, **options: object) -> Any:
        captured.update(servers=servers, options=options)
        return lambda: None

    monkeypatch.setattr(relay_task, "kafka_producer_factory", factory)
    for name, value in _ssl_env(pem_files).items():
        monkeypatch.setenv(name, value)
    relay_task.RelayTask(sa.create_engine("sqlite://"), ["k1:9093", "k2:9093"])
    assert captured == {"servers": "k1:9093,k2:9093", "options": kafka_security_from_env(_ssl_env(pem_files))}
    relay_task.RelayTask(sa.create_engine("sqlite://"), "k1:9093", kafka_options={})
    assert captured["options"] == {}  # explicit options win over the environment


def test_the_relay_process_gives_its_producer_the_tls_settings(monkeypatch, pem_files):
    captured: dict[str, Any] = {}

    class Stop(Exception):
        pass

    def factory(servers: str, **options: object) -> Any:
        captured.update(servers=servers, options=options)
        raise Stop  # before any engine or Kafka connection is made

    monkeypatch.setattr(relay, "kafka_producer_factory", factory)
    for name, value in _ssl_env(pem_files).items():
        monkeypatch.setenv(name, value)
    with pytest.raises(Stop):
        relay.main(["--database-url", "sqlite://", "--bootstrap-servers", "k1:9093"])
    assert captured["options"]["security_protocol"] == "SSL"
    assert captured["options"]["ssl_certfile"] == pem_files["user.crt"]


def test_the_relay_process_refuses_inconsistent_tls_settings(monkeypatch, capsys, pem_files):
    monkeypatch.setenv("KAFKA_SSL_CERTFILE", pem_files["user.crt"])
    monkeypatch.delenv("KAFKA_SECURITY_PROTOCOL", raising=False)
    with pytest.raises(SystemExit) as exit_:
        relay.main(["--database-url", "sqlite://", "--bootstrap-servers", "k1:9093"])
    assert exit_.value.code == 2
    assert "KAFKA_SSL_CERTFILE" in capsys.readouterr().err
