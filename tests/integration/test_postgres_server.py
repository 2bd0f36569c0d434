"""The throwaway PostgreSQL launcher against a real server: start, stop from another process, failures.

Real: Debian's PostgreSQL server, started by deploy.local.postgres on free loopback ports. Replaced: in
one test, the step after the server started is made to fail, to prove the server is stopped again.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa

from deploy.local import postgres
from deploy.local.errors import StackError
from deploy.local.postgres import PostgresServer, running_postgres
from deploy.local.process import free_ports, pid_alive, port_answers

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def _postgres_pids() -> list[int]:
    pids = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]
    return [pid for pid in pids if "postgres" in _cmdline(pid)]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def test_started_in_one_process_and_stopped_from_another(tmp_path):
    server = PostgresServer(tmp_path, free_ports(1)[0], fsync=False)
    try:
        url = server.start()
        pid, data_dir = server.pid, server.data_dir
        assert data_dir.is_dir()
        assert pid is not None and pid_alive(pid)
        with sa.create_engine(url).connect() as conn:
            assert conn.execute(sa.text("select current_database(), current_user")).one() == (
                "referralnet", "referralnet")
            assert conn.execute(sa.text("show listen_addresses")).scalar_one() == "127.0.0.1"

        # A second server on the same port is refused with the clear message, and the first is unharmed.
        with pytest.raises(StackError, match=f"port {server.port}.*POSTGRES_PORT"):
            PostgresServer(tmp_path / "second", server.port).start()
        assert pid_alive(pid)

        # `make down` runs in a new process that knows only the base directory.
        stop = "import sys; from deploy.local.postgres import stop_saved; assert stop_saved(sys.argv[1])"
        subprocess.run([sys.executable, "-c", stop, str(tmp_path)], cwd=REPO, check=True, timeout=60)

        assert not pid_alive(pid)
        assert not port_answers(server.port)
        assert not server.state_path.exists()
        assert not data_dir.exists()
        assert "received fast shutdown request" in server.log_path.read_text()
    finally:
        server.stop()


def test_running_postgres_rejects_a_wrong_password_and_stops_on_exit(tmp_path):
    port = free_ports(1)[0]
    with running_postgres(tmp_path, port=port, fsync=False, environ={}) as url:
        assert sa.make_url(url).port == port
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(host="127.0.0.1", port=port, user="referralnet", password="wrong",
                            dbname="referralnet", connect_timeout=5)
        assert port_answers(port)

    assert not port_answers(port)
    assert not (tmp_path / "postgres.json").exists()


def test_a_server_that_cannot_bind_fails_with_its_log_and_leaves_nothing(tmp_path, monkeypatch):
    # Someone takes the port between the check and the server's bind: the real server must fail cleanly.
    monkeypatch.setattr(postgres, "ensure_port_free", lambda *_args: None)
    data_dirs: list[Path] = []
    configure = PostgresServer._configure

    def recording_configure(self: PostgresServer) -> None:
        data_dirs.append(self.data_dir)
        configure(self)

    monkeypatch.setattr(PostgresServer, "_configure", recording_configure)
    before = set(_postgres_pids())
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        server = PostgresServer(tmp_path, holder.getsockname()[1], fsync=False, start_timeout_s=20)

        with pytest.raises(StackError) as caught:
            server.start()

    message = str(caught.value)
    assert "pg_ctl start failed" in message
    assert "Address already in use" in message  # from the server log's tail
    assert "DATABASE_URL" in message
    assert len(data_dirs) == 1
    assert not data_dirs[0].exists()
    assert not server.state_path.exists()
    assert set(_postgres_pids()) <= before


def test_a_failure_after_the_server_started_stops_it_and_reports_the_log(tmp_path, monkeypatch):
    started: list[tuple[int, Path]] = []

    def broken_create_database(self: PostgresServer, password: str) -> None:
        assert self.pid is not None
        started.append((self.pid, self.data_dir))
        raise RuntimeError("simulated failure after start")

    monkeypatch.setattr(PostgresServer, "_create_database", broken_create_database)
    server = PostgresServer(tmp_path, free_ports(1)[0], fsync=False)

    with pytest.raises(StackError) as caught:
        server.start()

    message = str(caught.value)
    assert "simulated failure after start" in message
    assert "database system is ready to accept connections" in message  # the log tail
    assert len(started) == 1
    pid, data_dir = started[0]
    assert not pid_alive(pid)
    assert not data_dir.exists()
    assert not port_answers(server.port)
    assert not server.state_path.exists()
