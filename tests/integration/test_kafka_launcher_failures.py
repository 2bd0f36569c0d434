"""The local Kafka launcher with real Java: a start that fails says why and leaves no process or state behind.

Each test starts at most one real cluster and is bounded by ``START_TIMEOUT_S``; a teardown kills whatever
still mentions the test's folder, so a failing assertion never leaves a JVM running.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.local import kafka
from deploy.local.errors import StackError
from deploy.local.kafka import STATE_FILE, KafkaCluster, KafkaNode
from deploy.local.process import LOOPBACK, free_ports, port_answers, spawn
from tests.processes import processes_mentioning

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

START_TIMEOUT_S = 60


def _running(pid: int) -> bool:
    """True while ``pid`` exists and is neither a zombie nor gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


@pytest.fixture
def base(tmp_path: Path) -> Iterator[Path]:
    """The cluster's folder; afterwards nothing that mentions it may survive, whatever the test did."""
    folder = tmp_path / "stack"
    yield folder
    for pid in processes_mentioning(str(folder)):
        os.kill(pid, signal.SIGKILL)


@pytest.fixture
def spawned(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The pids of every broker JVM the launcher spawns during the test, in order."""
    pids: list[int] = []

    def recording_spawn(*args, **kwargs):
        process = spawn(*args, **kwargs)
        pids.append(process.pid)
        return process

    monkeypatch.setattr("deploy.local.kafka.spawn", recording_spawn)
    return pids


def _assert_nothing_left(cluster: KafkaCluster, base: Path, spawned: list[int]) -> None:
    assert not any(_running(pid) for pid in spawned), spawned
    assert processes_mentioning(str(base)) == []
    assert not (base / STATE_FILE).exists()
    for node in cluster.nodes:
        assert not node.pid_path.exists()
        assert not node.data_dir.exists()


def test_a_broker_jvm_that_cannot_start_fails_with_its_console_tail_and_leaves_nothing(base, spawned):
    cluster = KafkaCluster(base, size=1, heap="1k")  # the JVM refuses a 1 KiB heap and exits at once
    started = time.monotonic()

    with pytest.raises(StackError) as excinfo:
        cluster.start(timeout_s=START_TIMEOUT_S)

    assert time.monotonic() - started < START_TIMEOUT_S / 2, "the exit was not noticed before the deadline"
    message = str(excinfo.value)
    assert "Kafka node(s) [1] exited while starting" in message
    assert "--- node 1 console (tail) ---" in message
    assert "Too small" in message  # the JVM's own words, from console.log
    assert len(spawned) == 1
    _assert_nothing_left(cluster, base, spawned)
    assert (cluster.nodes[0].logs_dir / "console.log").exists(), "logs stay for diagnosis"


def test_a_corrupt_config_fails_the_storage_format_and_leaves_no_process_or_data(base, spawned, monkeypatch):
    real_properties = kafka.server_properties

    def corrupt_node_1(node: KafkaNode, nodes: list[KafkaNode]) -> str:
        text = real_properties(node, nodes)
        return text.replace("node.id=1\n", "node.id=one\n") if node.node_id == 1 else text

    monkeypatch.setattr(kafka, "server_properties", corrupt_node_1)
    cluster = KafkaCluster(base, size=3)  # nodes 2 and 3 format fine while node 1 fails

    with pytest.raises(StackError) as excinfo:
        cluster.start(timeout_s=START_TIMEOUT_S)

    message = str(excinfo.value)
    assert "formatting KRaft storage of Kafka node 1" in message
    assert "Invalid value one for configuration" in message  # StorageTool's own words
    assert spawned == [], "a broker was started although its storage was never formatted"
    _assert_nothing_left(cluster, base, spawned)


def test_a_taken_broker_port_fails_before_any_jvm_starts(base, spawned):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.bind((LOOPBACK, 0))
        held.listen()
        taken = held.getsockname()[1]
        cluster = KafkaCluster(base, size=3, broker_ports=[*free_ports(2), taken])

        with pytest.raises(StackError) as excinfo:
            cluster.start(timeout_s=START_TIMEOUT_S)

    message = str(excinfo.value)
    assert f"port {taken} on {LOOPBACK} is already in use" in message
    assert "Kafka broker 3" in message
    assert "KAFKA_PORT" in message
    assert spawned == []
    assert not any(node.directory.exists() for node in cluster.nodes), "storage was formatted (a JVM ran)"
    assert processes_mentioning(str(base)) == []


def test_stop_after_a_successful_start_leaves_no_process(base, spawned):
    cluster = KafkaCluster(base, size=1)
    cluster.start(timeout_s=START_TIMEOUT_S)
    node = cluster.nodes[0]
    try:
        assert (base / STATE_FILE).exists()
        assert spawned == [int(node.pid_path.read_text())]
        assert processes_mentioning(str(node.config_path)) == spawned
        assert port_answers(node.broker_port)
    finally:
        saved = KafkaCluster.from_state(base)  # as `make down` finds it
        assert saved is not None
        saved.stop()

    _assert_nothing_left(cluster, base, spawned)
    assert not port_answers(node.broker_port)
    assert not port_answers(node.controller_port)
