"""Unit tests of the local Kafka launcher that need no broker: Java/Maven discovery, config, ports, cleanup.

Real Java and Maven are replaced by small shell scripts only where the point is how the launcher reacts
to what they print or do (an old Java, a failing Maven, a storage format that fails on one node).
"""

from __future__ import annotations

import base64
import os
import signal
import socket
import sys
import uuid
from pathlib import Path

import pytest

from deploy.local import cli, kafka, maven
from deploy.local.errors import StackError
from deploy.local.java import INSTALL_JAVA, INSTALL_MAVEN, find_java, parse_java_major
from deploy.local.kafka import KAFKA_VERSION, KafkaCluster, KafkaNode, new_cluster_id, server_properties
from deploy.local.process import LOOPBACK, ensure_port_free
from tests.processes import processes_mentioning


def _script(path: Path, body: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


def _props(text: str) -> dict[str, str]:
    pairs = [line.split("=", 1) for line in text.splitlines()]
    assert all(len(pair) == 2 for pair in pairs), text
    return {key: value for key, value in pairs}


# -- Java ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("output", "major"), [
    ('java version "1.8.0_392"\nJava(TM) SE Runtime Environment (build 1.8.0_392-b08)', 8),
    ('openjdk version "17.0.15" 2025-04-15\nOpenJDK Runtime Environment (build 17.0.15+6-Debian-1deb12u1)', 17),
    ('openjdk version "25" 2025-09-16\nOpenJDK 64-Bit Server VM (build 25+36, mixed mode)', 25),
    ('Picked up JAVA_TOOL_OPTIONS: -Dfile.encoding=UTF-8\nopenjdk version "21.0.2" 2024-01-16', 21),
])
def test_parse_java_major(output, major):
    assert parse_java_major(output) == major


@pytest.mark.parametrize("garbage", ["", "bash: java: command not found", 'version "beta"', "17.0.15"])
def test_parse_java_major_rejects_output_without_a_version(garbage):
    with pytest.raises(StackError, match="could not read a Java version"):
        parse_java_major(garbage)


def test_find_java_rejects_a_java_older_than_17_named_by_java_home(tmp_path, monkeypatch):
    java = _script(tmp_path / "jdk11" / "bin" / "java",
                   'echo \'openjdk version "11.0.2" 2019-01-15\' >&2\n')
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "jdk11"))

    with pytest.raises(StackError) as excinfo:
        find_java()

    message = str(excinfo.value)
    assert "Java >= 17" in message
    assert "Java 11" in message
    assert str(java) in message
    assert INSTALL_JAVA in message
    assert "apt-get install openjdk-17" in message


def test_find_java_prefers_java_home_over_path(tmp_path, monkeypatch):
    java = _script(tmp_path / "jdk21" / "bin" / "java", 'echo \'openjdk version "21.0.4" 2024-07-16\' >&2\n')
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "jdk21"))

    runtime = find_java()

    assert runtime.executable == java
    assert runtime.major == 21


def test_find_java_without_any_java_says_what_to_install(tmp_path, monkeypatch):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(empty))

    with pytest.raises(StackError) as excinfo:
        find_java()

    message = str(excinfo.value)
    assert "Java was not found" in message
    assert INSTALL_JAVA in message


# -- Maven and the jar cache ----------------------------------------------------------------------------------


@pytest.fixture
def jar_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("REFERRALNET_CACHE", str(cache))
    return cache


def _put_first_on_path(monkeypatch, bin_dir: Path) -> None:
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")


def test_a_failing_maven_raises_with_its_output_and_leaves_nothing_half_resolved(tmp_path, jar_cache, monkeypatch):
    bin_dir = tmp_path / "fake-bin"
    _script(bin_dir / "mvn", "echo '[ERROR] Could not transfer artifact org.apache.kafka:kafka_2.13 (MVN-STDOUT)'\n"
                             "echo 'Network is unreachable (MVN-STDERR)' >&2\n"
                             'for arg in "$@"; do case "$arg" in -DoutputDirectory=*) '
                             'touch "${arg#-DoutputDirectory=}/partial.jar";; esac; done\n'
                             "exit 3\n")
    _put_first_on_path(monkeypatch, bin_dir)

    with pytest.raises(StackError) as excinfo:
        maven.resolve_kafka_jars(KAFKA_VERSION)

    message = str(excinfo.value)
    assert "MVN-STDOUT" in message
    assert "MVN-STDERR" in message
    assert "exit 3" in message
    assert f"kafka_2.13:{KAFKA_VERSION}" in message
    target = maven.libs_dir(KAFKA_VERSION)
    assert str(target).startswith(str(jar_cache))
    assert not list(jar_cache.rglob(maven.COMPLETE_MARKER))
    assert not target.exists()
    assert not list(target.parent.glob("libs-*")), "the staging folder was left behind"
    assert not list(jar_cache.rglob("*.jar"))


def test_maven_that_succeeds_without_the_kafka_jar_is_a_failure(tmp_path, jar_cache, monkeypatch):
    bin_dir = tmp_path / "fake-bin"
    _script(bin_dir / "mvn", "echo 'BUILD SUCCESS but nothing copied'\nexit 0\n")
    _put_first_on_path(monkeypatch, bin_dir)

    with pytest.raises(StackError, match="exit 0"):
        maven.resolve_kafka_jars(KAFKA_VERSION)

    assert not list(jar_cache.rglob(maven.COMPLETE_MARKER))
    assert not list(maven.libs_dir(KAFKA_VERSION).parent.glob("libs-*"))


def test_jars_are_resolved_once_and_reused(tmp_path, jar_cache, monkeypatch):
    calls = tmp_path / "mvn-calls"
    bin_dir = tmp_path / "fake-bin"
    _script(bin_dir / "mvn", f'echo "$*" >> {calls}\n'
                             'for arg in "$@"; do case "$arg" in -DoutputDirectory=*) out="${arg#-DoutputDirectory=}";;'
                             " esac; done\n"
                             'touch "$out/kafka_2.13-9.9.9.jar" "$out/kafka-clients-9.9.9.jar"\n')
    _put_first_on_path(monkeypatch, bin_dir)

    first = maven.resolve_kafka_jars(KAFKA_VERSION)

    target = maven.libs_dir(KAFKA_VERSION)
    assert first == [target / "kafka-clients-9.9.9.jar", target / "kafka_2.13-9.9.9.jar"]
    assert (target / maven.COMPLETE_MARKER).read_text() == KAFKA_VERSION + "\n"
    assert sorted(path.name for path in target.parent.iterdir()) == ["libs"], "the staging folder was left behind"
    invocations = calls.read_text().splitlines()
    assert len(invocations) == 1
    assert f"-Dkafka.version={KAFKA_VERSION}" in invocations[0]
    assert f"-f {maven.POM}" in invocations[0]

    second = maven.resolve_kafka_jars(KAFKA_VERSION)

    assert second == first
    assert len(calls.read_text().splitlines()) == 1, "Maven ran again although the jars were cached"


def test_missing_maven_says_what_to_install(tmp_path, jar_cache, monkeypatch):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))

    with pytest.raises(StackError) as excinfo:
        maven.resolve_kafka_jars(KAFKA_VERSION)

    assert INSTALL_MAVEN in str(excinfo.value)
    assert not list(jar_cache.rglob(maven.COMPLETE_MARKER))


def test_cache_root_follows_referralnet_cache_then_xdg(tmp_path, monkeypatch):
    monkeypatch.setenv("REFERRALNET_CACHE", str(tmp_path / "explicit"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert maven.cache_root() == tmp_path / "explicit"
    monkeypatch.delenv("REFERRALNET_CACHE")
    assert maven.cache_root() == tmp_path / "xdg" / "referralnet"


# -- cluster id, config, ports -----------------------------------------------------------------------------


def test_new_cluster_id_is_16_bytes_in_22_url_safe_characters():
    ids = {new_cluster_id() for _ in range(200)}
    assert len(ids) == 200
    for cluster_id in ids:
        assert len(cluster_id) == 22
        assert "=" not in cluster_id
        decoded = base64.urlsafe_b64decode(cluster_id + "==")
        assert len(decoded) == 16
        assert base64.urlsafe_b64encode(decoded).decode().rstrip("=") == cluster_id


def test_new_cluster_id_never_starts_with_a_dash(monkeypatch):
    # StorageTool reads "-t -xyz..." as a missing cluster id ("expected one argument"); Kafka's own
    # Uuid.randomUuid() draws again in that case, and so must we (1 random id in 64 starts with '-').
    dashed = uuid.UUID(bytes=b"\xf8" + bytes(15))
    plain = uuid.UUID(bytes=b"\x01" * 16)
    assert base64.urlsafe_b64encode(dashed.bytes).decode().startswith("-")
    draws = iter([dashed, plain])
    monkeypatch.setattr(uuid, "uuid4", lambda: next(draws))  # what kafka.new_cluster_id calls

    cluster_id = new_cluster_id()

    assert cluster_id == base64.urlsafe_b64encode(plain.bytes).decode().rstrip("=")


def _nodes(size: int) -> list[KafkaNode]:
    return [KafkaNode(node_id=i, broker_port=29090 + i, controller_port=39090 + i, directory=Path(f"/x/kafka-{i}"))
            for i in range(1, size + 1)]


def _assert_loopback_only(props: dict[str, str], node: KafkaNode) -> None:
    assert props["listeners"] == (f"PLAINTEXT://127.0.0.1:{node.broker_port},"
                                  f"CONTROLLER://127.0.0.1:{node.controller_port}")
    assert props["advertised.listeners"] == f"PLAINTEXT://127.0.0.1:{node.broker_port}"
    for key in ("listeners", "advertised.listeners"):
        hosts = {endpoint.split("://")[1].rsplit(":", 1)[0] for endpoint in props[key].split(",")}
        assert hosts == {LOOPBACK}


def test_server_properties_of_a_single_node():
    [node] = _nodes(1)

    props = _props(server_properties(node, [node]))

    assert props["process.roles"] == "broker,controller"
    assert props["node.id"] == "1"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:39091"
    _assert_loopback_only(props, node)
    assert props["log.dirs"] == "/x/kafka-1/data"
    for key in ("default.replication.factor", "offsets.topic.replication.factor",
                "transaction.state.log.replication.factor", "share.coordinator.state.topic.replication.factor"):
        assert props[key] == "1", key
    for key in ("min.insync.replicas", "transaction.state.log.min.isr", "share.coordinator.state.topic.min.isr"):
        assert props[key] == "1", key
    assert props["auto.create.topics.enable"] == "false"
    assert props["unclean.leader.election.enable"] == "false"


def test_server_properties_of_a_three_node_cluster():
    nodes = _nodes(3)

    all_props = [_props(server_properties(node, nodes)) for node in nodes]

    voters = "1@127.0.0.1:39091,2@127.0.0.1:39092,3@127.0.0.1:39093"
    for node, props in zip(nodes, all_props, strict=True):
        assert props["node.id"] == str(node.node_id)
        assert props["controller.quorum.voters"] == voters
        _assert_loopback_only(props, node)
        assert props["log.dirs"] == f"/x/kafka-{node.node_id}/data"
        for key in ("default.replication.factor", "offsets.topic.replication.factor",
                    "transaction.state.log.replication.factor", "share.coordinator.state.topic.replication.factor"):
            assert props[key] == "3", key
        for key in ("min.insync.replicas", "transaction.state.log.min.isr", "share.coordinator.state.topic.min.isr"):
            assert props[key] == "2", key
        assert props["auto.create.topics.enable"] == "false"


def test_ensure_port_free_names_the_port_and_the_variable_when_taken():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.bind((LOOPBACK, 0))
        port = held.getsockname()[1]

        with pytest.raises(StackError) as excinfo:
            ensure_port_free(port, "Kafka broker 1", "KAFKA_PORT")

    message = str(excinfo.value)
    assert f"port {port} " in message
    assert "KAFKA_PORT" in message
    assert "Kafka broker 1" in message
    ensure_port_free(port, "Kafka broker 1", "KAFKA_PORT")  # released: no error


def test_cluster_size_must_be_1_or_3(tmp_path):
    with pytest.raises(ValueError, match="1 or 3 nodes"):
        KafkaCluster(tmp_path, size=2)
    with pytest.raises(ValueError, match="3 ports needed, 1 given"):
        KafkaCluster(tmp_path, size=3, broker_ports=[19092])


@pytest.mark.parametrize("size", [1, 3])
def test_controller_ports_never_reuse_a_broker_port(tmp_path, monkeypatch, size):
    # The kernel may hand out a port again once it was released, so two separate free_ports() calls can
    # overlap; a broker and a controller on one port make the node fail at bind time.
    def free_ports(count: int) -> list[int]:
        return [41000 + i for i in range(count)]  # distinct within a call, as the real one is

    monkeypatch.setattr(kafka, "free_ports", free_ports)

    chosen = KafkaCluster(tmp_path, size=size)
    given = KafkaCluster(tmp_path, size=size, broker_ports=[41000 + i for i in range(size)])
    for cluster in (chosen, given):
        brokers = [node.broker_port for node in cluster.nodes]
        controllers = [node.controller_port for node in cluster.nodes]
        assert len(set(brokers + controllers)) == 2 * size, (brokers, controllers)


def test_kafka_ports_rejects_what_is_not_a_port(monkeypatch):
    for raw in ("abc", "70000", "-1", ""):
        monkeypatch.setenv("KAFKA_PORT", raw)
        with pytest.raises(StackError, match="KAFKA_PORT must be a TCP port number"):
            cli.kafka_ports(1)
    monkeypatch.setenv("KAFKA_PORT", "29092")
    assert cli.kafka_ports(3) == [29092, 29093, 29094]
    monkeypatch.setenv("KAFKA_PORT", "65535")
    assert cli.kafka_ports(1) == [65535]
    monkeypatch.setenv("KAFKA_PORT", "65534")
    with pytest.raises(StackError, match="KAFKA_PORT"):
        cli.kafka_ports(3)
    monkeypatch.delenv("KAFKA_PORT")
    assert cli.kafka_ports(1) == [cli.DEFAULT_KAFKA_PORT]


# -- a storage format that fails on one node ------------------------------------------------------------------


def test_a_failed_storage_format_leaves_no_formatter_running_and_no_data(tmp_path, jar_cache, monkeypatch):
    """Node 2's format fails while node 1's has succeeded and node 3's is still running."""
    libs = maven.libs_dir(KAFKA_VERSION)
    libs.mkdir(parents=True)
    (libs / "kafka_2.13-9.9.9.jar").touch()
    (libs / maven.COMPLETE_MARKER).write_text(KAFKA_VERSION + "\n")
    _script(tmp_path / "jdk" / "bin" / "java", f"""\
if [ "$1" = "-version" ]; then echo 'openjdk version "17.0.99" 2099-01-01' >&2; exit 0; fi
prev=""; config=""
for arg in "$@"; do [ "$prev" = "-c" ] && config="$arg"; prev="$arg"; done
node_dir=$(dirname "$config")
case "$config" in
  */kafka-1/*) mkdir -p "$node_dir/data" && echo "cluster.id=x" > "$node_dir/data/meta.properties"; exit 0;;
  */kafka-2/*) echo "FAKE-STORAGE-TOOL: Invalid value for configuration node.id"; exit 1;;
  *) exec {sys.executable} -c 'import time; time.sleep(60)' "$config";;
esac
""")
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "jdk"))
    base = tmp_path / "stack"
    cluster = KafkaCluster(base, size=3)
    try:
        with pytest.raises(StackError) as excinfo:
            cluster.start(timeout_s=5)

        message = str(excinfo.value)
        assert "Kafka node 2" in message
        assert "FAKE-STORAGE-TOOL: Invalid value for configuration node.id" in message
        assert processes_mentioning(str(base)) == [], "a storage formatter outlived the failed start"
        assert not (base / "kafka-1" / "data").exists(), "node 1's formatted storage survived the failed start"
        assert not (base / kafka.STATE_FILE).exists()
        assert not any(node.pid_path.exists() for node in cluster.nodes)
    finally:
        for pid in processes_mentioning(str(base)):
            os.kill(pid, signal.SIGKILL)


def test_a_recycled_pid_running_something_else_is_not_taken_for_the_node(tmp_path):
    node = KafkaNode(node_id=1, broker_port=1, controller_port=2, directory=tmp_path / "kafka-1")
    node.directory.mkdir()
    node.pid_path.write_text(str(os.getpid()))  # alive, but its command line names no server.properties
    assert node.pid() is None
    node.pid_path.write_text("not a pid")
    assert node.pid() is None
