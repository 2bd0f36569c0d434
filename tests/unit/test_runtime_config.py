"""The nameko config keys the runtime reads: clear errors naming the key, URLs normalised."""

from __future__ import annotations

import pytest

from services.core.runtime import config as cfg


def test_bootstrap_servers_accept_a_comma_list_or_a_yaml_list():
    assert cfg.bootstrap_servers({"KAFKA_BOOTSTRAP_SERVERS": " a:1, b:2 ,"}) == ["a:1", "b:2"]
    assert cfg.bootstrap_servers({"KAFKA_BOOTSTRAP_SERVERS": ["a:1", "b:2"]}) == ["a:1", "b:2"]


@pytest.mark.parametrize("config", [{}, {"KAFKA_BOOTSTRAP_SERVERS": ""}, {"KAFKA_BOOTSTRAP_SERVERS": ","}])
def test_missing_bootstrap_servers_name_the_key(config):
    with pytest.raises(cfg.RuntimeConfigError, match="KAFKA_BOOTSTRAP_SERVERS"):
        cfg.bootstrap_servers(config)


def test_postgres_urls_select_the_psycopg_driver_and_others_pass_through():
    assert cfg.database_url({"DATABASE_URL": "postgres://u:p@h/db"}) == "postgresql+psycopg://u:p@h/db"
    assert cfg.database_url({"DATABASE_URL": "postgresql://u:p@h/db"}) == "postgresql+psycopg://u:p@h/db"
    assert cfg.database_url({"DATABASE_URL": "sqlite+pysqlite:///x.db"}) == "sqlite+pysqlite:///x.db"
    with pytest.raises(cfg.RuntimeConfigError, match="DATABASE_URL is not set"):
        cfg.database_url({})


def test_client_options_must_be_a_mapping():
    assert cfg.options({}, cfg.KAFKA_CONSUMER_OPTIONS) == {}
    assert cfg.options({"KAFKA_CONSUMER_OPTIONS": {"max_poll_records": 50}}, cfg.KAFKA_CONSUMER_OPTIONS) == {
        "max_poll_records": 50}
    with pytest.raises(cfg.RuntimeConfigError, match="KAFKA_CONSUMER_OPTIONS must be a mapping"):
        cfg.options({"KAFKA_CONSUMER_OPTIONS": ["max_poll_records"]}, cfg.KAFKA_CONSUMER_OPTIONS)
