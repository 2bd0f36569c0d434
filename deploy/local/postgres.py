"""A throwaway PostgreSQL cluster from Debian's ``postgresql`` package, listening on 127.0.0.1 only.

``PostgresServer(base_dir, port).start()`` runs ``initdb`` (scram-sha-256, superuser ``referralnet`` with a
random password) into ``<base_dir>/postgres/data``, starts it with ``pg_ctl``, creates the database
``referralnet`` and returns its SQLAlchemy URL. ``stop()`` shuts it down with ``pg_ctl -m fast stop`` and
deletes the cluster; the server log stays at ``<base_dir>/postgres.log``. The connection details are kept
in ``<base_dir>/postgres.json`` (mode 0600) so another process can find and stop the server
(``PostgresServer.from_state``).

Callers decide between an existing server and a throwaway one with ``resolve_database_url`` or
``running_postgres``: when ``DATABASE_URL`` is set, nothing is started.

As root, the server runs as Debian's ``postgres`` system user (``initdb`` refuses root). When that user
cannot reach ``base_dir`` (pytest's ``/tmp/pytest-of-root`` is mode 0700), the cluster goes to a private
directory under the system temp dir instead; the log and state file still live in ``base_dir``.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any
from urllib.parse import quote

import psycopg
from psycopg import sql

from deploy.local.errors import StackError
from deploy.local.process import LOOPBACK, ensure_port_free, log_tail, pid_alive, stop_process_group
from services.core.database import normalize_url

PG_LIB_ROOT = Path("/usr/lib/postgresql")
SERVICE_USER = "postgres"
SUPERUSER = "referralnet"
DATABASE = "referralnet"
URL_ENV = "DATABASE_URL"
PORT_ENV = "POSTGRES_PORT"
DEFAULT_PORT = 55432  # not 5432, so it never collides with a system cluster
STATE_FILE = "postgres.json"
LOG_FILE = "postgres.log"
_SOCKET_PATH_MAX = 100  # sun_path is 108 bytes; postgres also needs room for ".lock"
_INSTALL_HINT = (
    "Install Debian's server package (`sudo apt-get install postgresql`), "
    f"or set {URL_ENV} to an existing server, e.g. "
    f"{URL_ENV}=postgresql+psycopg://user:password@127.0.0.1:5432/{DATABASE}"
)


@dataclass(frozen=True)
class PostgresBinaries:
    """The server programs of one installed PostgreSQL major version."""

    major: int
    initdb: Path
    pg_ctl: Path


# ---------------------------------------------------------------------------------------------------------
# Finding (and, as root, installing) the server binaries


def find_binaries(root: Path = PG_LIB_ROOT) -> PostgresBinaries | None:
    """The highest major version under ``root`` (``<root>/<major>/bin``) that has initdb and pg_ctl."""
    if not root.is_dir():
        return None
    found = [b for b in (_binaries_in(entry) for entry in root.iterdir()) if b is not None]
    return max(found, key=lambda b: b.major, default=None)


def _binaries_in(version_dir: Path) -> PostgresBinaries | None:
    if not version_dir.name.isdigit():
        return None
    initdb, pg_ctl = version_dir / "bin" / "initdb", version_dir / "bin" / "pg_ctl"
    if not all(p.is_file() and os.access(p, os.X_OK) for p in (initdb, pg_ctl)):
        return None
    return PostgresBinaries(major=int(version_dir.name), initdb=initdb, pg_ctl=pg_ctl)


def install_postgresql() -> None:
    """Install Debian's ``postgresql`` package non-interactively (needs root)."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in (["apt-get", "update"],
                 ["apt-get", "install", "-y", "--no-install-recommends", "postgresql"]):
        result = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            output = "\n".join((result.stdout + result.stderr).splitlines()[-20:])
            msg = (f"`{' '.join(argv)}` failed with exit code {result.returncode}, so PostgreSQL could "
                   f"not be installed. {_INSTALL_HINT}.\n{output}")
            raise StackError(msg)


def ensure_binaries(root: Path = PG_LIB_ROOT, *, is_root: bool | None = None,
                    installer: Callable[[], None] = install_postgresql) -> PostgresBinaries:
    """Find the server binaries; as root, install Debian's package first when they are missing."""
    found = find_binaries(root)
    if found is not None:
        return found
    if not (os.geteuid() == 0 if is_root is None else is_root):
        msg = (f"the PostgreSQL server (initdb, pg_ctl under {root}/<major>/bin) is not installed. "
               f"{_INSTALL_HINT}.")
        raise StackError(msg)
    installer()
    found = find_binaries(root)
    if found is None:
        msg = (f"installed Debian's postgresql package, but still found no initdb and pg_ctl under "
               f"{root}/<major>/bin. Check `dpkg -L postgresql-common`, or set {URL_ENV}.")
        raise StackError(msg)
    return found


# ---------------------------------------------------------------------------------------------------------
# URLs, ports and the DATABASE_URL decision


def build_url(password: str, port: int, *, user: str = SUPERUSER, database: str = DATABASE,
              host: str = LOOPBACK) -> str:
    """A SQLAlchemy URL for psycopg 3, with user and password percent-encoded."""
    return (f"postgresql+psycopg://{quote(user, safe='')}:{quote(password, safe='')}"
            f"@{host}:{port}/{quote(database, safe='')}")


def external_database_url(environ: Mapping[str, str] | None = None) -> str | None:
    """``DATABASE_URL`` (normalized) when it is set and not empty, else None."""
    value = (os.environ if environ is None else environ).get(URL_ENV, "").strip()
    return normalize_url(value) if value else None


def port_from_env(environ: Mapping[str, str] | None = None, default: int = DEFAULT_PORT) -> int:
    """The port from ``POSTGRES_PORT``, or ``default``; a value that is not a port is a StackError."""
    raw = (os.environ if environ is None else environ).get(PORT_ENV, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= 65535:
        msg = f"{PORT_ENV}={raw!r} is not a TCP port; set it to a number from 1 to 65535."
        raise StackError(msg)
    return int(raw)


@dataclass(frozen=True)
class ResolvedDatabase:
    """Where the database is: ``server`` is None when ``url`` came from ``DATABASE_URL``."""

    url: str
    server: PostgresServer | None


def resolve_database_url(base_dir: Path, *, port: int | None = None, fsync: bool = True,
                         environ: Mapping[str, str] | None = None) -> ResolvedDatabase:
    """Use ``DATABASE_URL`` when set; otherwise start a PostgresServer in ``base_dir`` and use its URL.

    ``port`` defaults to ``POSTGRES_PORT`` or DEFAULT_PORT. The caller stops the returned server (if any).
    """
    external = external_database_url(environ)
    if external is not None:
        return ResolvedDatabase(url=external, server=None)
    server = PostgresServer(base_dir, port_from_env(environ) if port is None else port, fsync=fsync)
    return ResolvedDatabase(url=server.start(), server=server)


@contextlib.contextmanager
def running_postgres(base_dir: Path, *, port: int | None = None, fsync: bool = True,
                     environ: Mapping[str, str] | None = None) -> Iterator[str]:
    """``resolve_database_url`` as a context manager that stops the server it started, if any."""
    resolved = resolve_database_url(base_dir, port=port, fsync=fsync, environ=environ)
    try:
        yield resolved.url
    finally:
        if resolved.server is not None:
            resolved.server.stop()


def stop_saved(base_dir: Path) -> bool:
    """Stop the server ``start()`` recorded in ``base_dir`` (``make down``); False if there was none."""
    server = PostgresServer.from_state(base_dir)
    if server is None:
        return False
    server.stop()
    return True


# ---------------------------------------------------------------------------------------------------------
# Small pure helpers (unit tested)


def as_user(argv: Sequence[str], run_as: str | None) -> list[str]:
    """``argv`` unchanged, or wrapped in ``runuser -u <run_as> --`` to run as that user (root only)."""
    return ["runuser", "-u", run_as, "--", *argv] if run_as else list(argv)


def server_settings(port: int, socket_dir: Path | None, *, fsync: bool) -> str:
    """The lines appended to postgresql.conf: loopback only, our port and socket dir, fsync on or off."""
    sockets = "" if socket_dir is None else str(socket_dir)
    return "\n".join([
        "",
        "# throwaway cluster of the referralnet local stack (deploy/local/postgres.py)",
        f"listen_addresses = '{LOOPBACK}'",
        f"port = {port}",
        f"unix_socket_directories = {_conf_quote(sockets)}",
        f"fsync = {'on' if fsync else 'off'}",
        "",
    ])


def _conf_quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def socket_dir_for(cluster_dir: Path, port: int) -> Path | None:
    """``cluster_dir`` for the Unix socket, or None (no socket) when the path would be too long."""
    return cluster_dir if len(f"{cluster_dir}/.s.PGSQL.{port}.lock") <= _SOCKET_PATH_MAX else None


def read_postmaster_pid(data_dir: Path) -> int | None:
    """The postmaster's pid from ``postmaster.pid``, or None when there is none."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        return int((data_dir / "postmaster.pid").read_text().splitlines()[0])
    return None


def _service_user() -> str | None:
    """The user to run the server as: ``postgres`` when we are root, else None (ourselves)."""
    return SERVICE_USER if os.geteuid() == 0 else None


def _user_ids(user: str) -> tuple[int, int]:
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        msg = (f"running as root, but the `{user}` system user that runs PostgreSQL does not exist. "
               f"Reinstall Debian's package (`apt-get install --reinstall postgresql-common`) "
               f"or set {URL_ENV}.")
        raise StackError(msg) from None
    return entry.pw_uid, entry.pw_gid


def _reachable_by(user: str, path: Path) -> bool:
    """True when ``user`` may enter ``path`` (every parent searchable)."""
    result = subprocess.run(as_user(["test", "-x", str(path)], user), cwd="/", check=False,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return result.returncode == 0


def _tool_env() -> dict[str, str]:
    """Our environment without PG* variables, which would redirect initdb and pg_ctl."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PG")}


def _write_private(path: Path, text: str, owner: tuple[int, int] | None = None) -> None:
    """Write ``text`` to a new mode-0600 file (atomically replacing ``path``), optionally chowned."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    if owner is not None:
        os.chown(tmp, *owner)
    tmp.replace(path)


# ---------------------------------------------------------------------------------------------------------
# The server


class PostgresServer:
    """One throwaway PostgreSQL cluster on 127.0.0.1:``port``, kept under ``base_dir``.

    Use as ``with PostgresServer(base_dir, port) as server: ... server.url``, or call ``start()`` and
    ``stop()``. ``fsync=False`` suits test clusters; keep it on for a stack people work with.
    """

    def __init__(self, base_dir: Path, port: int, *, fsync: bool = True, start_timeout_s: float = 60.0,
                 stop_timeout_s: float = 30.0, binaries: PostgresBinaries | None = None) -> None:
        self.base_dir = Path(base_dir).absolute()
        self.port = port
        self.fsync = fsync
        self.start_timeout_s = start_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self._binaries = binaries
        self._pg_ctl: Path | None = binaries.pg_ctl if binaries else None
        self._run_as: str | None = None
        self._cluster_dir: Path | None = None
        self._url: str | None = None

    # -- public properties --------------------------------------------------------------------------------

    @property
    def state_path(self) -> Path:
        """The JSON file that lets another process find and stop this server."""
        return self.base_dir / STATE_FILE

    @property
    def log_path(self) -> Path:
        """The server log (initdb and postgres output); it outlives ``stop()``."""
        return self.base_dir / LOG_FILE

    @property
    def cluster_dir(self) -> Path:
        """The directory holding ``data/`` and the Unix socket (known once started)."""
        if self._cluster_dir is None:
            return self.base_dir / "postgres"
        return self._cluster_dir

    @property
    def data_dir(self) -> Path:
        """The cluster's data directory (PGDATA)."""
        return self.cluster_dir / "data"

    @property
    def url(self) -> str:
        """The SQLAlchemy URL of the ``referralnet`` database; a StackError before ``start()``."""
        if self._url is None:
            msg = f"PostgreSQL in {self.base_dir} has not been started, so it has no URL yet."
            raise StackError(msg)
        return self._url

    @property
    def pid(self) -> int | None:
        """The postmaster's pid while a cluster exists, else None."""
        return read_postmaster_pid(self.data_dir) if self._cluster_dir else None

    def is_running(self) -> bool:
        """True while the postmaster of this cluster is alive."""
        pid = self.pid
        return pid is not None and pid_alive(pid)

    # -- lifecycle ----------------------------------------------------------------------------------------

    def start(self) -> str:
        """initdb, start, create the database, save the state file; return the URL.

        On any failure, everything that was started is stopped again before the StackError is raised.
        """
        self._refuse_if_already_running()
        ensure_port_free(self.port, "PostgreSQL", PORT_ENV)
        binaries = self._binaries or ensure_binaries()
        self._pg_ctl = binaries.pg_ctl
        self._run_as = _service_user()
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self._cluster_dir = self._prepare_cluster_dir()
        try:
            password = secrets.token_urlsafe(24)
            self._initdb(binaries.initdb, password)
            self._configure()
            self._pg_ctl_start()
            self._create_database(password)
            self._url = build_url(password, self.port)
            self._save_state()
        except BaseException as exc:
            self._discard()
            if isinstance(exc, StackError | KeyboardInterrupt | SystemExit):
                raise
            raise self._failure(f"PostgreSQL could not be set up ({type(exc).__name__}: {exc})",
                                "see the server log below") from exc
        return self._url

    def stop(self) -> None:
        """Shut the server down (``pg_ctl -m fast stop``, then force), delete the cluster and state file.

        Safe to call more than once, and on a server that never started.
        """
        self._discard()

    def restart(self, mode: str = "immediate") -> None:
        """Stop the running server and start it again on the same data, port and password (a fault test's
        database restart). ``immediate`` stops it as a crash would (recovery from the WAL at start), ``fast``
        as an orderly shutdown; either way every client connection is cut.
        """
        if mode not in ("immediate", "fast"):
            msg = f"mode: immediate or fast, not {mode!r}"
            raise ValueError(msg)
        if self._cluster_dir is None or self._url is None:
            msg = f"PostgreSQL in {self.base_dir} has not been started, so it cannot be restarted."
            raise StackError(msg)
        pid = self.pid
        if pid is not None and pid_alive(pid) and not (self._pg_ctl_stop(mode) and not pid_alive(pid)):
            _kill_postmaster(pid)
        self._pg_ctl_start()

    def __enter__(self) -> PostgresServer:
        """Start the server."""
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        """Stop the server."""
        self.stop()

    # -- state file ---------------------------------------------------------------------------------------

    @classmethod
    def from_state(cls, base_dir: Path) -> PostgresServer | None:
        """The server recorded in ``<base_dir>/postgres.json`` by ``start()``, or None when there is none."""
        path = Path(base_dir) / STATE_FILE
        try:
            state: dict[str, Any] = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            msg = (f"cannot read the PostgreSQL state file {path} ({exc}); "
                   f"delete it and stop the server by hand.")
            raise StackError(msg) from exc
        server = cls(Path(base_dir), int(state["port"]), fsync=bool(state.get("fsync", True)))
        server._url = str(state["url"])
        server._cluster_dir = Path(state["cluster_dir"])
        server._pg_ctl = Path(state["pg_ctl"])
        server._run_as = state.get("run_as")
        return server

    def _save_state(self) -> None:
        state = {
            "url": self.url, "port": self.port, "pid": self.pid, "fsync": self.fsync,
            "cluster_dir": str(self.cluster_dir), "data_dir": str(self.data_dir),
            "log_path": str(self.log_path), "pg_ctl": str(self._pg_ctl), "run_as": self._run_as,
        }
        _write_private(self.state_path, json.dumps(state, indent=2) + "\n")

    def _refuse_if_already_running(self) -> None:
        previous = PostgresServer.from_state(self.base_dir)
        if previous is None:
            return
        if previous.is_running():
            msg = (f"PostgreSQL from an earlier start is still running (pid {previous.pid}, port "
                   f"{previous.port}, state in {self.state_path}). Stop it first (make down), or use another "
                   f"base directory.")
            raise StackError(msg)
        previous._discard()  # stale: the server died without stop(); clear its leftovers

    # -- steps of start() ---------------------------------------------------------------------------------

    def _prepare_cluster_dir(self) -> Path:
        """A fresh, empty cluster dir owned by the user that runs the server."""
        cluster = self.base_dir / "postgres"
        shutil.rmtree(cluster, ignore_errors=True)
        if self._run_as is None:
            cluster.mkdir(mode=0o700)
            return cluster
        owner = _user_ids(self._run_as)
        if not _reachable_by(self._run_as, self.base_dir):
            cluster = Path(tempfile.mkdtemp(prefix="referralnet-pg-"))
        else:
            cluster.mkdir(mode=0o700)
        os.chown(cluster, *owner)
        return cluster

    def _initdb(self, initdb: Path, password: str) -> None:
        pwfile = self.cluster_dir / "pwfile"
        _write_private(pwfile, password + "\n", _user_ids(self._run_as) if self._run_as else None)
        try:
            self._run_logged("initdb", [
                str(initdb), "-D", str(self.data_dir), "--auth=scram-sha-256", f"--username={SUPERUSER}",
                f"--pwfile={pwfile}", "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync",
            ], fix="check free disk space and the log below")
        finally:
            pwfile.unlink(missing_ok=True)

    def _configure(self) -> None:
        settings = server_settings(self.port, socket_dir_for(self.cluster_dir, self.port), fsync=self.fsync)
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write(settings)

    def _pg_ctl_start(self) -> None:
        timeout = max(1, round(self.start_timeout_s))
        self._run_logged("pg_ctl start", [
            str(self._pg_ctl), "-D", str(self.data_dir), "-w", "-t", str(timeout), "start",
        ], fix=f"check that port {self.port} is free ({PORT_ENV}) and the log below")

    def _create_database(self, password: str) -> None:
        with psycopg.connect(host=LOOPBACK, port=self.port, user=SUPERUSER, password=password,
                             dbname="postgres", autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))

    def _run_logged(self, step: str, argv: list[str], *, fix: str) -> None:
        """Run a PostgreSQL tool (as the service user) with its output appended to the server log.

        The log is handed over as an open file, so the server writes to it even when its own user could
        not open ``base_dir``. A timeout kills the tool's whole process group.
        """
        with self.log_path.open("ab") as log:
            self._log_line(log, f"$ {' '.join(argv)}")
            proc = subprocess.Popen(as_user(argv, self._run_as), stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, cwd="/", env=_tool_env(),
                                    start_new_session=True)
            limit = self.start_timeout_s + 15
            try:
                code = proc.wait(timeout=limit)
            except subprocess.TimeoutExpired:
                stop_process_group(proc.pid, grace_s=5)
                raise self._failure(f"{step} did not finish within {limit:.0f} s", fix) from None
        if code != 0:
            raise self._failure(f"{step} failed with exit code {code}", fix)

    @staticmethod
    def _log_line(log: IO[bytes], text: str) -> None:
        log.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} [deploy.local.postgres] {text}\n".encode())
        log.flush()

    def _failure(self, cause: str, fix: str) -> StackError:
        return StackError(
            f"{cause} (port {self.port}, data dir {self.data_dir}). To fix: {fix}; or set {URL_ENV} to an "
            f"existing server. Last lines of {self.log_path}:\n{log_tail(self.log_path)}"
        )

    # -- stopping -----------------------------------------------------------------------------------------

    def _shutdown(self) -> None:
        """Stop the postmaster: fast shutdown, then immediate, then SIGKILL. Never raises for a dead one."""
        pid = self.pid
        if pid is None or not pid_alive(pid):
            return
        for mode in ("fast", "immediate"):
            if self._pg_ctl_stop(mode) and not pid_alive(pid):
                return
        _kill_postmaster(pid)

    def _pg_ctl_stop(self, mode: str) -> bool:
        if self._pg_ctl is None:
            return False
        argv = [str(self._pg_ctl), "-D", str(self.data_dir), "-m", mode, "-w",
                "-t", str(max(1, round(self.stop_timeout_s))), "stop"]
        with self.log_path.open("ab") as log:
            self._log_line(log, f"$ {' '.join(argv)}")
            try:
                result = subprocess.run(as_user(argv, self._run_as), stdin=subprocess.DEVNULL, stdout=log,
                                        stderr=subprocess.STDOUT, cwd="/", env=_tool_env(), check=False,
                                        timeout=self.stop_timeout_s + 15)
            except subprocess.TimeoutExpired:
                return False
        return result.returncode == 0

    def _discard(self) -> None:
        """Stop whatever still runs, then delete the cluster dir and the state file."""
        if self._cluster_dir is not None:
            self._shutdown()
            shutil.rmtree(self._cluster_dir, ignore_errors=True)
        self.state_path.unlink(missing_ok=True)
        self._cluster_dir = None
        self._url = None


def _kill_postmaster(pid: int) -> None:
    """Last resort: SIGKILL the postmaster (its group, when it leads one); backends exit when it dies."""
    try:
        if os.getpgid(pid) == pid:
            stop_process_group(pid, grace_s=0)
            return
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    except PermissionError:
        msg = (f"cannot stop the PostgreSQL postmaster (pid {pid}): it belongs to another user. "
               f"Stop it as the user who started it (root if `make up` ran as root).")
        raise StackError(msg) from None
    deadline = time.monotonic() + 5
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
