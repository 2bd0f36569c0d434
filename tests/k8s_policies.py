"""Policies the rendered Kubernetes manifests of deploy/k8s must satisfy: pure functions over documents.

A policy takes the documents of one rendered overlay (``kubectl kustomize deploy/k8s/overlays/<name>`` parsed
into dicts) and whether that overlay is a production one, and returns the list of :class:`Violation` it finds:
the resource and why. An empty list means the policy holds. :data:`POLICIES` lists them all and
:func:`check_all` runs them; the schema checks (:func:`core_schema_violations`, :func:`custom_schema_violations`)
report in the same shape. Nothing here touches a cluster, the network or the file system, except the schema
checks, which read the schema files they are given.

What the policies hold the manifests to (issue 8):

- ``inventory``: the resources the network needs exist: the namespace, every process's Deployment
  (:data:`PROCESSES`) with its labels, a Service for each gRPC edge on its port (named ``grpc``), a database
  Cluster per service, a Kafka with node pools, every topic of services/core/messaging/topics.py, a KafkaUser
  per service and an OpenTelemetryCollector (so that the other policies cannot hold by having nothing to check);
- ``namespaces``: every namespace used is created here with the ``restricted`` Pod Security Standard enforced,
  and no namespaced resource is left without a namespace;
- ``hardened_containers``: every container (init containers too, and the OpenTelemetryCollector's, which the
  restricted namespace would otherwise refuse) runs as non-root, without privilege escalation, with all
  capabilities dropped, a read-only root filesystem and the RuntimeDefault seccomp profile (pod or container
  level); the pod mounts no service-account token and shares no host namespace;
- ``container_resources``: every container (the collector's too) requests cpu and memory and limits memory;
- ``api_probes``: every gRPC edge container has readiness, liveness and startup probes;
- ``termination_grace``: a pod's termination grace period outlasts the preStop sleep plus the gRPC stop grace of
  its edge containers;
- ``network_policies``: a default-deny policy in each namespace with workloads, every Deployment's pods selected
  by some other NetworkPolicy, and ingress to an edge only on its gRPC port;
- ``disruption_budgets``: every Deployment is covered by a PodDisruptionBudget;
- ``autoscalers``: (production) every edge Deployment is scaled by a HorizontalPodAutoscaler;
- ``kafka_security``: the Kafka cluster authorises (``simple``) and authenticates every listener with TLS client
  certificates; every KafkaUser authenticates with TLS and every KafkaTopic/KafkaUser/KafkaNodePool names an
  existing Kafka cluster;
- ``kafka_user_acls``: every KafkaUser's ACLs stay within its service's row of :data:`KAFKA_ACCESS`;
- ``kafka_topics``: every topic is an append-only log that keeps everything, replicated 3 times with
  ``min.insync.replicas`` 2 in production (1/1 allowed elsewhere), on no more replicas than there are brokers;
- ``no_committed_secrets``: no Secret carries data (Secrets are created out of band and only referenced), and
  no ConfigMap carries a private key;
- ``secret_isolation``: a service's processes refer only to their own service's secrets (its KafkaUser's,
  ``<service>-*``), never to a database's superuser, replication or server secret, and each is given its own
  database's ``-app`` secret.

An overlay is a production one unless it is named ``dev`` (see :func:`is_production`): a new overlay is held to
the strict rules until someone decides otherwise.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import jsonschema
import kubernetes_validate  # type: ignore[import-untyped]  # ships no type information

from services.core.messaging.topics import CHECKPOINT_TOPIC, dead_letter_topic, events_topic

Document = Mapping[str, Any]
"""One parsed Kubernetes resource (apiVersion, kind, metadata, ...)."""

NAMESPACE = "referralnet"
PART_OF = "referralnet"
NAME_LABEL = "app.kubernetes.io/name"
COMPONENT_LABEL = "app.kubernetes.io/component"
PART_OF_LABEL = "app.kubernetes.io/part-of"
ENFORCE_LABEL = "pod-security.kubernetes.io/enforce"
STRIMZI_CLUSTER_LABEL = "strimzi.io/cluster"

API, WORKER, RELAY = "api", "worker", "relay"

SERVICE_PROCESSES: Mapping[str, tuple[str, ...]] = {
    "intake": (API, WORKER, RELAY),
    "referral": (API, WORKER, RELAY),
    "audit": (API, WORKER),
    "notify": (API, WORKER, RELAY),
}
"""Each service's processes (components): the gRPC edge, the nameko worker and (when it has events) the relay."""

PROCESSES: tuple[tuple[str, str], ...] = tuple(
    (service, component) for service, components in SERVICE_PROCESSES.items() for component in components)
"""(service, component) of every Deployment, named ``<service>-<component>``."""

API_PORTS: Mapping[str, int] = {"intake": 50051, "referral": 50052, "audit": 50053, "notify": 50054}
"""The gRPC port of each service's edge (services/<service>/edge.py), the Service port named ``grpc``."""

GRPC_GRACE_ENV = "GRPC_GRACE_SECONDS"
DEFAULT_GRPC_GRACE_SECONDS = 10.0
"""services/core/grpcedge/settings.py: the edge's stop grace when ``GRPC_GRACE_SECONDS`` is not set."""
KUBERNETES_DEFAULT_GRACE_SECONDS = 30
"""What Kubernetes uses when a pod sets no ``terminationGracePeriodSeconds``."""

TEN_YEARS_MS = 10 * 365 * 24 * 3600 * 1000
"""The shortest finite retention accepted for a topic of the append-only log (``-1``, forever, is the norm)."""

WORKLOAD_KINDS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod"})
CLUSTER_SCOPED_KINDS = frozenset({
    "Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "PriorityClass", "StorageClass",
    "PersistentVolume", "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration", "IngressClass",
    "RuntimeClass", "APIService"})
CUSTOM_RESOURCE_GROUPS = frozenset({"kafka.strimzi.io", "postgresql.cnpg.io", "opentelemetry.io"})
"""The custom-resource groups deploy/k8s uses (any other non-Kubernetes group is reported too)."""


# -- the Kafka access table ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class KafkaAccess:
    """What one service's KafkaUser may do (``writes``, ``reads``, ``groups``) and must be able to do (``needs_*``).

    ``writes``: topics the service owns: only these may be written. ``reads``: the owned topics and the topics it
    consumes: only these may be read or described. ``groups``: the consumer groups it may join (exact names).
    ``needs_write``/``needs_read`` are what its processes cannot run without (so a user with no ACL at all is
    reported too).
    """

    writes: frozenset[str]
    reads: frozenset[str]
    groups: frozenset[str]
    needs_write: frozenset[str]
    needs_read: frozenset[str]


def worker_of(service: str) -> str:
    """A service's nameko worker: its consumer group and the name of its dead-letter topic."""
    return f"{service}-{WORKER}"


ALL_DEAD_LETTER_TOPICS = frozenset(dead_letter_topic(worker_of(service)) for service in SERVICE_PROCESSES)
"""The dead-letter topic of every worker (``referralnet.<service>-worker.dlq.v1``)."""

EVENTS_TOPICS: tuple[str, ...] = tuple(events_topic(service) for service in ("intake", "referral", "notify"))
"""The events topics of the services that publish events (audit publishes checkpoints instead)."""


def _access(service: str, *, owns: Iterable[str], consumes: Iterable[str], needs_write: Iterable[str],
            needs_read: Iterable[str]) -> KafkaAccess:
    owned = frozenset(owns)
    return KafkaAccess(writes=owned, reads=owned | frozenset(consumes), groups=frozenset({worker_of(service)}),
                       needs_write=frozenset(needs_write), needs_read=frozenset(needs_read))


KAFKA_ACCESS: Mapping[str, KafkaAccess] = {
    # intake publishes its events (edge/relay) and its worker dead-letters what it cannot process; the worker
    # consumes referral's events (services/intake/worker.py) in group intake-worker.
    "intake": _access("intake",
                      owns=[events_topic("intake"), dead_letter_topic(worker_of("intake"))],
                      consumes=[events_topic("referral")],
                      needs_write=[events_topic("intake"), dead_letter_topic(worker_of("intake"))],
                      needs_read=[events_topic("referral")]),
    # referral mirrors intake: it publishes referral events and consumes intake's (services/referral/worker.py).
    "referral": _access("referral",
                        owns=[events_topic("referral"), dead_letter_topic(worker_of("referral"))],
                        consumes=[events_topic("intake")],
                        needs_write=[events_topic("referral"), dead_letter_topic(worker_of("referral"))],
                        needs_read=[events_topic("intake")]),
    # notify publishes its events (NoticeUndeliverable, by its relay) and its worker dead-letters what it cannot
    # process; the worker consumes intake's and referral's events (services/notify/worker.py).
    "notify": _access("notify",
                      owns=[events_topic("notify"), dead_letter_topic(worker_of("notify"))],
                      consumes=[events_topic("intake"), events_topic("referral")],
                      needs_write=[events_topic("notify"), dead_letter_topic(worker_of("notify"))],
                      needs_read=[events_topic("intake"), events_topic("referral")]),
    # audit publishes no events of its own: it owns the signed checkpoints (services/audit/worker.py) and its
    # worker's dead-letter topic; it reads every events topic and every dead-letter topic (the ledger accounts
    # for dead letters, services/audit/adapters/source.py). Granting it referralnet.audit.events.v1 would give
    # it a topic nothing uses, so it is not in the table.
    "audit": _access("audit",
                     owns=[CHECKPOINT_TOPIC, dead_letter_topic(worker_of("audit"))],
                     consumes=[*EVENTS_TOPICS, *sorted(ALL_DEAD_LETTER_TOPICS)],
                     needs_write=[CHECKPOINT_TOPIC],
                     needs_read=[*EVENTS_TOPICS, dead_letter_topic(worker_of("intake")),
                                 dead_letter_topic(worker_of("referral")), dead_letter_topic(worker_of("notify"))]),
}
"""Service -> its Kafka access, from the names of services/core/messaging/topics.py (the least-privilege table)."""

NETWORK_TOPICS: tuple[str, ...] = (*EVENTS_TOPICS, CHECKPOINT_TOPIC, *sorted(ALL_DEAD_LETTER_TOPICS))
"""Every topic the network needs a KafkaTopic for."""

TOPIC_READ_OPERATIONS = frozenset({"Read", "Describe", "DescribeConfigs"})
TOPIC_WRITE_OPERATIONS = frozenset({"Write"})
GROUP_OPERATIONS = frozenset({"Read", "Describe"})
CLUSTER_OPERATIONS = frozenset({"IdempotentWrite"})
"""Operations a service's KafkaUser may be granted; anything else (Create, Delete, Alter, All...) is the
operators' business, and transactional ids are not used at all."""


# -- violations and documents ---------------------------------------------------------------------------------

@dataclass(frozen=True, order=True)
class Violation:
    """One broken rule: which policy, on which resource (``Kind namespace/name``), and why."""

    policy: str
    resource: str
    why: str

    def __str__(self) -> str:
        return f"[{self.policy}] {self.resource}: {self.why}"


class Policy(Protocol):
    """A policy: the violations it finds in one overlay's documents."""

    __name__: str

    def __call__(self, docs: Sequence[Document], *, production: bool) -> list[Violation]: ...


def is_production(overlay: str) -> bool:
    """Whether an overlay is held to the production rules: every overlay but ``dev``."""
    return overlay != "dev"


def resource_of(doc: Document) -> str:
    """``Kind namespace/name`` (``Kind name`` when the document has no namespace)."""
    meta = doc.get("metadata") or {}
    namespace = meta.get("namespace")
    name = meta.get("name", "?")
    return f"{doc.get('kind', '?')} {namespace}/{name}" if namespace else f"{doc.get('kind', '?')} {name}"


def of_kind(docs: Iterable[Document], kind: str) -> list[Document]:
    """The documents of one kind."""
    return [doc for doc in docs if doc.get("kind") == kind]


def name_of(doc: Document) -> str:
    """metadata.name."""
    return str((doc.get("metadata") or {}).get("name", ""))


def namespace_of(doc: Document) -> str:
    """metadata.namespace ('' when unset)."""
    return str((doc.get("metadata") or {}).get("namespace") or "")


def labels_of(doc: Document) -> Mapping[str, str]:
    """metadata.labels."""
    return (doc.get("metadata") or {}).get("labels") or {}


def collector_pod(collector: Document) -> Mapping[str, Any]:
    """The pod an OpenTelemetryCollector runs, as a pod template (its container is ``otc-container``)."""
    spec = collector.get("spec") or {}
    container = {"name": "otc-container", **{key: spec[key] for key in ("securityContext", "resources") if key in spec}}
    return {"metadata": {"labels": {}}, "spec": {
        "securityContext": spec.get("podSecurityContext") or {},
        "containers": [container, *(spec.get("additionalContainers") or [])],
        "initContainers": spec.get("initContainers") or [],
        **{key: spec[key] for key in ("hostNetwork", "hostPID", "terminationGracePeriodSeconds") if key in spec}}}


def pod_template(doc: Document) -> Mapping[str, Any] | None:
    """The pod template (metadata + spec) of a workload, the pod itself for a Pod, the pod an
    OpenTelemetryCollector runs, else None."""
    kind = doc.get("kind")
    spec = doc.get("spec") or {}
    if kind == "OpenTelemetryCollector":
        return collector_pod(doc)
    if kind == "Pod":
        return doc
    if kind == "CronJob":
        return ((spec.get("jobTemplate") or {}).get("spec") or {}).get("template")
    if kind in WORKLOAD_KINDS:
        return spec.get("template")
    return None


def workloads(docs: Iterable[Document]) -> Iterator[tuple[Document, Mapping[str, Any], Mapping[str, Any]]]:
    """(document, pod labels, pod spec) of every workload."""
    for doc in docs:
        template = pod_template(doc)
        if template is not None:
            yield doc, (template.get("metadata") or {}).get("labels") or {}, template.get("spec") or {}


def containers_of(pod_spec: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """(``container <name>`` or ``init container <name>``, container) of a pod spec."""
    found = [(f"init container {c.get('name')}", c) for c in pod_spec.get("initContainers") or []]
    return found + [(f"container {c.get('name')}", c) for c in pod_spec.get("containers") or []]


def selects(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """Whether a LabelSelector (matchLabels, matchExpressions) selects these labels (an empty one selects all)."""
    selector = selector or {}
    if any(labels.get(key) != value for key, value in (selector.get("matchLabels") or {}).items()):
        return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression.get("key"), expression.get("operator"), expression.get("values") or []
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def service_selects(selector: Mapping[str, str] | None, labels: Mapping[str, str]) -> bool:
    """Whether a Service's (plain map) selector selects these labels; a Service without one selects nothing."""
    return bool(selector) and all(labels.get(key) == value for key, value in (selector or {}).items())


def _number(value: Any) -> float | None:
    try:
        return float(str(value).strip())
    except ValueError:
        return None


# -- environment variables ------------------------------------------------------------------------------------

_UNRESOLVED = object()


def container_env(container: Mapping[str, Any], docs: Sequence[Document], namespace: str) -> dict[str, Any]:
    """A container's environment as far as the documents tell: envFrom ConfigMaps, then env (which wins).

    A value that cannot be known from the documents (a Secret, a field reference, a ConfigMap not rendered
    here) maps to an opaque marker: :func:`env_value` reports it as unknown.
    """
    maps = {name_of(doc): doc.get("data") or {} for doc in of_kind(docs, "ConfigMap")
            if namespace_of(doc) in ("", namespace)}
    env: dict[str, Any] = {}
    for source in container.get("envFrom") or []:
        prefix = source.get("prefix") or ""
        ref = source.get("configMapRef")
        if ref is not None and ref.get("name") in maps:
            env.update({prefix + key: value for key, value in maps[ref["name"]].items()})
    for item in container.get("env") or []:
        name = item.get("name")
        if "value" in item:
            env[name] = item["value"]
        elif item.get("valueFrom", {}).get("configMapKeyRef"):
            ref = item["valueFrom"]["configMapKeyRef"]
            env[name] = maps.get(ref.get("name"), {}).get(ref.get("key"), _UNRESOLVED)
        else:
            env[name] = _UNRESOLVED
    return env


# -- the policies ---------------------------------------------------------------------------------------------

def inventory(docs: Sequence[Document], *, production: bool) -> list[Violation]:
    """The resources the network needs are all there, with the labels and ports the other policies rely on."""
    found: list[Violation] = []

    def missing(resource: str, why: str) -> None:
        found.append(Violation("inventory", resource, why))

    if not any(name_of(doc) == NAMESPACE for doc in of_kind(docs, "Namespace")):
        missing(f"Namespace {NAMESPACE}", "is not created")
    deployments = {name_of(doc): doc for doc in of_kind(docs, "Deployment")}
    services = of_kind(docs, "Service")
    for service, component in PROCESSES:
        name = f"{service}-{component}"
        doc = deployments.get(name)
        if doc is None:
            missing(f"Deployment {NAMESPACE}/{name}", "is missing")
            continue
        labels = (pod_template(doc) or {}).get("metadata", {}).get("labels") or {}
        wanted = {NAME_LABEL: service, COMPONENT_LABEL: component, PART_OF_LABEL: PART_OF}
        wrong = {key: labels.get(key) for key, value in wanted.items() if labels.get(key) != value}
        if wrong:
            missing(resource_of(doc), f"pod labels {wrong} should be {wanted}")
        if component == API and not any(
                service_selects((svc.get("spec") or {}).get("selector"), labels)
                and any(port.get("name") == "grpc" and port.get("port") == API_PORTS[service]
                        for port in (svc.get("spec") or {}).get("ports") or [])
                for svc in services):
            missing(resource_of(doc), f"no Service selects it with a port named grpc on {API_PORTS[service]}")
    clusters = {name_of(doc) for doc in of_kind(docs, "Cluster")}
    for service in SERVICE_PROCESSES:
        if f"{service}-db" not in clusters:
            missing(f"Cluster {NAMESPACE}/{service}-db", "the service's database cluster is missing")
    for kind in ("Kafka", "KafkaNodePool", "OpenTelemetryCollector"):
        if not of_kind(docs, kind):
            missing(f"{kind} {NAMESPACE}/?", "none is defined")
    topics = {topic_name(doc) for doc in of_kind(docs, "KafkaTopic")}
    for topic in NETWORK_TOPICS:
        if topic not in topics:
            missing(f"KafkaTopic {NAMESPACE}/{topic}", "the topic is missing (services/core/messaging/topics.py)")
    users = {kafka_user_service(doc) for doc in of_kind(docs, "KafkaUser")}
    for service in SERVICE_PROCESSES:
        if service not in users:
            missing(f"KafkaUser {NAMESPACE}/{service}", "the service has no KafkaUser")
    return found


def namespaces(docs: Sequence[Document], *, production: bool) -> list[Violation]:
    """Every namespace used is created here and enforces the restricted Pod Security Standard."""
    found: list[Violation] = []
    created = {name_of(doc): doc for doc in of_kind(docs, "Namespace")}
    for doc in created.values():
        if labels_of(doc).get(ENFORCE_LABEL) != "restricted":
            found.append(Violation("namespaces", resource_of(doc),
                                   f"label {ENFORCE_LABEL} is {labels_of(doc).get(ENFORCE_LABEL)!r}, not 'restricted'"))
    for doc in docs:
        if doc.get("kind") in CLUSTER_SCOPED_KINDS:
            continue
        namespace = namespace_of(doc)
        if not namespace:
            found.append(Violation("namespaces", resource_of(doc),
                                   "has no namespace (it would land in whatever namespace kubectl points at)"))
        elif namespace not in created:
            found.append(Violation("namespaces", resource_of(doc), f"namespace {namespace} is not created here"))
    return found


def hardened_containers(docs: Sequence[Document], *, production: bool) -> list[Violation]:
    """Every container of every workload runs locked down (the restricted profile and more)."""
    found: list[Violation] = []
    for doc, _labels, spec in workloads(docs):
        pod_context = spec.get("securityContext") or {}

        def bad(why: str, doc: Document = doc) -> None:
            found.append(Violation("hardened_containers", resource_of(doc), why))

        if spec.get("automountServiceAccountToken") is not False and doc.get("kind") != "OpenTelemetryCollector":
            bad("automountServiceAccountToken is not false")  # the collector's resource has no such field
        for host in ("hostNetwork", "hostPID", "hostIPC"):
            if spec.get(host):
                bad(f"{host} is true")
        for where, container in containers_of(spec):
            context = container.get("securityContext") or {}
            if context.get("runAsNonRoot", pod_context.get("runAsNonRoot")) is not True:
                bad(f"{where}: runAsNonRoot is not true")
            if context.get("runAsUser", pod_context.get("runAsUser")) == 0:
                bad(f"{where}: runAsUser is 0")
            if context.get("privileged"):
                bad(f"{where}: privileged")
            if context.get("allowPrivilegeEscalation") is not False:
                bad(f"{where}: allowPrivilegeEscalation is not false")
            if "ALL" not in ((context.get("capabilities") or {}).get("drop") or []):
                bad(f"{where}: capabilities.drop does not include ALL")
            if (context.get("capabilities") or {}).get("add"):
                bad(f"{where}: adds capabilities {context['capabilities']['add']}")
            if context.get("readOnlyRootFilesystem") is not True:
                bad(f"{where}: readOnlyRootFilesystem is not true")
            seccomp = context.get("seccompProfile") or pod_context.get("seccompProfile") or {}
            if seccomp.get("type") != "RuntimeDefault":
                bad(f"{where}: seccompProfile is {seccomp.get('type')!r}, not RuntimeDefault (pod or container)")
    return found


def container_resources(docs: Sequence[Document], *, production: bool) -> list[Violation]:
    """Every container requests cpu and memory and has a memory limit."""
    found: list[Violation] = []
    for doc, _labels, spec in workloads(docs):
        for where, container in containers_of(spec):
            resources = container.get("resources") or {}
            lacking = [f"requests.{key}" for key in ("cpu", "memory") if key not in (resources.get("requests") or {})]
            lacking += ["limits.memory"] if "memory" not in (resources.get("limits") or {}) else []
            if lacking:
                found.append(Violation("container_resources", resource_of(doc), f"{where}: no {', '.join(lacking)}"))
    return found


def is_api(labels: Mapping[str, str]) -> bool:
    """Whether pod labels mark a gRPC edge (component api)."""
    return labels.get(COMPONENT_LABEL) == API


def api_probes(docs: Sequence[Document], *, production: bool) -> list[Violation]:
    """Every gRPC edge container has readiness, liveness and startup probes."""
    found: list[Violation] = []
    for doc, labels, spec in workloads(docs):
        if not is_api(labels):
            continue
        for where, container in containers_of(spec):
            if where.startswith("init "):
                continue
            lacking = [probe for probe in ("readinessProbe", "livenessProbe", "startupProbe")
                       if not container.get(probe)]
            if lacking:
                found.append(Violation("api_probes", resource_of(doc), f"{where}: no {', '.join(lacking)}"))
    return found


def pre_stop_seconds(container: Mapping[str, Any]) -> float:
    """How long a container's preStop hook sleeps (``sleep: {seconds}`` or an exec ``sleep N``), else 0.

    The hook runs before SIGTERM and its time counts against the pod's termination grace period.
    """
    hook = (container.get("lifecycle") or {}).get("preStop") or {}
    if hook.get("sleep"):
        return _number(hook["sleep"].get("seconds")) or 0.0
    found = re.search(r"\bsleep\s+(\d+(?:\.\d+)?)\b", " ".join(map(str, (hook.get("exec") or {}).get("command") or [])))
    return float(found.group(1)) if found else 0.0


def termination_grace(docs: Sequence[Document], *, production: bool) -> list[Violation]:
    """terminationGracePeriodSeconds exceeds the preStop sleep plus the gRPC stop grace of every edge container
    (and of any container that sets ``GRPC_GRACE_SECONDS``): Kubernetes must not kill calls the edge is still
    letting finish.

    An unset period is Kubernetes' default (30 s); an unset ``GRPC_GRACE_SECONDS`` the edge's default (10 s).
    """
    found: list[Violation] = []
    for doc, labels, spec in workloads(docs):
        period = spec.get("terminationGracePeriodSeconds", KUBERNETES_DEFAULT_GRACE_SECONDS)
        for where, container in containers_of(spec):
            env = container_env(container, docs, namespace_of(doc))
            if not (is_api(labels) and not where.startswith("init ")) and GRPC_GRACE_ENV not in env:
                continue
            raw = env.get(GRPC_GRACE_ENV, DEFAULT_GRPC_GRACE_SECONDS)
            grace = None if raw is _UNRESOLVED else _number(raw)
            pre_stop = pre_stop_seconds(container)
            if grace is None:
                found.append(Violation("termination_grace", resource_of(doc),
                                       f"{where}: {GRPC_GRACE_ENV} cannot be read from the manifests"))
            elif _number(period) is None or float(period) <= pre_stop + grace:
                found.append(Violation("termination_grace", resource_of(doc),
                                       f"{where}: terminationGracePeriodSeconds {period} is not longer than the "
                                       f"preStop sleep {pre_stop:g} + {GRPC_GRACE_ENV} {raw}"))
    return found


def is_default_deny(policy: Document) -> bool:
    """Empty podSelector, both policy types, no ingress or egress rule."""
    spec = policy.get("spec") or {}
    return (not spec.get("podSelector") and set(spec.get("policyTypes") or []) == {"Ingress", "Egress"}
            and not spec.get("ingress") and not spec.get("egress"))


def grpc_port_numbers(pod_spec: Mapping[str, Any]) -> set[int | str]:
    """The container port named ``grpc`` of a pod, by name and number (how a NetworkPolicy may refer to it)."""
    ports: set[int | str] = set()
    for _where, container in containers_of(pod_spec):
        for port in container.get("ports") or []:
            if port.get("name") == "grpc":
                ports.update({"grpc", int(port.get("containerPort", 0))})
    return ports


def network_policies(docs: Sequence[Document], *, production: bool) -> list[Violation]:
    """Default deny everywhere; every Deployment's pods allowed something by a policy; edges only on gRPC."""
    found: list[Violation] = []
    policies = of_kind(docs, "NetworkPolicy")
    for namespace in sorted({namespace_of(doc) for doc, _labels, _spec in workloads(docs)}):
        if not any(is_default_deny(p) and namespace_of(p) == namespace for p in policies):
            found.append(Violation("network_policies", f"Namespace {namespace}",
                                   "no default-deny NetworkPolicy (empty podSelector, Ingress and Egress, no rules)"))
    for doc, labels, spec in workloads(docs):
        if doc.get("kind") != "Deployment":
            continue
        applying = [p for p in policies if namespace_of(p) == namespace_of(doc)
                    and (p.get("spec") or {}).get("podSelector") and selects(p["spec"]["podSelector"], labels)]
        if not applying:
            found.append(Violation("network_policies", resource_of(doc),
                                   f"no NetworkPolicy selects its pods (service {labels.get(NAME_LABEL)})"))
        if not is_api(labels):
            continue
        grpc = grpc_port_numbers(spec)
        for policy in applying:
            for rule in (policy.get("spec") or {}).get("ingress") or []:
                ports = {port.get("port") for port in rule.get("ports") or []}
                if not ports or not ports <= grpc:
                    shown = sorted(map(str, ports)) or "every port"
                    found.append(Violation("network_policies", resource_of(doc),
                                           f"{resource_of(policy)} admits ingress on {shown}, not only its grpc port"))
    return found


def disruption_budgets(docs: Sequence[Document], *, production: bool) -> list[Violation]:
    """Every Deployment is covered by a PodDisruptionBudget selecting its pods."""
    budgets = of_kind(docs, "PodDisruptionBudget")
    return [Violation("disruption_budgets", resource_of(doc), "no PodDisruptionBudget selects its pods")
            for doc, labels, _spec in workloads(docs) if doc.get("kind") == "Deployment"
            and not any(namespace_of(b) == namespace_of(doc) and (b.get("spec") or {}).get("selector")
                        and selects(b["spec"]["selector"], labels) for b in budgets)]


def autoscalers(docs: Sequence[Document], *, production: bool) -> list[Violation]:
    """In production, every edge Deployment has a HorizontalPodAutoscaler."""
    if not production:
        return []
    scaled = {(namespace_of(hpa), (hpa.get("spec") or {}).get("scaleTargetRef", {}).get("kind"),
               (hpa.get("spec") or {}).get("scaleTargetRef", {}).get("name"))
              for hpa in of_kind(docs, "HorizontalPodAutoscaler")}
    return [Violation("autoscalers", resource_of(doc), "no HorizontalPodAutoscaler scales it")
            for doc, labels, _spec in workloads(docs) if doc.get("kind") == "Deployment" and is_api(labels)
            and (namespace_of(doc), "Deployment", name_of(doc)) not in scaled]


def kafka_security(docs: Sequence[Document], *, production: bool) -> list[Violation]:
    """Kafka authorises with ACLs and authenticates every listener with mTLS; users and topics name a cluster."""
    found: list[Violation] = []
    clusters = {name_of(doc) for doc in of_kind(docs, "Kafka")}
    for doc in of_kind(docs, "Kafka"):
        kafka = (doc.get("spec") or {}).get("kafka") or {}
        if (kafka.get("authorization") or {}).get("type") != "simple":
            found.append(Violation("kafka_security", resource_of(doc), "authorization is not 'simple'"))
        for listener in kafka.get("listeners") or []:
            if listener.get("tls") is not True or (listener.get("authentication") or {}).get("type") != "tls":
                found.append(Violation("kafka_security", resource_of(doc),
                                       f"listener {listener.get('name')} is not TLS with TLS client authentication"))
    for doc in of_kind(docs, "KafkaUser"):
        authentication = ((doc.get("spec") or {}).get("authentication") or {}).get("type")
        if authentication not in ("tls", "tls-external"):
            found.append(Violation("kafka_security", resource_of(doc),
                                   f"authentication is {authentication!r}, not tls"))
    for doc in [*of_kind(docs, "KafkaUser"), *of_kind(docs, "KafkaTopic"), *of_kind(docs, "KafkaNodePool")]:
        if labels_of(doc).get(STRIMZI_CLUSTER_LABEL) not in clusters:
            found.append(Violation("kafka_security", resource_of(doc),
                                   f"label {STRIMZI_CLUSTER_LABEL} names no Kafka defined here"))
    return found


def kafka_user_service(user: Document) -> str | None:
    """The service a KafkaUser belongs to: its app.kubernetes.io/name label, else its name (or name's prefix)."""
    for candidate in (labels_of(user).get(NAME_LABEL), name_of(user), name_of(user).split("-")[0]):
        if candidate in KAFKA_ACCESS:
            return candidate
    return None


def acl_rules(user: Document) -> list[Mapping[str, Any]]:
    """A KafkaUser's ACL rules (``spec.authorization.acls``)."""
    return ((user.get("spec") or {}).get("authorization") or {}).get("acls") or []


def rule_operations(rule: Mapping[str, Any]) -> set[str]:
    """The operations of a rule (``operations``, or the deprecated single ``operation``)."""
    return set(rule.get("operations") or []) | ({rule["operation"]} if rule.get("operation") else set())


def kafka_user_acls(docs: Sequence[Document], *, production: bool) -> list[Violation]:
    """Every KafkaUser's allow rules stay within its service's row of :data:`KAFKA_ACCESS` and cover its needs.

    Deny rules only take rights away and are not checked. Every allow rule must name an exact (literal) topic or
    group: no ``*``, no prefix pattern.
    """
    found: list[Violation] = []
    for user in of_kind(docs, "KafkaUser"):
        def bad(why: str, user: Document = user) -> None:
            found.append(Violation("kafka_user_acls", resource_of(user), why))

        service = kafka_user_service(user)
        if service is None:
            bad(f"belongs to no known service (label {NAME_LABEL} or name among {sorted(KAFKA_ACCESS)})")
            continue
        access = KAFKA_ACCESS[service]
        written: set[str] = set()
        read: set[str] = set()
        for rule in acl_rules(user):
            if rule.get("type", "allow") != "allow":
                continue
            resource = rule.get("resource") or {}
            kind, name = str(resource.get("type")), str(resource.get("name") or "")
            operations = rule_operations(rule)
            if kind in ("topic", "group") and (resource.get("patternType", "literal") != "literal" or not name
                                               or "*" in str(name)):
                bad(f"{kind} {name!r} pattern {resource.get('patternType', 'literal')}: only exact names are allowed")
                continue
            if kind == "topic":
                for operation in sorted(operations):
                    if operation in TOPIC_WRITE_OPERATIONS and name not in access.writes:
                        bad(f"may {operation} topic {name}, which {service} does not own")
                    elif operation in TOPIC_READ_OPERATIONS and name not in access.reads:
                        bad(f"may {operation} topic {name}, which {service} neither owns nor consumes")
                    elif operation not in TOPIC_WRITE_OPERATIONS | TOPIC_READ_OPERATIONS:
                        bad(f"may {operation} topic {name}: a service needs only {sorted(TOPIC_READ_OPERATIONS)}"
                            f" and Write")
                written |= {name} if "Write" in operations else set()
                read |= {name} if "Read" in operations else set()
            elif kind == "group":
                if name not in access.groups:
                    bad(f"may use consumer group {name}, not {sorted(access.groups)}")
                elif not operations <= GROUP_OPERATIONS:
                    bad(f"may {sorted(operations - GROUP_OPERATIONS)} group {name}")
            elif kind == "cluster":
                if not operations <= CLUSTER_OPERATIONS:
                    bad(f"may {sorted(operations - CLUSTER_OPERATIONS)} on the cluster")
            else:
                bad(f"has a rule on {kind} {name!r}: services use no {kind}")
        for topic in sorted(access.needs_write - written):
            bad(f"cannot Write {topic}, which {service} publishes to")
        for topic in sorted(access.needs_read - read):
            bad(f"cannot Read {topic}, which {service} consumes")
    return found


def topic_name(topic: Document) -> str:
    """The Kafka name of a KafkaTopic: spec.topicName, else metadata.name."""
    return str((topic.get("spec") or {}).get("topicName") or name_of(topic))


def kafka_topics(docs: Sequence[Document], *, production: bool) -> list[Violation]:
    """Replication (3 replicas, min.insync.replicas 2 in production) and append-only retention of every topic."""
    found: list[Violation] = []
    brokers = sum(int((pool.get("spec") or {}).get("replicas") or 0) for pool in of_kind(docs, "KafkaNodePool")
                  if "broker" in ((pool.get("spec") or {}).get("roles") or []))
    for topic in of_kind(docs, "KafkaTopic"):
        def bad(why: str, topic: Document = topic) -> None:
            found.append(Violation("kafka_topics", resource_of(topic), why))

        spec = topic.get("spec") or {}
        config = spec.get("config") or {}
        replicas = _number(spec.get("replicas"))
        in_sync = _number(config.get("min.insync.replicas", 1))
        if replicas is None or in_sync is None:
            bad(f"replicas {spec.get('replicas')!r} / min.insync.replicas {config.get('min.insync.replicas')!r}"
                " are not numbers")
            continue
        if production and replicas < 3:
            bad(f"replicas {spec.get('replicas')} < 3 in production")
        if production and in_sync < 2:
            bad(f"min.insync.replicas {config.get('min.insync.replicas', 'unset (1)')} < 2 in production")
        if in_sync > replicas:
            bad(f"min.insync.replicas {in_sync:g} > replicas {replicas:g}: no write could succeed")
        if brokers and replicas > brokers:
            bad(f"replicas {replicas:g} > the {brokers} brokers of the node pools")
        retention = _number(config.get("retention.ms"))
        if retention is None or not (retention == -1 or retention >= TEN_YEARS_MS):
            bad(f"retention.ms {config.get('retention.ms', 'unset (7 days)')} is neither -1 nor at least 10 years")
        if str(config.get("retention.bytes", -1)) != "-1":
            bad(f"retention.bytes {config['retention.bytes']} would delete history")
        if str(config.get("cleanup.policy", "delete")) != "delete":
            bad(f"cleanup.policy {config['cleanup.policy']} would compact the log")
        if str(config.get("unclean.leader.election.enable", "false")).lower() != "false":
            bad("unclean.leader.election.enable would lose acknowledged records")
    return found


def no_committed_secrets(docs: Sequence[Document], *, production: bool) -> list[Violation]:
    """No Secret carries data (create them out of band, reference them only); no ConfigMap holds a private key."""
    found = [Violation("no_committed_secrets", resource_of(doc),
                       f"carries {' and '.join(key for key in ('data', 'stringData') if doc.get(key))}: "
                       "secrets are created out of band and only referenced")
             for doc in of_kind(docs, "Secret") if doc.get("data") or doc.get("stringData")]
    found += [Violation("no_committed_secrets", resource_of(doc), f"key {key} holds a private key")
              for doc in of_kind(docs, "ConfigMap") for key, value in (doc.get("data") or {}).items()
              if "PRIVATE KEY" in str(value)]
    return found


def secret_references(pod_spec: Mapping[str, Any]) -> set[str]:
    """The names of every Secret a pod spec refers to (env, envFrom, volumes, projected volumes)."""
    names: set[str] = set()
    for _where, container in containers_of(pod_spec):
        names |= {item["valueFrom"]["secretKeyRef"].get("name") for item in container.get("env") or []
                  if (item.get("valueFrom") or {}).get("secretKeyRef")}
        names |= {source["secretRef"].get("name") for source in container.get("envFrom") or []
                  if source.get("secretRef")}
    for volume in pod_spec.get("volumes") or []:
        if volume.get("secret"):
            names.add(volume["secret"].get("secretName"))
        for source in (volume.get("projected") or {}).get("sources") or []:
            if source.get("secret"):
                names.add(source["secret"].get("name"))
    return {str(name) for name in names if name}


OPERATOR_ONLY_DATABASE_SECRETS = ("superuser", "replication", "server")
"""CloudNativePG's ``<cluster>-<suffix>`` secrets no process of the network may see (the operator's own)."""


def secret_isolation(docs: Sequence[Document], *, production: bool) -> list[Violation]:
    """A process refers only to its own service's secrets and is given its database's ``-app`` secret.

    A secret belongs to a service when it is named after the service's KafkaUser (Strimzi's user secret) or
    starts with ``<service>-`` (``<service>-db-app`` from CloudNativePG, ``<service>-kek``, ``<service>-network``
    ...). The database's superuser, replication and server secrets are nobody's to mount.
    """
    found: list[Violation] = []
    user_secrets = {name_of(user): kafka_user_service(user) or "?" for user in of_kind(docs, "KafkaUser")}

    def owner_of(secret: str) -> str | None:
        if secret in user_secrets:
            return user_secrets[secret]
        return next((service for service in SERVICE_PROCESSES if secret.startswith(f"{service}-")), None)

    clusters = {name_of(cluster) for cluster in of_kind(docs, "Cluster")}
    operator_only = {f"{cluster}-{suffix}" for cluster in clusters for suffix in OPERATOR_ONLY_DATABASE_SECRETS}
    for doc, labels, spec in workloads(docs):
        service = str(labels.get(NAME_LABEL, ""))
        if service not in SERVICE_PROCESSES:
            continue
        referenced = secret_references(spec)
        for name in sorted(referenced):
            owner = owner_of(name)
            if owner not in (None, service):
                found.append(Violation("secret_isolation", resource_of(doc), f"refers to {name}, a secret of {owner}"))
            elif name in operator_only:
                found.append(Violation("secret_isolation", resource_of(doc),
                                       f"refers to {name}, which only the database operator may use"))
        own = f"{service}-db-app"
        if f"{service}-db" in clusters and own not in referenced:
            found.append(Violation("secret_isolation", resource_of(doc), f"is not given its database secret {own}"))
    return found


POLICIES: tuple[Policy, ...] = (
    inventory, namespaces, hardened_containers, container_resources, api_probes, termination_grace,
    network_policies, disruption_budgets, autoscalers, kafka_security, kafka_user_acls, kafka_topics,
    no_committed_secrets, secret_isolation)
"""Every policy, in the order of the module docstring."""


def check_all(docs: Sequence[Document], *, production: bool) -> list[Violation]:
    """Every policy's violations, in policy order."""
    return [violation for policy in POLICIES for violation in policy(docs, production=production)]


# -- schemas --------------------------------------------------------------------------------------------------

def api_group(doc: Document) -> str:
    """The API group of a document ('' for the core group)."""
    api_version = str(doc.get("apiVersion", ""))
    return api_version.split("/", 1)[0] if "/" in api_version else ""


def is_custom_resource(doc: Document) -> bool:
    """Whether a document's kind comes from a CRD (its group has a dot and is not a Kubernetes one)."""
    group = api_group(doc)
    return "." in group and not group.endswith(".k8s.io")


def core_schema_violations(docs: Sequence[Document], kubernetes_version: str) -> list[Violation]:
    """Every built-in kind validated (strict: no unknown field) against the schemas kubernetes-validate ships."""
    found: list[Violation] = []
    for doc in docs:
        if is_custom_resource(doc):
            continue
        try:
            kubernetes_validate.validate(dict(doc), kubernetes_version, strict=True)
        except kubernetes_validate.ValidationError as error:
            path = ".".join(str(part) for part in error.path) or "(document)"
            found.append(Violation("core_schema", resource_of(doc), f"{path}: {error.message}"))
        except kubernetes_validate.SchemaNotFoundError as error:
            found.append(Violation("core_schema", resource_of(doc), error.message))
    return found


def custom_schema_path(schemas: Path, doc: Document) -> Path:
    """``<schemas>/<group>/<kind lower>_<version>.json`` (the kubeconform / CRDs-catalog layout)."""
    version = str(doc.get("apiVersion", "")).split("/")[-1]
    return schemas / api_group(doc) / f"{str(doc.get('kind', '')).lower()}_{version}.json"


@functools.lru_cache(maxsize=64)
def _schema_validator(path: Path) -> Any:
    schema = json.loads(path.read_text(encoding="utf-8"))
    validator_class: Callable[[Any], Any] = jsonschema.validators.validator_for(
        schema, default=jsonschema.Draft7Validator)
    return validator_class(schema)


def custom_schema_violations(docs: Sequence[Document], schemas: Path) -> list[Violation]:
    """Every custom resource validated against its JSON schema; one with no schema is a violation."""
    found: list[Violation] = []
    for doc in docs:
        if not is_custom_resource(doc):
            continue
        path = custom_schema_path(schemas, doc)
        if not path.is_file():
            found.append(Violation("custom_schema", resource_of(doc),
                                   f"no schema for {doc.get('apiVersion')} {doc.get('kind')} ({path} is missing)"))
            continue
        for error in sorted(_schema_validator(path).iter_errors(dict(doc)), key=lambda e: list(map(str, e.path))):
            where = ".".join(str(part) for part in error.path) or "(document)"
            found.append(Violation("custom_schema", resource_of(doc), f"{where}: {error.message}"))
    return found
