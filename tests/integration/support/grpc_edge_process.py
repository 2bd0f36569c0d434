"""Running an edge module (``python -m <module>``) in a subprocess and waiting until it serves.

Like ``nameko_process``: its own session, output to a log file, stopped in a ``finally`` (SIGTERM, then
SIGKILL after a grace period), every wait bounded.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
READY = re.compile(r"edge (\S+) listening on (\S+)")


class EdgeProcess:
    """One edge process; ``start().wait_ready()`` gives the ``host:port`` it listens on."""

    def __init__(self, module: str, env: Mapping[str, str], log_path: Path, name: str = "edge") -> None:
        self.module = module
        self.name = name
        self.env = {**os.environ, "PYTHONPATH": str(ROOT), **env}
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> EdgeProcess:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen([sys.executable, "-m", self.module], cwd=ROOT, env=self.env,
                                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def wait_ready(self, timeout_s: float = 20.0) -> str:
        """The address from the ``edge <service> listening on <address>`` line; fails if it exits first."""
        assert self.process is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = READY.search(self.log())
            if found:
                return found.group(2)
            if self.process.poll() is not None:
                code = self.process.returncode
                raise AssertionError(f"{self.name} exited with {code} before serving:\n{self.tail()}")
            time.sleep(0.05)
        raise AssertionError(f"{self.name} did not serve within {timeout_s}s:\n{self.tail()}")

    def wait_for_log(self, text: str, timeout_s: float = 10.0) -> None:
        deadline = time.monotonic() + timeout_s
        while text not in self.log():
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name} did not log {text!r} within {timeout_s}s:\n{self.tail()}")
            time.sleep(0.05)

    def signal(self, signum: int = signal.SIGTERM) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    def wait_exit(self, timeout_s: float) -> int:
        assert self.process is not None
        try:
            return self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.name} did not exit within {timeout_s}s:\n{self.tail()}") from None

    def stop(self) -> None:
        """Whatever state it is in, make sure it is gone (for ``finally`` blocks)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=15)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log().splitlines()[-lines:])
