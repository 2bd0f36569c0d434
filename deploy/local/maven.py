"""Resolving Apache Kafka's runtime jars from Maven Central into a cache outside the repository."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from deploy.local.errors import StackError
from deploy.local.java import find_maven

RUNTIME_DIR = Path(__file__).resolve().parent / "kafka-runtime"
POM = RUNTIME_DIR / "pom.xml"
COMPLETE_MARKER = ".complete"


def cache_root() -> Path:
    """Where resolved jars live: ``$REFERRALNET_CACHE``, else ``$XDG_CACHE_HOME/referralnet``."""
    explicit = os.environ.get("REFERRALNET_CACHE")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "referralnet"


def libs_dir(kafka_version: str) -> Path:
    """The jar folder for this Kafka version and this exact pom (an edited pom resolves afresh)."""
    pom_digest = hashlib.sha256(POM.read_bytes()).hexdigest()[:12]
    return cache_root() / f"kafka-{kafka_version}-{pom_digest}" / "libs"


def resolve_kafka_jars(kafka_version: str) -> list[Path]:
    """Every jar the broker needs, resolving them with Maven on first use and reusing them after."""
    target = libs_dir(kafka_version)
    if (target / COMPLETE_MARKER).exists():
        return sorted(target.glob("*.jar"))
    mvn = find_maven()
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="libs-", dir=target.parent))
    try:
        _copy_dependencies(mvn, kafka_version, staging)
        (staging / COMPLETE_MARKER).write_text(kafka_version + "\n")
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)  # atomic: a half-resolved folder is never taken for a complete one
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return sorted(target.glob("*.jar"))


def _copy_dependencies(mvn: Path, kafka_version: str, output: Path) -> None:
    argv = [
        str(mvn), "-B", "-q", "-f", str(POM), "dependency:copy-dependencies",
        f"-Dkafka.version={kafka_version}", f"-DoutputDirectory={output}", "-DincludeScope=runtime",
    ]
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0 or not any(output.glob("kafka_2.13-*.jar")):
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-25:])
        msg = (
            f"Maven could not resolve org.apache.kafka:kafka_2.13:{kafka_version} from Maven Central "
            f"(exit {result.returncode}). Check that this machine reaches Maven Central (or a mirror set "
            f"in ~/.m2/settings.xml) and retry `make up`. Maven said:\n{tail}"
        )
        raise StackError(msg)
