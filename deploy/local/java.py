"""Finding the Java runtime and Maven that run the local Kafka broker, or saying what to install."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from deploy.local.errors import StackError

MIN_JAVA_MAJOR = 17
INSTALL_JAVA = "sudo apt-get install openjdk-17-jre-headless (or any Java >= 17, then set JAVA_HOME)"
INSTALL_MAVEN = "sudo apt-get install maven"


@dataclass(frozen=True)
class JavaRuntime:
    """A Java executable and its major version."""

    executable: Path
    major: int


def parse_java_major(version_output: str) -> int:
    """The major version from ``java -version`` output ("1.8.0_392" is 8, "17.0.15" is 17)."""
    match = re.search(r'version "(\d+)(?:\.(\d+))?', version_output)
    if match is None:
        msg = f"could not read a Java version from: {version_output.strip()[:200]!r}"
        raise StackError(msg)
    major = int(match.group(1))
    if major == 1 and match.group(2) is not None:
        return int(match.group(2))
    return major


def find_java() -> JavaRuntime:
    """The Java >= 17 named by JAVA_HOME, else the first ``java`` on PATH."""
    java_home = os.environ.get("JAVA_HOME")
    candidate = Path(java_home) / "bin" / "java" if java_home else None
    if candidate is None or not os.access(candidate, os.X_OK):
        found = shutil.which("java")
        candidate = Path(found) if found else None
    if candidate is None:
        msg = f"Java was not found (JAVA_HOME unset and no `java` on PATH). Install it: {INSTALL_JAVA}."
        raise StackError(msg)
    result = subprocess.run([str(candidate), "-version"], capture_output=True, text=True, check=False)
    major = parse_java_major(result.stderr + result.stdout)
    if major < MIN_JAVA_MAJOR:
        msg = (f"Apache Kafka 4 needs Java >= {MIN_JAVA_MAJOR}, but {candidate} is Java {major}. "
               f"Install a newer one: {INSTALL_JAVA}.")
        raise StackError(msg)
    return JavaRuntime(executable=candidate, major=major)


def find_maven() -> Path:
    """The ``mvn`` executable, which resolves Kafka's jars from Maven Central."""
    found = shutil.which("mvn")
    if found is None:
        msg = ("Maven was not found on PATH; it resolves Kafka's jars from Maven Central. "
               f"Install it: {INSTALL_MAVEN}.")
        raise StackError(msg)
    return Path(found)
