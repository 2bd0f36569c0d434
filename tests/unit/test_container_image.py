"""The container image recipe (Dockerfile) and its entrypoint (deploy/k8s/entrypoint.sh), checked without Docker.

No container engine runs here, so the Dockerfile is read: two stages, compilers only in the builder, the
final stage runs as a numeric non-root user and starts the entrypoint. The entrypoint is run for real with
``sh`` (the image's /bin/sh is dash too), with stand-ins for ``python`` and ``nameko`` on PATH that print the
command they were given: every process name the manifests use must map to the right command. Its
``install-network`` step is run on a Secret laid out as kubelet does (flat keys, group-readable, ``..data``
entries) and the result must load with the project's own loaders, which refuse loose key files.
"""

from __future__ import annotations

import base64
import os
import re
import shlex
import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.core.identity.errors import KeystoreError
from services.core.identity.keystore import (
    load_directory,
    load_service_probe_tls,
    load_service_signing_key,
    load_service_tls,
)
from services.core.identity.network import init_network
from services.core.keyvault.routing_keys import load_routing_keys

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
ENTRYPOINT = REPO / "deploy" / "k8s" / "entrypoint.sh"
BASE = REPO / "deploy" / "k8s" / "base"
IMAGE = "referralnet"
SH = shutil.which("sh") or "/bin/sh"
COMPILERS = ("build-essential", "gcc", "g++", "clang", "make", "libc6-dev", "python3-dev")


# -- the Dockerfile --------------------------------------------------------------------------------------------

def dockerfile_stages(text: str) -> list[tuple[str, list[str]]]:
    """(FROM line, instructions) of each stage; continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", text)
    stages: list[tuple[str, list[str]]] = []
    for raw in joined.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            stages.append((line, []))
        elif stages:
            stages[-1][1].append(line)
    return stages


def _instructions(stage: tuple[str, list[str]], keyword: str) -> list[str]:
    return [line for line in stage[1] if line.split(None, 1)[0].upper() == keyword]


def dockerfile_problems(text: str) -> list[str]:
    """What is wrong with a Dockerfile's structure (empty when nothing is)."""
    stages = dockerfile_stages(text)
    if len(stages) < 2:
        return ["fewer than two stages"]
    problems = []
    if not re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim", text, re.MULTILINE) or not all(
            line.split()[1] == "${PYTHON_IMAGE}" for line, _ in stages):
        problems.append("stages are not all FROM ${PYTHON_IMAGE} (python:3.11-slim)")
    builder, final = stages[0], stages[-1]
    if not builder[0].endswith("AS builder"):
        problems.append("the first stage is not named builder")
    builder_runs = " ".join(_instructions(builder, "RUN"))
    if not re.search(r"(PIP_CONSTRAINT=\S*constraints\.txt pip install|pip install -c \S*constraints\.txt) \.(\s|$)",
                     builder_runs):
        problems.append("the builder does not pip install the project with constraints.txt")
    final_runs = " ".join(_instructions(final, "RUN"))
    if "apt-get install" in final_runs or "pip install" in final_runs:
        problems.append("the final stage installs packages")
    problems += [f"the final stage mentions {compiler}" for compiler in COMPILERS
                 if re.search(rf"(^|\s){re.escape(compiler)}(\s|$)", " ".join(final[1]))]
    copies = _instructions(final, "COPY")
    if not any("--from=builder" in line and "/opt/venv" in line for line in copies):
        problems.append("the final stage does not copy the venv from the builder")
    if [line for line in copies if "--from=builder" not in line and "deploy/k8s/entrypoint.sh" not in line]:
        problems.append("the final stage copies more than the venv and the entrypoint")
    users = _instructions(final, "USER")
    uid, _, gid = (users[-1].split()[1] if users else "").partition(":")
    if not uid.isdigit() or int(uid) == 0 or (gid and (not gid.isdigit() or int(gid) == 0)):
        problems.append(f"the final stage's USER is {uid or 'unset'}:{gid}, not a numeric non-root user")
    elif int(uid) != 10001:
        problems.append(f"USER {uid} is not the manifests' runAsUser 10001")
    entrypoints = _instructions(final, "ENTRYPOINT")
    target = re.search(r'\["([^"]+)"\]', entrypoints[-1]) if entrypoints else None
    if target is None or not any(line.endswith(target.group(1)) and "deploy/k8s/entrypoint.sh" in line
                                 for line in copies):
        problems.append("the ENTRYPOINT is not the copied deploy/k8s/entrypoint.sh")
    return problems


def test_the_dockerfile_has_the_agreed_structure():
    assert dockerfile_problems(DOCKERFILE.read_text()) == []


def _plant(find: str, replace: str) -> str:
    text = DOCKERFILE.read_text()
    assert find in text, find
    return text.replace(find, replace, 1)


@pytest.mark.parametrize(("planted", "problem"), [
    (lambda: _plant("FROM ${PYTHON_IMAGE} AS runtime", "FROM ubuntu:24.04 AS runtime"), "python:3.11-slim"),
    (lambda: _plant("USER 10001:10001", "USER root"), "numeric non-root"),
    (lambda: _plant("USER 10001:10001", "USER 0:0"), "numeric non-root"),
    (lambda: _plant("USER 10001:10001", "# no user"), "numeric non-root"),
    (lambda: _plant("WORKDIR /\n", "RUN apt-get update && apt-get install -y gcc\nWORKDIR /\n"), "installs"),
    (lambda: _plant("COPY --from=builder /opt/venv /opt/venv",
                    "COPY --from=builder /opt/venv /opt/venv\nCOPY services /app/services"), "copies more"),
    (lambda: _plant("COPY --from=builder /opt/venv /opt/venv", "COPY --from=builder /usr /usr"), "venv"),
    (lambda: _plant('ENTRYPOINT ["/usr/local/bin/referralnet-entrypoint"]', 'ENTRYPOINT ["python"]'),
     "ENTRYPOINT"),
    (lambda: _plant("PIP_CONSTRAINT=/src/constraints.txt pip install .", "pip install ."), "constraints"),
    (lambda: "\n".join(line for line in DOCKERFILE.read_text().splitlines()
                       if not line.startswith("FROM ${PYTHON_IMAGE} AS runtime")), "two stages"),
], ids=["base", "root-name", "uid-0", "no-user", "apt-in-final", "extra-copy", "no-venv", "entrypoint",
        "constraints", "one-stage"])
def test_a_planted_violation_is_reported(planted, problem):
    problems = dockerfile_problems(planted())
    assert any(problem in found for found in problems), problems


def test_the_build_context_lets_in_what_the_dockerfile_copies():
    stages = dockerfile_stages(DOCKERFILE.read_text())
    allowed = {line[1:].rstrip("/") for line in DOCKERIGNORE.read_text().splitlines() if line.startswith("!")}
    sources = []
    for stage in stages:
        for line in _instructions(stage, "COPY"):
            words = [word for word in line.split()[1:] if not word.startswith("--")]
            if "--from=" not in line:
                sources += words[:-1]
    assert sources
    for source in sources:
        assert source.rstrip("/") in allowed, f"{source} is excluded by .dockerignore"
        assert (REPO / source).exists(), source


# -- the entrypoint's process names ----------------------------------------------------------------------------

def _containers(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        for key in ("containers", "initContainers"):
            for container in node.get(key) or []:
                if isinstance(container, dict):
                    yield container
        for value in node.values():
            yield from _containers(value)
    elif isinstance(node, list):
        for item in node:
            yield from _containers(item)


def manifest_processes() -> set[tuple[str, ...]]:
    """The args of every container running the network's image in deploy/k8s (raw files: no kubectl needed)."""
    found: set[tuple[str, ...]] = set()
    for path in sorted((REPO / "deploy" / "k8s").rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            for container in _containers(doc):
                if str(container.get("image", "")).split(":")[0] == IMAGE:
                    found.add(tuple(str(arg) for arg in container.get("args") or []))
    return found


EXPECTED = {
    "intake-api": "python -m services.intake.edge",
    "referral-api": "python -m services.referral.edge",
    "audit-api": "python -m services.audit.edge",
    "notify-api": "python -m services.notify.edge",
    "intake-worker": "nameko run --config {config}/intake-worker.yaml services.intake.worker",
    "referral-worker": "nameko run --config {config}/referral-worker.yaml services.referral.worker",
    "audit-worker": "nameko run --config {config}/audit-worker.yaml services.audit.worker",
    "notify-worker": "nameko run --config {config}/notify-worker.yaml services.notify.worker",
    "intake-relay": "python -m services.core.messaging.relay",
    "referral-relay": "python -m services.core.messaging.relay",
    "notify-relay": "python -m services.core.messaging.relay",
}


@pytest.fixture
def stand_ins(tmp_path: Path) -> dict[str, str]:
    """An environment whose ``python`` and ``nameko`` print ``<name> <args>`` instead of running."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("python", "nameko"):
        script = bin_dir / name
        script.write_text(f'#!/bin/sh\necho "{name} $*"\n')
        script.chmod(0o755)
    return {"PATH": f"{bin_dir}:/usr/bin:/bin", "WORKER_CONFIG_DIR": str(tmp_path / "config")}


def run_entrypoint(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SH, str(ENTRYPOINT), *args], env=env, capture_output=True, text=True, timeout=30,
                          check=False)


def test_the_manifests_use_the_processes_this_test_knows():
    """Every Deployment's process is in EXPECTED (or an init step), and every known process is deployed."""
    used = {args[0] for args in manifest_processes() if args}
    steps = {name for name in used if name == "install-network" or name.endswith("-migrate")}
    assert used - steps == set(EXPECTED)
    assert steps >= {"install-network", "intake-migrate", "referral-migrate", "notify-migrate"}


@pytest.mark.parametrize("process", sorted(EXPECTED))
def test_each_process_name_maps_to_its_command(process, stand_ins):
    result = run_entrypoint(process, env=stand_ins)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == EXPECTED[process].format(config=stand_ins["WORKER_CONFIG_DIR"])


def test_arguments_after_the_process_name_are_passed_on(stand_ins):
    result = run_entrypoint("intake-relay", "--batch-size", "10", env=stand_ins)
    assert result.stdout.strip() == "python -m services.core.messaging.relay --batch-size 10"


@pytest.mark.parametrize("service", ["intake", "referral", "audit", "notify"])
def test_migrate_runs_the_service_migrations(service, stand_ins):
    result = run_entrypoint(f"{service}-migrate", env=stand_ins)
    assert result.returncode == 0, result.stderr
    printed = result.stdout.strip()
    assert printed.startswith("python -c ") and printed.endswith(f" {service}")
    assert "adapters.database" in printed and 'os.environ["DATABASE_URL"]' in printed


def test_every_process_in_the_manifests_is_handled(stand_ins, tmp_path):
    for args in sorted(manifest_processes()):
        if args[0] == "install-network":
            continue  # run for real below
        result = run_entrypoint(*args, env=stand_ins)
        assert result.returncode == 0, (args, result.stderr)


@pytest.mark.parametrize("name", ["", "notify-edge", "audit-relay", "intake-edge", "sh"])
def test_an_unknown_process_is_refused_with_the_list(name, stand_ins):
    result = run_entrypoint(*([name] if name else []), env=stand_ins)
    assert result.returncode == 64
    assert "<service>-api" in result.stderr
    assert result.stdout == ""


# -- install-network on a Secret as kubelet lays it out --------------------------------------------------------

@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("image") / "network"
    init_network(folder)
    return folder


def secret_volume(folder: Path, files: dict[str, Path]) -> Path:
    """A Secret volume as kubelet writes it: ``..data`` -> a timestamped folder of files, each key a symlink
    into ``..data``, modes 0440 (defaultMode 0440 with fsGroup)."""
    folder.mkdir(parents=True)
    version = folder / "..2026_01_01_00_00_00.000000001"
    version.mkdir()
    for key, source in files.items():
        shutil.copyfile(source, version / key)
        (version / key).chmod(0o440)
    (folder / "..data").symlink_to(version.name)
    for key in files:
        (folder / key).symlink_to(f"..data/{key}")
    return folder


def network_secret(network: Path, service: str) -> dict[str, Path]:
    """The keys of ``<service>-network`` as deploy/k8s/README.md tells to create it from the network folder."""
    files = {"directory.json": network / "directory.json", "directory.json.sig": network / "directory.json.sig",
             "ca.pem": network / "ca" / "ca.pem"}
    files |= {path.name: path for path in sorted((network / "services" / service).iterdir())}
    files |= {path.name: path for path in sorted((network / "routing").iterdir())}
    return files


def _install(tmp_path: Path, secret: Path, service: str, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "NETWORK_DIR": str(tmp_path / "out" / "network"),
           "NETWORK_SECRET_DIR": str(secret), **extra}
    return run_entrypoint("install-network", service, env=env)


def test_install_network_lays_out_a_folder_the_loaders_accept(network, tmp_path):
    secret = secret_volume(tmp_path / "secret", network_secret(network, "audit"))
    result = _install(tmp_path, secret, "audit")
    assert result.returncode == 0, result.stderr
    folder = tmp_path / "out" / "network"
    files = {str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file()}
    assert files == {"ca/ca.pem", "directory.json", "directory.json.sig", "routing/nrk-1.key",
                     *(f"services/audit/{name}" for name in ("signing.key", "tls.key", "tls.pem",
                                                             "probe.key", "probe.pem"))}
    for path in folder.rglob("*"):
        mode = stat.S_IMODE(path.stat().st_mode)
        assert not mode & 0o077, (path, oct(mode))
        assert not path.is_symlink()
    # what the edge, the worker and the probe load, with their refusal of loose key files
    assert load_directory(folder) == load_directory(network)
    assert load_service_tls(folder, "audit") == load_service_tls(network, "audit")
    assert load_service_probe_tls(folder, "audit") == load_service_probe_tls(network, "audit")
    load_service_signing_key(folder, "audit")
    assert load_routing_keys(folder).key_ids == load_routing_keys(network).key_ids


@pytest.mark.parametrize("as_mounted", ["symlink", "group-readable"])
def test_the_loaders_would_refuse_the_secret_volume_itself(network, tmp_path, as_mounted):
    """Why install-network exists: where a Secret is mounted, each key is a symlink into ``..data`` and its
    file is group-readable; the loaders refuse both."""
    secret = secret_volume(tmp_path / "secret", {"nrk-1.key": network / "routing" / "nrk-1.key"})
    key = tmp_path / "as-mounted" / "routing" / "nrk-1.key"
    key.parent.mkdir(parents=True)
    if as_mounted == "symlink":
        key.symlink_to(secret / "nrk-1.key")
    else:
        shutil.copyfile(secret / "nrk-1.key", key)
        key.chmod(0o440)
    with pytest.raises(KeystoreError, match="symlinks are refused" if as_mounted == "symlink" else "group or others"):
        load_routing_keys(tmp_path / "as-mounted")


def test_install_network_copies_the_kek_when_asked(network, tmp_path):
    secret = secret_volume(tmp_path / "secret", network_secret(network, "intake"))
    kek_source = tmp_path / "kek-secret" / "kek.key"
    kek_source.parent.mkdir()
    kek_source.write_bytes(os.urandom(32))
    kek_source.chmod(0o440)
    kek = tmp_path / "out" / "kek" / "kek.key"
    result = _install(tmp_path, secret, "intake", KEYVAULT_KEK_PATH=str(kek), KEK_SECRET_FILE=str(kek_source))
    assert result.returncode == 0, result.stderr
    assert kek.read_bytes() == kek_source.read_bytes()
    assert stat.S_IMODE(kek.stat().st_mode) == 0o600


def test_install_network_without_the_kek_secret_fails(network, tmp_path):
    secret = secret_volume(tmp_path / "secret", network_secret(network, "intake"))
    result = _install(tmp_path, secret, "intake", KEYVAULT_KEK_PATH=str(tmp_path / "kek.key"),
                      KEK_SECRET_FILE=str(tmp_path / "missing" / "kek.key"))
    assert result.returncode == 1
    assert "intake-kek" in result.stderr


@pytest.mark.parametrize(("change", "message"), [
    ("drop ca.pem", "lacks ca.pem"),
    ("drop directory.json.sig", "lacks directory.json.sig"),
    ("add extra", "unexpected key ca.key"),
])
def test_install_network_refuses_an_incomplete_or_odd_secret(network, tmp_path, change, message):
    files = network_secret(network, "referral")
    verb, name = change.split()
    if verb == "drop":
        del files[name]
    else:
        files["ca.key"] = network / "ca" / "ca.key"  # the CA's private key must never be in a service's Secret
    result = _install(tmp_path, secret_volume(tmp_path / "secret", files), "referral")
    assert result.returncode == 1
    assert message in result.stderr


def test_install_network_needs_a_known_service_and_the_secret(network, tmp_path):
    assert _install(tmp_path, tmp_path / "nowhere", "billing").returncode == 64
    missing = _install(tmp_path, tmp_path / "nowhere", "referral")
    assert missing.returncode == 1
    assert "referral-network" in missing.stderr


def test_the_readme_commands_create_the_keys_install_network_expects():
    """deploy/k8s/README.md's kubectl lines name the same files network_secret() gives the Secret."""
    readme = (REPO / "deploy" / "k8s" / "README.md").read_text()
    commands = [shlex.split(line.strip().rstrip("\\")) for line in readme.splitlines()
                if "--from-file" in line]
    sources = {word.split("=", 1)[1] for words in commands for word in words if word.startswith("--from-file=")}
    for needed in ("$NET/directory.json", "$NET/directory.json.sig", "$NET/ca/ca.pem", "$NET/routing/",
                   "$NET/services/intake/", "$NET/services/referral/", "$NET/services/audit/"):
        assert needed in sources, needed


def test_install_network_copies_the_webhook_secrets_for_notify(network, tmp_path):
    """notify's worker signs each organisation's webhooks with its own secret: the ``notify-webhook-secrets``
    Secret (``<org>.key``) lands in ``notify/webhook-secrets/`` of the folder, 0600, where the loader reads it."""
    secret = secret_volume(tmp_path / "secret", network_secret(network, "notify"))
    sources = tmp_path / "webhook-sources"
    sources.mkdir()
    for org in ("ong-lor-01", "prov-lim-02"):
        (sources / f"{org}.key").write_text(base64.b64encode(os.urandom(32)).decode() + "\n")
    webhooks = secret_volume(tmp_path / "webhooks", {path.name: path for path in sorted(sources.iterdir())})
    result = _install(tmp_path, secret, "notify", WEBHOOK_SECRETS_DIR=str(webhooks))
    assert result.returncode == 0, result.stderr
    folder = tmp_path / "out" / "network" / "notify" / "webhook-secrets"
    assert sorted(path.name for path in folder.iterdir()) == ["ong-lor-01.key", "prov-lim-02.key"]
    for path in folder.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600 and not path.is_symlink()
        assert path.read_bytes() == (sources / path.name).read_bytes()


def test_install_network_refuses_a_stray_file_among_the_webhook_secrets(network, tmp_path):
    secret = secret_volume(tmp_path / "secret", network_secret(network, "notify"))
    stray = tmp_path / "stray.txt"
    stray.write_text("not a key\n")
    webhooks = secret_volume(tmp_path / "webhooks", {"notes.txt": stray})
    result = _install(tmp_path, secret, "notify", WEBHOOK_SECRETS_DIR=str(webhooks))
    assert result.returncode == 1
    assert "unexpected key notes.txt" in result.stderr
