"""A real Apache Kafka in KRaft mode on 127.0.0.1: one combined node, or a cluster of three.

The broker runs exactly as Kafka's own ``bin/`` scripts run it (``kafka-storage.sh`` is
``kafka.tools.StorageTool``, ``kafka-server-start.sh`` is ``kafka.Kafka``, both with every jar on the
classpath), with the jars resolved from Maven Central by :mod:`deploy.local.maven`.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import subprocess
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

from deploy.local.errors import StackError
from deploy.local.java import find_java
from deploy.local.maven import RUNTIME_DIR, resolve_kafka_jars
from deploy.local.process import (
    LOOPBACK,
    ensure_port_free,
    free_ports,
    log_tail,
    pid_alive,
    port_answers,
    spawn,
    stop_process_group,
)

KAFKA_VERSION = "4.1.1"
STATE_FILE = "kafka.json"
DEFAULT_HEAP = "512m"
FORMAT_TIMEOUT_S = 120
# Kafka's kafka-run-class.sh defaults, minus the 1 GiB heap (three nodes share a 2-core dev machine).
JVM_FLAGS = (
    "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent", "-XX:+ExitOnOutOfMemoryError", "-Djava.awt.headless=true",
)


@dataclass(frozen=True)
class KafkaNode:
    """One combined broker+controller process of the local cluster."""

    node_id: int
    broker_port: int
    controller_port: int
    directory: Path

    @property
    def config_path(self) -> Path:
        return self.directory / "server.properties"

    @property
    def logs_dir(self) -> Path:
        return self.directory / "logs"

    @property
    def data_dir(self) -> Path:
        return self.directory / "data"

    @property
    def pid_path(self) -> Path:
        return self.directory / "kafka.pid"

    def pid(self) -> int | None:
        """The running node's pid, if it was started and is still alive.

        A pid from the pid file counts only while that process runs this node's config, so a recycled
        pid of an unrelated process is never signalled. (The command line reads empty for a moment
        while the JVM starts, and for a zombie; pid_alive decides those.)
        """
        with contextlib.suppress(OSError, ValueError):
            pid = int(self.pid_path.read_text())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            ours = not cmdline or str(self.config_path).encode() in cmdline
            if ours and pid_alive(pid):
                return pid
        return None

    def log_excerpt(self, lines: int = 30) -> str:
        """The end of this node's server log and of its JVM console output."""
        server_log = log_tail(self.logs_dir / "server.log", lines)
        console = log_tail(self.logs_dir / "console.log", 10)
        return (f"--- node {self.node_id} server.log (tail) ---\n{server_log}\n"
                f"--- node {self.node_id} console (tail) ---\n{console}")


def start_timeout_s() -> float:
    """How long to wait for a broker to come up: ``KAFKA_START_TIMEOUT`` seconds, default 120."""
    return float(os.environ.get("KAFKA_START_TIMEOUT", "120"))


def new_cluster_id() -> str:
    """A Kafka cluster id: 16 random bytes, URL-safe base64 without padding (as ``random-uuid`` prints).

    Like Kafka's ``Uuid.randomUuid()``, never one starting with "-": ``StorageTool format -t -x...`` reads
    it as an option and fails ("expected one argument"), which 1 random id in 64 would do.
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def server_properties(node: KafkaNode, nodes: list[KafkaNode]) -> str:
    """The ``server.properties`` of one node of a KRaft cluster made of ``nodes`` (1 or 3 of them)."""
    replicas = min(3, len(nodes))
    min_isr = 2 if replicas >= 3 else 1
    voters = ",".join(f"{n.node_id}@{LOOPBACK}:{n.controller_port}" for n in nodes)
    settings = {
        "process.roles": "broker,controller",
        "node.id": node.node_id,
        "controller.quorum.voters": voters,
        "listeners": f"PLAINTEXT://{LOOPBACK}:{node.broker_port},CONTROLLER://{LOOPBACK}:{node.controller_port}",
        "advertised.listeners": f"PLAINTEXT://{LOOPBACK}:{node.broker_port}",
        "inter.broker.listener.name": "PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": node.data_dir,
        "num.partitions": 3,
        "default.replication.factor": replicas,
        "min.insync.replicas": min_isr,
        "offsets.topic.replication.factor": replicas,
        # Fewer internal partitions than the default 50: a first consumer-group join or transaction
        # on a fresh dev broker then takes about a second instead of many.
        "offsets.topic.num.partitions": 6,
        "transaction.state.log.replication.factor": replicas,
        "transaction.state.log.min.isr": min_isr,
        "transaction.state.log.num.partitions": 6,
        "share.coordinator.state.topic.replication.factor": replicas,
        "share.coordinator.state.topic.min.isr": min_isr,
        "group.initial.rebalance.delay.ms": 0,
        # Topics are declared by the services (retention, replicas); a typo must not create one.
        "auto.create.topics.enable": "false",
        "unclean.leader.election.enable": "false",
    }
    return "".join(f"{key}={value}\n" for key, value in settings.items())


class KafkaCluster:
    """A local KRaft cluster of ``size`` combined nodes whose files all live under ``base_dir``."""

    def __init__(self, base_dir: Path, size: int = 1, broker_ports: list[int] | None = None,
                 heap: str | None = None) -> None:
        if size not in (1, 3):
            msg = f"size: a local cluster has 1 or 3 nodes, not {size}"
            raise ValueError(msg)
        self.base_dir = base_dir
        self.heap = heap or os.environ.get("KAFKA_HEAP", DEFAULT_HEAP)
        # One call, so that no port is handed out twice (a released port may come back from a later call).
        candidates = free_ports(2 * size)
        ports = broker_ports or candidates[:size]
        if len(ports) != size:
            msg = f"broker_ports: {size} ports needed, {len(ports)} given"
            raise ValueError(msg)
        controller_ports = [port for port in candidates if port not in ports][:size]
        self.nodes = [
            KafkaNode(node_id=i + 1, broker_port=ports[i], controller_port=controller_ports[i],
                      directory=base_dir / f"kafka-{i + 1}")
            for i in range(size)
        ]
        self._classpath: str | None = None

    @property
    def bootstrap_servers(self) -> str:
        """The ``host:port,...`` string clients connect to."""
        return ",".join(f"{LOOPBACK}:{node.broker_port}" for node in self.nodes)

    def start(self, timeout_s: float | None = None) -> None:
        """Format storage, start every node and wait until all brokers are registered and answer."""
        for node in self.nodes:
            ensure_port_free(node.broker_port, f"Kafka broker {node.node_id}", "KAFKA_PORT")
            ensure_port_free(node.controller_port, f"Kafka controller {node.node_id}", "KAFKA_PORT")
        java = str(find_java().executable)
        self._classpath = ":".join(str(jar) for jar in resolve_kafka_jars(KAFKA_VERSION))
        try:
            self._format_storage(java, new_cluster_id())
            for node in self.nodes:
                self._start_node(java, node)
            self._wait_until_ready(timeout_s or start_timeout_s())
        except BaseException:
            self.stop()
            raise
        self._write_state()

    def _format_storage(self, java: str, cluster_id: str) -> None:
        formatters: list[tuple[KafkaNode, subprocess.Popen[bytes]]] = []
        try:
            for node in self.nodes:
                node.logs_dir.mkdir(parents=True, exist_ok=True)
                node.config_path.write_text(server_properties(node, self.nodes))
                argv = [java, "-cp", self._require_classpath(), "kafka.tools.StorageTool", "format",
                        "-t", cluster_id, "-c", str(node.config_path), "--ignore-formatted"]
                formatter = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
                formatters.append((node, formatter))
            for node, proc in formatters:
                try:
                    output, _ = proc.communicate(timeout=FORMAT_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    msg = (f"formatting KRaft storage of Kafka node {node.node_id} took over {FORMAT_TIMEOUT_S} s; "
                           "the machine may be overloaded. Retry, or check `java -version` works.")
                    raise StackError(msg) from None
                if proc.returncode != 0:
                    msg = (f"formatting KRaft storage of Kafka node {node.node_id} in {node.data_dir} failed "
                           f"(exit {proc.returncode}); delete that folder if it holds another cluster's data. "
                           f"StorageTool said:\n{output.decode(errors='replace')[-2000:]}")
                    raise StackError(msg)
        finally:
            for _, proc in formatters:  # the other nodes' formatters when one failed or timed out
                if proc.poll() is None:
                    proc.kill()
                    proc.communicate()

    def _start_node(self, java: str, node: KafkaNode) -> None:
        argv = [
            java, f"-Xms{self.heap}", f"-Xmx{self.heap}", *JVM_FLAGS,
            f"-Dlog4j2.configurationFile={RUNTIME_DIR / 'log4j2.xml'}",
            f"-Dkafka.logs.dir={node.logs_dir}",
            "-cp", self._require_classpath(), "kafka.Kafka", str(node.config_path),
        ]
        process = spawn(argv, node.logs_dir / "console.log")
        node.pid_path.write_text(str(process.pid))

    def _require_classpath(self) -> str:
        if self._classpath is None:
            msg = "the Kafka classpath is resolved by start()"
            raise StackError(msg)
        return self._classpath

    def _wait_until_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            dead = [node for node in self.nodes if node.pid() is None]
            if dead:
                excerpts = "\n".join(node.log_excerpt() for node in dead)
                msg = f"Kafka node(s) {[n.node_id for n in dead]} exited while starting.\n{excerpts}"
                raise StackError(msg)
            answering = all(port_answers(node.broker_port) for node in self.nodes)
            if answering and self._registered_brokers() == len(self.nodes):
                return
            time.sleep(0.25)
        excerpts = "\n".join(node.log_excerpt() for node in self.nodes)
        msg = (f"Kafka did not become ready on {self.bootstrap_servers} within {timeout_s:.0f}s "
               f"(a slow machine can raise KAFKA_START_TIMEOUT).\n{excerpts}")
        raise StackError(msg)

    def _registered_brokers(self) -> int:
        from kafka import KafkaAdminClient  # noqa: PLC0415  (kept off the import path of the CLI's --help)
        from kafka.errors import KafkaError  # noqa: PLC0415

        try:
            admin = KafkaAdminClient(bootstrap_servers=self.bootstrap_servers, request_timeout_ms=3000,
                                     client_id="referralnet-stack")
        except (KafkaError, OSError, ValueError):
            return 0
        try:
            return len(admin.describe_cluster()["brokers"])
        except (KafkaError, OSError, ValueError):
            return 0
        finally:
            admin.close()

    def stop(self, grace_s: float = 30.0) -> None:
        """Stop every node (SIGTERM to all at once, SIGKILL after ``grace_s``) and discard its data.

        The local cluster is throwaway, like the local PostgreSQL: the next ``start()`` formats afresh.
        Logs stay for diagnosis.
        """
        pids = [pid for pid in (node.pid() for node in self.nodes) if pid is not None]
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, 15)
        for pid in pids:
            stop_process_group(pid, grace_s=grace_s)
        for node in self.nodes:
            node.pid_path.unlink(missing_ok=True)
            shutil.rmtree(node.data_dir, ignore_errors=True)
        (self.base_dir / STATE_FILE).unlink(missing_ok=True)

    def stop_node(self, node_id: int, grace_s: float = 30.0) -> None:
        """Stop one node (a fault test's broker failure); :meth:`restart_node` brings it back."""
        node = self.nodes[node_id - 1]
        pid = node.pid()
        if pid is not None:
            stop_process_group(pid, grace_s=grace_s)
        node.pid_path.unlink(missing_ok=True)

    def kill_node(self, node_id: int) -> None:
        """SIGKILL one node (its process group) at once, as a crash would; :meth:`restart_node` brings it back."""
        node = self.nodes[node_id - 1]
        pid = node.pid()
        if pid is not None:
            stop_process_group(pid, grace_s=0)
        node.pid_path.unlink(missing_ok=True)

    def restart_node(self, node_id: int, timeout_s: float | None = None) -> None:
        """Start a stopped node again on its old ports and data, and wait for the whole cluster."""
        self.restart_nodes([node_id], timeout_s)

    def restart_nodes(self, node_ids: list[int], timeout_s: float | None = None) -> None:
        """Start several stopped nodes again (all at once: a KRaft quorum needs a majority of its voters to
        come up before any broker registers), and wait for the whole cluster."""
        java = str(find_java().executable)
        if self._classpath is None:
            self._classpath = ":".join(str(jar) for jar in resolve_kafka_jars(KAFKA_VERSION))
        for node_id in node_ids:
            self._start_node(java, self.nodes[node_id - 1])
        self._wait_until_ready(timeout_s or start_timeout_s())

    def __enter__(self) -> KafkaCluster:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def _write_state(self) -> None:
        state = {"bootstrap_servers": self.bootstrap_servers, "heap": self.heap,
                 "nodes": [{**asdict(node), "directory": str(node.directory)} for node in self.nodes]}
        (self.base_dir / STATE_FILE).write_text(json.dumps(state, indent=2))

    @classmethod
    def from_state(cls, base_dir: Path) -> KafkaCluster | None:
        """The cluster a previous process started under ``base_dir`` (for ``down`` and ``status``)."""
        path = base_dir / STATE_FILE
        if not path.exists():
            return None
        state = json.loads(path.read_text())
        cluster = cls.__new__(cls)
        cluster.base_dir = base_dir
        cluster.heap = state["heap"]
        cluster.nodes = [KafkaNode(node_id=n["node_id"], broker_port=n["broker_port"],
                                   controller_port=n["controller_port"], directory=Path(n["directory"]))
                         for n in state["nodes"]]
        cluster._classpath = None
        return cluster

    def running_nodes(self) -> list[KafkaNode]:
        """The nodes whose process is alive."""
        return [node for node in self.nodes if node.pid() is not None]
