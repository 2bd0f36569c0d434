"""The referral network on one machine: intake, referral, audit and notify, each an edge and a worker, as real
processes.

:class:`LocalNetwork` is what the end-to-end tests, the benchmark and ``python -m deploy.local network`` run.
Given a base folder, a Kafka bootstrap and a database choice, :meth:`LocalNetwork.start`

1. creates the development network (``referralnet network init``) in ``<base>/network`` (or the given
   ``network_dir``) when it is absent, and intake's key-encryption key in ``<base>/keys/intake-kek.key``
   (mode 0600) when that is absent; then, given ``notify_endpoints``, sets those organisations' notification
   endpoints in the signed directory (``set_notify_endpoints``: re-signed by the folder's CA, webhook secrets
   written for notify) before any process starts, since every process reads the directory once at start;
2. gives each service its own database: a SQLite file ``<base>/db/<service>.db`` by default, or, given a
   PostgreSQL URL, a database per service on that server (``referralnet_<base digest>_<service>``, created
   when missing, so two networks on one server never share one);
3. creates the topics: intake's, referral's and notify's events topics, audit's checkpoint topic and each
   worker's dead-letter topic (append-only), after checking that no other network's workers consume on that Kafka
   (topic names and consumer groups are the same for every network, so one Kafka serves one network at a
   time);
4. starts the edges (``python -m services.<service>.edge`` with ``GRPC_LISTEN=127.0.0.1:0``: the kernel
   picks a free port, so a network can run beside another one) and waits until each printed ``edge
   <service> listening on <addr>`` (the port is read from that line) and answers gRPC health SERVING over
   mTLS; then the workers (``nameko run``), waiting until each one's Kafka consumer has its partitions.
   Audit's worker reads intake's, referral's and notify's events and the workers' dead letters into the ledger
   and publishes signed checkpoints; audit's edge answers auditors (ADR 12). Notify's worker turns intake's and
   referral's events into notices to the organisations' endpoints (ADR 14); its edge answers ListDeliveries.
   Its worker is told where partners act (``NOTIFY_ACT_AT``: ``127.0.0.1:<referral's port>
   (referralnet.referral.v1.ReferralService)``, known once referral's edge listens) unless notify's settings
   name a place.

Every process runs in its own session with its output in ``<base>/logs/<process>.log``. :meth:`stop` sends
SIGTERM to all of them, waits a grace period, SIGKILLs what is left and reaps everything, so none outlives
the network; :meth:`kill` and :meth:`restart` act on one process (fault injection). Nothing here depends on
pytest.

Per-service ``settings`` (e.g. ``{"referral": {"OFFER_DEADLINES": "psychosocial=4s",
"OFFER_EXPIRY_INTERVAL_SECONDS": 1}}``) go into the environment of the service's edge and worker and into
the worker's nameko config. Notify's e-mail goes to the SMTP server its settings name
(``{"notify": {"NOTIFY_SMTP_HOST": "127.0.0.1", "NOTIFY_SMTP_PORT": 8025}}``); without one, e-mail deliveries
fail for good (``smtp_not_configured``) and webhooks still go.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

from deploy.local.errors import StackError
from deploy.local.process import LOOPBACK, log_tail, pid_alive
from deploy.local.stack import REPO_ROOT

if TYPE_CHECKING:
    import grpc

    from services.core.identity.records import NotifyEndpoints

NETWORK_SERVICES = ("intake", "referral", "audit", "notify")
EVENT_PRODUCERS = ("intake", "referral", "notify")  # the services that publish events (audit publishes checkpoints)
EDGE_DEFAULT_PORTS = {"intake": 50051, "referral": 50052, "audit": 50053, "notify": 50054}
ProcessKind = Literal["edge", "worker"]
REFERRAL_SERVICE = "referralnet.referral.v1.ReferralService"  # what partners call to act on a notice
LISTENING = re.compile(r"edge (?P<service>[a-z]+) listening on (?P<addr>\S+)")
WORKER_READY = re.compile(r"partitions assigned \[.+\]")
# Short group timeouts: a killed worker's partitions move to its restart within seconds, not 45 s.
CONSUMER_OPTIONS = {"session_timeout_ms": 10_000, "heartbeat_interval_ms": 1_000}
OTHER_NETWORK_WAIT_S = 15.0  # > the session timeout above: members of a killed network have gone by then
WORKER_LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,  # nameko's loggers exist before the config is applied
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {"kafka": {"level": "WARNING"}},
    "root": {"level": "INFO", "handlers": ["stderr"]},
}
Setting = str | int | float | bool


def worker_name(service: str) -> str:
    """The nameko service (and Kafka consumer) name of a service's worker: ``intake-worker``."""
    return f"{service}-worker"


def edge_name(service: str) -> str:
    """The process name of a service's edge: ``intake-edge``."""
    return f"{service}-edge"


def network_topic_names(services: Sequence[str] = NETWORK_SERVICES) -> list[str]:
    """The topics the network needs: the events topics of the services that publish events, audit's
    checkpoint topic when audit runs, and each worker's dead-letter topic."""
    from services.core.messaging.topics import (  # noqa: PLC0415 (kafka import)
        CHECKPOINT_TOPIC,
        dead_letter_topic,
        events_topic,
    )

    topics = [events_topic(service) for service in services if service in EVENT_PRODUCERS]
    topics += [CHECKPOINT_TOPIC] if "audit" in services else []
    return topics + [dead_letter_topic(worker_name(service)) for service in services]


def postgres_database_name(base_dir: Path, service: str) -> str:
    """The database of ``service`` for the network in ``base_dir``: ``referralnet_<10 hex>_<service>``."""
    digest = hashlib.sha256(str(Path(base_dir).resolve()).encode()).hexdigest()[:10]
    return f"referralnet_{digest}_{service}"


@dataclass
class ManagedProcess:
    """One edge or worker: how to start it, and the running ``Popen`` if any."""

    name: str
    service: str
    kind: ProcessKind
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    popen: subprocess.Popen[bytes] | None = None
    log_offset: int = 0
    restarts: int = 0
    session_ids: list[int] = field(default_factory=list)

    def running(self) -> bool:
        """True while the process (its session leader) exists."""
        return self.popen is not None and self.popen.poll() is None and pid_alive(self.popen.pid)

    def new_output(self) -> str:
        """What the process wrote to its log since it was last started."""
        if not self.log_path.exists():
            return ""
        with self.log_path.open("rb") as log:
            log.seek(self.log_offset)
            return log.read().decode(errors="replace")


class LocalNetwork:
    """Intake, referral, audit and notify (edges and workers) on this machine against a real Kafka; see module doc."""

    def __init__(
        self,
        base_dir: Path,
        kafka_bootstrap: str,
        *,
        postgres_url: str | None = None,
        settings: Mapping[str, Mapping[str, Setting]] | None = None,
        max_workers: int = 10,
        partitions: int = 3,
        ready_timeout_s: float = 90.0,
        stop_grace_s: float = 15.0,
        python: str = sys.executable,
        network_dir: Path | None = None,
        other_network_wait_s: float = OTHER_NETWORK_WAIT_S,
        notify_endpoints: Mapping[str, NotifyEndpoints] | None = None,
    ) -> None:
        """Prepare (nothing starts before :meth:`start`); ``postgres_url`` names a server, else SQLite files.

        ``network_dir`` defaults to ``<base_dir>/network``; it is created there when absent.
        ``notify_endpoints`` (org id -> endpoints) are set in the directory before the processes start.
        """
        unknown = set(settings or {}) - set(NETWORK_SERVICES)
        if unknown:
            raise ValueError(f"settings for unknown services {sorted(unknown)}; known: {NETWORK_SERVICES}")
        self.base_dir = Path(base_dir).absolute()
        self.kafka_bootstrap = kafka_bootstrap
        self.postgres_url = postgres_url
        self.settings = {service: dict((settings or {}).get(service, {})) for service in NETWORK_SERVICES}
        self.max_workers = max_workers
        self.partitions = partitions
        self.ready_timeout_s = ready_timeout_s
        self.stop_grace_s = stop_grace_s
        self.python = python
        self.other_network_wait_s = other_network_wait_s
        self.notify_endpoints = dict(notify_endpoints or {})
        self._network_dir = Path(network_dir).absolute() if network_dir else self.base_dir / "network"
        self.logs_dir = self.base_dir / "logs"
        self.kek_path = self.base_dir / "keys" / "intake-kek.key"
        self._ports: dict[str, int] = {}
        self._databases: dict[str, str] = {}
        self._processes: dict[str, ManagedProcess] = {}
        self._channels: dict[tuple[str, str], grpc.Channel] = {}
        self._lock = threading.Lock()
        self._started = False
        self._probe: str | None = None

    # -- what callers read -------------------------------------------------------------------------------

    @property
    def network_dir(self) -> Path:
        """The network folder (CA, org keys and certificates, signed directory, routing keys)."""
        return self._network_dir

    @property
    def process_names(self) -> tuple[str, ...]:
        """Every process of the network: ``intake-edge``, ``intake-worker``, ... ``notify-edge``, ``notify-worker``."""
        return tuple(name for service in NETWORK_SERVICES for name in (edge_name(service), worker_name(service)))

    def endpoint(self, service: str) -> str:
        """``127.0.0.1:<port>`` of a service's edge."""
        if service not in self._ports:
            raise KeyError(f"no edge {service!r} in this network (or it has not started); known: {NETWORK_SERVICES}")
        return f"{LOOPBACK}:{self._ports[service]}"

    def database_url(self, service: str) -> str:
        """The SQLAlchemy URL of a service's own database."""
        return self._databases[service]

    def channel(self, org_id: str, service: str) -> grpc.Channel:
        """An mTLS channel to ``service``'s edge as organisation ``org_id`` (cached; closed by :meth:`stop`)."""
        from services.core.grpcedge.client import org_channel  # noqa: PLC0415 (grpc import)

        key = (org_id, service)
        with self._lock:
            if key not in self._channels:
                self._channels[key] = org_channel(self.network_dir, org_id, self.endpoint(service),
                                                  server_name=service)
            return self._channels[key]

    def log_path(self, process_name: str) -> Path:
        """The log file of one process."""
        return self._process(process_name).log_path

    def pid(self, process_name: str) -> int | None:
        """The pid of a running process (its session and process-group leader), else None."""
        process = self._process(process_name)
        return process.popen.pid if process.running() and process.popen is not None else None

    def is_running(self, process_name: str) -> bool:
        """True while the process exists."""
        return self._process(process_name).running()

    def pids(self) -> list[int]:
        """The pids of every running process of the network."""
        return [pid for name in self._processes if (pid := self.pid(name)) is not None]

    def leftover_processes(self) -> list[int]:
        """Live processes in any session this network ever started (empty after :meth:`stop`)."""
        sessions = {pid for process in self._processes.values() for pid in process.session_ids}
        return [pid for pid, sid in _live_sessions().items() if sid in sessions]

    # -- lifecycle ---------------------------------------------------------------------------------------

    def start(self) -> LocalNetwork:
        """Prepare keys, databases and topics, start every process and wait until each is ready."""
        if self._started:
            return self
        self._started = True
        try:
            self._prepare_network()
            self._apply_notify_endpoints()
            self._prepare_databases()
            self._prepare_topics()
            self._define_processes()
            edges = [self._processes[edge_name(service)] for service in NETWORK_SERVICES]
            self._start_and_wait(edges)  # edges first: they migrate the databases the workers then share
            self._define_worker("notify")  # again, now that referral's port is known (NOTIFY_ACT_AT)
            workers = [self._processes[worker_name(service)] for service in NETWORK_SERVICES]
            self._start_and_wait(workers)
            self._write_endpoints()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """SIGTERM every process, wait up to ``stop_grace_s``, SIGKILL what is left, reap all. Idempotent."""
        with self._lock:
            channels, self._channels = list(self._channels.values()), {}
        for channel in channels:
            channel.close()
        running = [process for process in self._processes.values() if process.popen is not None]
        for process in running:
            _signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + self.stop_grace_s
        for process in running:
            _wait_exit(process, max(0.0, deadline - time.monotonic()))
        for process in running:
            if not _wait_exit(process, 0.0):
                _signal_group(process, signal.SIGKILL)
                _wait_exit(process, 10.0)
        self._started = False

    def kill(self, process_name: str) -> None:
        """SIGKILL one process (and its process group) at once, as a crash would, and reap it."""
        process = self._process(process_name)
        if process.popen is None:
            return
        _signal_group(process, signal.SIGKILL)
        _wait_exit(process, 10.0)

    def terminate(self, process_name: str, grace_s: float | None = None) -> int | None:
        """SIGTERM one process, wait for it (SIGKILL after the grace period); its exit code."""
        process = self._process(process_name)
        if process.popen is None:
            return None
        _signal_group(process, signal.SIGTERM)
        if not _wait_exit(process, self.stop_grace_s if grace_s is None else grace_s):
            _signal_group(process, signal.SIGKILL)
            _wait_exit(process, 10.0)
        return process.popen.returncode

    def restart(self, process_name: str, *, wait: bool = True) -> None:
        """Stop one process if it runs (SIGTERM, then SIGKILL), start it again and wait until it is ready.

        An edge comes back on the same port, so endpoints and channels stay valid. With ``wait=False`` the
        process is only started (fault injection that may strike again while it starts);
        :meth:`wait_ready` waits for it later.
        """
        process = self._process(process_name)
        if process.running():
            self.terminate(process_name)
        process.restarts += 1
        if wait:
            self._start_and_wait([process])
        else:
            self._spawn(process)

    def wait_ready(self, process_names: Sequence[str] | None = None, timeout_s: float | None = None) -> None:
        """Wait until each named process (default: all) is ready as :meth:`start` defines it (StackError at
        the deadline, or when one exits): an edge answers health SERVING, a worker got its partitions."""
        names = self.process_names if process_names is None else tuple(process_names)
        deadline = time.monotonic() + (self.ready_timeout_s if timeout_s is None else timeout_s)
        for name in names:
            process = self._process(name)
            if process.kind == "edge":
                self._wait_edge(process, deadline)
            else:
                self._wait_until(process, deadline, "its Kafka consumer got its partitions",
                                 lambda p: WORKER_READY.search(p.new_output()) is not None)

    def restarts(self, process_name: str) -> int:
        """How many times a process was restarted."""
        return self._process(process_name).restarts

    def __enter__(self) -> LocalNetwork:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()

    # -- preparation -------------------------------------------------------------------------------------

    def _prepare_network(self) -> None:
        from services.core.identity.network import init_network  # noqa: PLC0415 (slow import)
        from services.core.keyvault.kek import LocalFileKek  # noqa: PLC0415

        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        if not self.network_dir.exists() or not any(self.network_dir.iterdir()):
            init_network(self.network_dir)
        self.kek_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        LocalFileKek.from_file(self.kek_path)  # creates it (0600) when absent, checks it otherwise

    def _apply_notify_endpoints(self) -> None:
        """Set the requested organisations' notification endpoints in the signed directory.

        ``set_notify_endpoints`` re-signs only what changes and writes a webhook secret only where one is
        missing, so restarting a kept network with the same endpoints leaves the folder as it is.
        """
        if not self.notify_endpoints:
            return
        from services.core.identity.endpoints import set_notify_endpoints  # noqa: PLC0415 (slow import)

        for org_id, endpoints in sorted(self.notify_endpoints.items()):
            set_notify_endpoints(self.network_dir, org_id, webhook_url=endpoints.webhook_url, email=endpoints.email)

    def _prepare_databases(self) -> None:
        if self.postgres_url is None:
            folder = self.base_dir / "db"
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._databases = {service: f"sqlite+pysqlite:///{folder / f'{service}.db'}"
                               for service in NETWORK_SERVICES}
            return
        self._databases = {service: _ensure_postgres_database(self.postgres_url,
                                                              postgres_database_name(self.base_dir, service))
                           for service in NETWORK_SERVICES}

    def _prepare_topics(self) -> None:
        from kafka import KafkaAdminClient  # noqa: PLC0415 (slow import)

        from services.core.messaging.topics import ensure_topics  # noqa: PLC0415

        admin = KafkaAdminClient(bootstrap_servers=self.kafka_bootstrap, client_id="referralnet-local-network",
                                 request_timeout_ms=30_000)
        try:
            brokers = len(admin.describe_cluster()["brokers"])
            self._require_cluster_to_ourselves(admin)
        finally:
            admin.close()
        replication = min(brokers, 3)
        ensure_topics(self.kafka_bootstrap, network_topic_names(), partitions=self.partitions,
                      replication_factor=replication, min_insync_replicas=1 if replication == 1 else 2)

    def _require_cluster_to_ourselves(self, admin: Any) -> None:  # noqa: ANN401 -- kafka-python is untyped
        """StackError when another network's workers consume on this cluster (after a bounded wait).

        Topic names and consumer groups are the same for every network (ADR 11 names them without a
        network id), so two networks on one Kafka would split each other's partitions and reject each
        other's envelopes. A worker killed outright stays a member until its session times out, hence the
        wait before refusing.
        """
        from kafka.errors import KafkaError  # noqa: PLC0415 (slow import)

        if "__consumer_offsets" not in admin.list_topics():
            return  # no consumer group has ever been on this cluster
        groups = [worker_name(service) for service in NETWORK_SERVICES]
        started = time.monotonic()
        deadline = started + self.other_network_wait_s
        while True:
            try:
                described = admin.describe_groups(groups)
            except KafkaError as error:  # the coordinator is still loading: only retriable errors are expected
                if not getattr(error, "retriable", False) or time.monotonic() > started + 30.0:
                    raise
                time.sleep(0.5)
                continue
            busy = sorted(group for group, info in described.items() if info.get("members"))
            if not busy:
                return
            if time.monotonic() > deadline:
                msg = (f"consumer groups {', '.join(busy)} on {self.kafka_bootstrap} have members: another referral "
                       "network (a demo, a test run, a benchmark) is running on this Kafka. Networks cannot share a "
                       "cluster (topics and consumer groups are not namespaced per network): stop the other one, "
                       "or use another Kafka (the tests and benchmarks start their own when KAFKA_BOOTSTRAP_SERVERS "
                       "is unset).")
                raise StackError(msg)
            time.sleep(1.0)

    def _define_processes(self) -> None:
        self._ports = {}
        for service in NETWORK_SERVICES:
            env = self._service_env(service)
            self._processes[edge_name(service)] = ManagedProcess(
                edge_name(service), service, "edge", [self.python, "-m", f"services.{service}.edge"], env,
                self.logs_dir / f"{edge_name(service)}.log")
            self._define_worker(service)

    def _define_worker(self, service: str) -> None:
        """The worker's process, its environment and nameko config from the values known now."""
        config = self._write_worker_config(service)
        self._processes[worker_name(service)] = ManagedProcess(
            worker_name(service), service, "worker",
            [self.python, "-m", "nameko", "run", "--config", str(config), f"services.{service}.worker"],
            self._service_env(service), self.logs_dir / f"{worker_name(service)}.log")

    def _service_values(self, service: str) -> dict[str, Setting]:
        values: dict[str, Setting] = {
            "KAFKA_BOOTSTRAP_SERVERS": self.kafka_bootstrap,
            "DATABASE_URL": self._databases[service],
            "NETWORK_DIR": str(self.network_dir),
            "EVENT_STORE_SERVICE": service,
        }
        if service == "intake":
            values["KEYVAULT_KEK_PATH"] = str(self.kek_path)
        if service == "notify" and "referral" in self._ports:  # notices say where to act: this network's referral
            values["NOTIFY_ACT_AT"] = f"{self.endpoint('referral')} ({REFERRAL_SERVICE})"
        values.update(self.settings[service])  # what the caller set wins
        return values

    def _service_env(self, service: str) -> dict[str, str]:
        inherited = {key: value for key, value in os.environ.items() if key not in {"GRPC_LISTEN"}}
        values = {key: _env_text(value) for key, value in self._service_values(service).items()}
        return {**inherited, "PYTHONPATH": str(REPO_ROOT), "PYTHONUNBUFFERED": "1", **values}

    def _write_worker_config(self, service: str) -> Path:
        config: dict[str, Any] = {"max_workers": self.max_workers, "KAFKA_CONSUMER_OPTIONS": CONSUMER_OPTIONS,
                                  "LOGGING": WORKER_LOGGING}
        config.update(self._service_values(service))
        folder = self.base_dir / "config"
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = folder / f"{worker_name(service)}.json"  # JSON is YAML: nameko reads it
        path.write_text(json.dumps(config, indent=2))
        path.chmod(0o600)
        return path

    def _write_endpoints(self) -> None:
        endpoints = {service: self.endpoint(service) for service in NETWORK_SERVICES}
        (self.base_dir / "endpoints.json").write_text(json.dumps(endpoints, indent=2) + "\n")

    # -- processes ---------------------------------------------------------------------------------------

    def _process(self, name: str) -> ManagedProcess:
        try:
            return self._processes[name]
        except KeyError:
            raise KeyError(f"no process {name!r} in this network; known: {', '.join(self.process_names)}") from None

    def _spawn(self, process: ManagedProcess) -> None:
        process.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = dict(process.env)
        if process.kind == "edge":  # port 0 the first time; a restarted edge comes back on the same port
            env["GRPC_LISTEN"] = f"{LOOPBACK}:{self._ports.get(process.service, 0)}"
        with process.log_path.open("ab") as log:
            log.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%S')} starting {process.name} "
                      f"(start #{process.restarts + 1})\n".encode())
            process.log_offset = log.tell()
            process.popen = subprocess.Popen(
                process.argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                cwd=REPO_ROOT, start_new_session=True)
            process.session_ids.append(process.popen.pid)

    def _start_and_wait(self, processes: Sequence[ManagedProcess]) -> None:
        for process in processes:
            self._spawn(process)
        self.wait_ready([process.name for process in processes])

    def _wait_edge(self, process: ManagedProcess, deadline: float) -> None:
        def listening(p: ManagedProcess) -> bool:
            match = next((m for m in LISTENING.finditer(p.new_output()) if m.group("service") == p.service), None)
            if match is None:
                return False
            self._ports[p.service] = int(match.group("addr").rpartition(":")[2])
            return True

        self._wait_until(process, deadline, f"it printed 'edge {process.service} listening on ...'", listening)
        self._wait_until(process, deadline, "it answered gRPC health SERVING over mTLS",
                         lambda p: self._health_serving(p.service))

    def _wait_until(self, process: ManagedProcess, deadline: float, what: str,
                    condition: Callable[[ManagedProcess], bool]) -> None:
        while True:
            if condition(process):
                return
            if process.popen is not None and process.popen.poll() is not None:
                msg = (f"{process.name} exited with code {process.popen.returncode} before {what}; "
                       f"log {process.log_path}:\n{log_tail(process.log_path)}")
                raise StackError(msg)
            if time.monotonic() > deadline:
                msg = (f"{process.name} was not ready within {self.ready_timeout_s:.0f}s (waiting until {what}); "
                       f"log {process.log_path}:\n{log_tail(process.log_path)}")
                raise StackError(msg)
            time.sleep(0.1)

    def _health_serving(self, service: str) -> bool:
        import grpc  # noqa: PLC0415 (slow import)
        from grpc_health.v1 import health_pb2  # noqa: PLC0415

        check = self.channel(self._probe_org(), service).unary_unary(
            "/grpc.health.v1.Health/Check", request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
            response_deserializer=health_pb2.HealthCheckResponse.FromString)
        try:
            answer = check(health_pb2.HealthCheckRequest(service=""), timeout=2.0)
        except grpc.RpcError:
            return False
        return bool(answer.status == health_pb2.HealthCheckResponse.SERVING)

    def _probe_org(self) -> str:
        """An organisation of the directory to call health as (any will do: the edge checks mTLS only)."""
        if self._probe is None:
            from services.core.identity.keystore import load_directory  # noqa: PLC0415

            self._probe = load_directory(self.network_dir).organisations[0].org_id
        return self._probe


def _live_sessions() -> dict[int, int]:
    """pid -> session id of every live (non-zombie) process, from /proc."""
    sessions = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z":  # fields after the command: state, ppid, pgrp, session, ...
            sessions[int(entry.name)] = int(fields[3])
    return sessions


def _env_text(value: Setting) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _signal_group(process: ManagedProcess, signum: int) -> None:
    """Signal the process group the process leads, never one whose leader was reaped (its id may be reused)."""
    if process.popen is None or process.popen.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.popen.pid, signum)


def _wait_exit(process: ManagedProcess, timeout_s: float) -> bool:
    """Reap the process within ``timeout_s``; True when it has exited."""
    if process.popen is None:
        return True
    try:
        process.popen.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return False
    return True


def _ensure_postgres_database(server_url: str, name: str) -> str:
    """Create database ``name`` on the server of ``server_url`` when missing; the URL of that database."""
    import sqlalchemy as sa  # noqa: PLC0415 (slow import)

    from services.core.database import create_engine, normalize_url  # noqa: PLC0415

    url = sa.engine.make_url(normalize_url(server_url))
    engine = create_engine(url.render_as_string(hide_password=False), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            exists = connection.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :name"),
                                        {"name": name}).first()
            if exists is None:
                connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    finally:
        engine.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


# -- ``python -m deploy.local network`` ------------------------------------------------------------------


@contextlib.contextmanager
def _kafka_for_network(state: Path) -> Iterator[tuple[str, bool]]:
    """``(bootstrap, lasting)``: the stack's Kafka (``make up`` or KAFKA_BOOTSTRAP_SERVERS), else one for now."""
    from deploy.local.kafka import KafkaCluster  # noqa: PLC0415
    from deploy.local.stack import external_kafka  # noqa: PLC0415

    external = external_kafka()
    if external:
        yield external, True
        return
    saved = KafkaCluster.from_state(state)
    if saved is not None and saved.running_nodes():
        yield saved.bootstrap_servers, True
        return
    with tempfile.TemporaryDirectory(prefix="network-kafka-", dir=state) as folder, \
            KafkaCluster(Path(folder), size=1) as cluster:
        yield cluster.bootstrap_servers, False


def run_network(state: Path, *, with_postgres: bool, settings: Mapping[str, Mapping[str, Setting]] | None = None,
                ) -> None:
    """Run the network in the foreground until SIGINT or SIGTERM, then stop everything it started.

    The network folder (``<state>/network``: CA, organisation certificates, keys) is made once and kept, so
    partners' client configurations stay valid between runs. On the stack's Kafka (``make up``) the services'
    databases are kept too (``<state>/network-run``); on a Kafka started just for this run they start empty
    and are removed with it, so the databases never remember events the log does not have.
    """
    from deploy.local.postgres import PostgresServer, external_database_url, running_postgres  # noqa: PLC0415

    state.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()
    previous = {signum: signal.signal(signum, lambda *_: stop.set()) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        with contextlib.ExitStack() as stack:
            bootstrap, lasting = stack.enter_context(_kafka_for_network(state))
            base = state / "network-run" if lasting else Path(stack.enter_context(
                tempfile.TemporaryDirectory(prefix="network-run-", dir=state)))
            postgres_url = None
            if with_postgres:
                saved = PostgresServer.from_state(state)
                postgres_url = external_database_url() or (saved.url if saved and saved.is_running() else None)
                if postgres_url is None:
                    postgres_url = stack.enter_context(running_postgres(state / "network-pg"))
            started = time.monotonic()
            network = stack.enter_context(LocalNetwork(base, bootstrap, postgres_url=postgres_url, settings=settings,
                                                       network_dir=state / "network"))
            print(f"network up in {time.monotonic() - started:.1f}s (kafka {bootstrap}; "
                  f"{'PostgreSQL' if postgres_url else 'SQLite'} databases)")
            for service in NETWORK_SERVICES:
                print(f"  {service}: {network.endpoint(service)} (mTLS, server name {service!r})")
            print(f"  network folder (CA, org certificates): {network.network_dir}")
            print(f"  logs: {network.logs_dir}; endpoints: {network.base_dir / 'endpoints.json'}")
            print("Ctrl-C stops it.", flush=True)
            while not stop.wait(1.0):
                dead = [name for name in network.process_names if not network.is_running(name)]
                if dead:
                    raise StackError(f"{', '.join(dead)} exited; see {network.logs_dir}")
            print("stopping the network")
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m deploy.local.network``: run the network in the foreground (see :func:`run_network`)."""
    from deploy.local.stack import state_dir  # noqa: PLC0415

    parser = argparse.ArgumentParser(prog="python -m deploy.local.network", description=run_network.__doc__)
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL databases instead of SQLite files")
    args = parser.parse_args(argv)
    try:
        run_network(state_dir(), with_postgres=args.postgres)
    except StackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
