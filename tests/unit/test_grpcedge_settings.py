"""Edge settings from the environment: defaults, overrides, and errors that name the variable."""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn

import pytest

from services.core.grpcedge.client import language_metadata
from services.core.grpcedge.main import serve_from_env
from services.core.grpcedge.settings import (
    EdgeConfigError,
    EdgeSettings,
    env_required,
    kafka_bootstrap_from_env,
    split_listen,
)

BASE = {"NETWORK_DIR": "/srv/network"}


def test_defaults_listen_on_loopback_at_the_services_port_and_relay_on():
    settings = EdgeSettings.from_env(50051, BASE)
    assert settings == EdgeSettings(listen="127.0.0.1:50051", network_dir=Path("/srv/network"), grace_seconds=10.0,
                                    max_workers=16, relay=True)


def test_every_variable_overrides_its_default():
    environ = {**BASE, "GRPC_LISTEN": " [::]:6000 ", "GRPC_GRACE_SECONDS": "2.5", "GRPC_MAX_WORKERS": "4",
               "OUTBOX_RELAY": "OFF"}
    settings = EdgeSettings.from_env(50052, environ)
    assert (settings.listen, settings.grace_seconds, settings.max_workers, settings.relay) == ("[::]:6000", 2.5, 4,
                                                                                              False)
    assert split_listen(settings.listen) == ("[::]", 6000)
    assert EdgeSettings.from_env(1, {**BASE, "OUTBOX_RELAY": "on"}).relay is True
    assert EdgeSettings.from_env(1, {**BASE, "GRPC_LISTEN": "127.0.0.1:0"}).listen == "127.0.0.1:0"


@pytest.mark.parametrize("network_dir", [None, "", "   "])
def test_a_missing_network_dir_is_named(network_dir):
    environ = {} if network_dir is None else {"NETWORK_DIR": network_dir}
    with pytest.raises(EdgeConfigError, match="NETWORK_DIR is not set"):
        EdgeSettings.from_env(50051, environ)


@pytest.mark.parametrize(("name", "value"), [
    ("GRPC_LISTEN", "50051"),
    ("GRPC_LISTEN", "localhost"),
    ("GRPC_LISTEN", ":50051"),
    ("GRPC_LISTEN", "127.0.0.1:port"),
    ("GRPC_LISTEN", "127.0.0.1:70000"),
    ("GRPC_LISTEN", "127.0.0.1:-1"),
    ("GRPC_GRACE_SECONDS", "soon"),
    ("GRPC_GRACE_SECONDS", "-1"),
    ("GRPC_GRACE_SECONDS", "nan"),
    ("GRPC_GRACE_SECONDS", "inf"),
    ("GRPC_MAX_WORKERS", "0"),
    ("GRPC_MAX_WORKERS", "2.5"),
    ("GRPC_MAX_WORKERS", "many"),
    ("OUTBOX_RELAY", "yes"),
    ("OUTBOX_RELAY", "1"),
])
def test_a_malformed_value_is_refused_naming_its_variable(name, value):
    with pytest.raises(EdgeConfigError, match=name):
        EdgeSettings.from_env(50051, {**BASE, name: value})


def test_settings_built_in_code_are_checked_too():
    with pytest.raises(EdgeConfigError, match="GRPC_MAX_WORKERS"):
        EdgeSettings(listen="127.0.0.1:1", network_dir=Path("n"), max_workers=0)
    with pytest.raises(EdgeConfigError, match="GRPC_LISTEN"):
        EdgeSettings(listen="nowhere", network_dir=Path("n"))
    with pytest.raises(EdgeConfigError, match="GRPC_GRACE_SECONDS"):
        EdgeSettings(listen="127.0.0.1:1", network_dir=Path("n"), grace_seconds=-0.5)


def test_env_required_names_the_variable_and_trims():
    assert env_required("DATABASE_URL", {"DATABASE_URL": " sqlite:///x.db "}) == "sqlite:///x.db"
    for environ in ({}, {"KEYVAULT_KEK_PATH": ""}):
        with pytest.raises(EdgeConfigError, match="KEYVAULT_KEK_PATH is not set"):
            env_required("KEYVAULT_KEK_PATH", environ)


def test_kafka_bootstrap_is_a_list_of_host_ports():
    environ = {"KAFKA_BOOTSTRAP_SERVERS": " 127.0.0.1:9092, kafka-1:9093 ,"}
    assert kafka_bootstrap_from_env(environ) == ["127.0.0.1:9092", "kafka-1:9093"]
    for value in ("", " , ", "kafka-1"):
        with pytest.raises(EdgeConfigError, match="KAFKA_BOOTSTRAP_SERVERS"):
            kafka_bootstrap_from_env({"KAFKA_BOOTSTRAP_SERVERS": value})


def test_language_metadata_is_the_accept_language_header():
    assert language_metadata("en") == (("accept-language", "en"),)


@pytest.mark.parametrize(("environ", "configure_error", "named"), [
    ({"NETWORK_DIR": "/n"}, None, "DATABASE_URL"),
    ({"NETWORK_DIR": "/n", "DATABASE_URL": "sqlite://"}, None, "KAFKA_BOOTSTRAP_SERVERS"),
    ({"NETWORK_DIR": "/n", "DATABASE_URL": "sqlite://", "OUTBOX_RELAY": "off"}, "OFFER_DEADLINES: 'soon'",
     "OFFER_DEADLINES: 'soon'"),
])
def test_an_edge_missing_a_setting_exits_2_naming_it_before_touching_its_database(
        monkeypatch, caplog, environ, configure_error, named):
    for name in ("NETWORK_DIR", "DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS", "OUTBOX_RELAY", "GRPC_LISTEN"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)

    def configure() -> str:
        if configure_error:
            raise ValueError(configure_error)
        return "configured"

    def unreachable(*_: object) -> NoReturn:
        raise AssertionError("nothing is built or migrated when a setting is missing")

    assert serve_from_env("referral", 50052, ["x"], unreachable, configure=configure, build=unreachable) == 2
    assert f"edge referral cannot start: {named}" in caplog.text
