"""Unit tests of deploy/local/postgres.py that need no server: discovery, errors, URLs, settings, state."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from deploy.local import postgres
from deploy.local.errors import StackError
from deploy.local.postgres import PostgresServer
from deploy.local.process import LOOPBACK


def _fake_version(root: Path, name: str, tools: tuple[str, ...] = ("initdb", "pg_ctl")) -> None:
    bin_dir = root / name / "bin"
    bin_dir.mkdir(parents=True)
    for tool in tools:
        path = bin_dir / tool
        path.write_text("#!/bin/sh\n")
        path.chmod(0o755)


# -- binary discovery -------------------------------------------------------------------------------------


def test_find_binaries_picks_the_highest_complete_major_numerically(tmp_path):
    _fake_version(tmp_path, "9")  # "9" > "15" as strings: a string sort would pick it
    _fake_version(tmp_path, "15")
    _fake_version(tmp_path, "13")
    _fake_version(tmp_path, "17", tools=("initdb",))  # no pg_ctl: unusable
    (tmp_path / "extra").mkdir()  # not a version

    found = postgres.find_binaries(tmp_path)

    assert found is not None
    assert found.major == 15
    assert found.initdb == tmp_path / "15" / "bin" / "initdb"
    assert found.pg_ctl == tmp_path / "15" / "bin" / "pg_ctl"


def test_find_binaries_ignores_files_that_are_not_executable(tmp_path):
    _fake_version(tmp_path, "16")
    (tmp_path / "16" / "bin" / "pg_ctl").chmod(0o644)
    _fake_version(tmp_path, "14")

    found = postgres.find_binaries(tmp_path)

    assert found is not None
    assert found.major == 14


def test_find_binaries_returns_none_without_any_server(tmp_path):
    assert postgres.find_binaries(tmp_path / "missing") is None
    (tmp_path / "empty").mkdir()
    assert postgres.find_binaries(tmp_path / "empty") is None


def test_missing_server_as_non_root_says_what_to_install_and_does_not_install(tmp_path):
    calls: list[str] = []

    with pytest.raises(StackError) as caught:
        postgres.ensure_binaries(tmp_path, is_root=False, installer=lambda: calls.append("install"))

    message = str(caught.value)
    assert "sudo apt-get install postgresql" in message
    assert "DATABASE_URL" in message
    assert calls == []


def test_missing_server_as_root_installs_then_finds_it(tmp_path):
    calls: list[str] = []

    def installer() -> None:
        calls.append("install")
        _fake_version(tmp_path, "15")

    found = postgres.ensure_binaries(tmp_path, is_root=True, installer=installer)

    assert calls == ["install"]
    assert found.major == 15


def test_install_that_yields_no_binaries_is_a_clear_error(tmp_path):
    with pytest.raises(StackError, match="still found no initdb and pg_ctl"):
        postgres.ensure_binaries(tmp_path, is_root=True, installer=lambda: None)


# -- ports ------------------------------------------------------------------------------------------------


def test_port_in_use_fails_before_anything_is_created(tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind((LOOPBACK, 0))
        holder.listen()
        port = holder.getsockname()[1]
        server = PostgresServer(tmp_path / "stack", port)

        with pytest.raises(StackError) as caught:
            server.start()

    message = str(caught.value)
    assert f"port {port}" in message
    assert "POSTGRES_PORT" in message
    assert not (tmp_path / "stack" / "postgres").exists()
    assert not server.state_path.exists()


def test_port_from_env_reads_postgres_port_and_rejects_garbage():
    assert postgres.port_from_env({}) == postgres.DEFAULT_PORT
    assert postgres.port_from_env({"POSTGRES_PORT": " 6543 "}) == 6543
    for bad in ("abc", "0", "70000", "-1"):
        with pytest.raises(StackError, match="POSTGRES_PORT"):
            postgres.port_from_env({"POSTGRES_PORT": bad})


# -- URLs and the DATABASE_URL decision --------------------------------------------------------------------


def test_build_url_round_trips_through_sqlalchemy_even_with_special_characters():
    password = "p@ss:w/rd%#?"

    url = make_url(postgres.build_url(password, 54321))

    assert url.drivername == "postgresql+psycopg"
    assert url.username == "referralnet"
    assert url.password == password
    assert url.host == "127.0.0.1"
    assert url.port == 54321
    assert url.database == "referralnet"


def test_database_url_from_env_wins_and_starts_nothing(tmp_path):
    environ = {"DATABASE_URL": "postgresql://u:p@db.example:5432/x", "POSTGRES_PORT": "not-a-port"}

    resolved = postgres.resolve_database_url(tmp_path / "stack", environ=environ)

    assert resolved.url == "postgresql+psycopg://u:p@db.example:5432/x"
    assert resolved.server is None
    assert not (tmp_path / "stack").exists()


def test_empty_database_url_counts_as_unset():
    assert postgres.external_database_url({"DATABASE_URL": "  "}) is None
    assert postgres.external_database_url({}) is None


# -- running as root, settings, state ---------------------------------------------------------------------


def test_tools_run_as_the_service_user_only_when_asked():
    assert postgres.as_user(["initdb", "-D", "x"], None) == ["initdb", "-D", "x"]
    assert postgres.as_user(["initdb", "-D", "x"], "postgres") == [
        "runuser", "-u", "postgres", "--", "initdb", "-D", "x"]


def test_server_settings_listen_on_loopback_only_with_our_port_socket_dir_and_fsync():
    on = postgres.server_settings(5999, Path("/srv/it's"), fsync=True)
    off = postgres.server_settings(5999, None, fsync=False)

    assert "listen_addresses = '127.0.0.1'" in on
    assert "port = 5999" in on
    assert "unix_socket_directories = '/srv/it''s'" in on
    assert "fsync = on" in on
    assert "fsync = off" in off
    assert "unix_socket_directories = ''" in off


def test_socket_dir_is_dropped_when_the_socket_path_would_be_too_long(tmp_path):
    assert postgres.socket_dir_for(tmp_path, 5432) == tmp_path
    assert postgres.socket_dir_for(tmp_path / ("d" * 100), 5432) is None


def test_state_file_gives_back_the_server_for_a_later_process(tmp_path):
    state = {
        "url": "postgresql+psycopg://referralnet:pw@127.0.0.1:6001/referralnet", "port": 6001, "pid": 1,
        "fsync": False, "cluster_dir": str(tmp_path / "c"), "data_dir": str(tmp_path / "c" / "data"),
        "log_path": str(tmp_path / "postgres.log"), "pg_ctl": "/x/pg_ctl", "run_as": "postgres",
    }
    (tmp_path / "postgres.json").write_text(json.dumps(state))

    server = PostgresServer.from_state(tmp_path)

    assert server is not None
    assert server.url == state["url"]
    assert server.port == 6001
    assert server.data_dir == tmp_path / "c" / "data"
    assert server.pid is None  # no postmaster.pid: nothing runs
    assert not server.is_running()
    server.stop()  # a dead server's stop only clears up
    assert not (tmp_path / "postgres.json").exists()
    assert PostgresServer.from_state(tmp_path) is None
    assert postgres.stop_saved(tmp_path) is False


def test_url_before_start_is_a_clear_error(tmp_path):
    with pytest.raises(StackError, match="has not been started"):
        _ = PostgresServer(tmp_path, 6002).url


def test_private_files_are_mode_0600(tmp_path):
    target = tmp_path / "secret"
    postgres._write_private(target, "pw\n")

    assert target.read_text() == "pw\n"
    assert os.stat(target).st_mode & 0o777 == 0o600
