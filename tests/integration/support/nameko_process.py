"""Running a test service with ``nameko run`` in a subprocess (plain pytest is not eventlet-patched).

Every process is started in its own session and stopped in a ``finally`` (SIGTERM, then SIGKILL after a
grace period), so no test leaves one behind; every wait has a deadline.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
SERVICE = "tests.integration.support.effects_service"


def write_config(path: Path, values: Mapping[str, Any]) -> Path:
    """A nameko config file (JSON, which YAML reads) with ``values`` and logging to stderr at INFO."""
    config = dict(values)
    config.setdefault("LOGGING", {
        "version": 1,
        "disable_existing_loggers": False,  # nameko's loggers exist before the config is applied
        "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "plain"}},
        "loggers": {"kafka": {"level": "WARNING"}},
        "root": {"level": "INFO", "handlers": ["stderr"]},
    })
    path.write_text(json.dumps(config, indent=2))
    return path


class NamekoProcess:
    """One ``python -m nameko run`` of the effects service; its output goes to ``log_path``."""

    def __init__(self, name: str, config: Path, env: Mapping[str, str], log_path: Path) -> None:
        self.name = name
        self.config = config
        self.env = {**os.environ, "PYTHONPATH": str(ROOT), **env}
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> NamekoProcess:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "nameko", "run", "--config", str(self.config), SERVICE],
                cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def returncode(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_exit(self, timeout_s: float) -> int:
        assert self.process is not None
        try:
            return self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.name} did not exit within {timeout_s}s:\n{self.tail()}") from None

    def terminate(self, timeout_s: float = 30.0) -> int:
        """SIGTERM (nameko stops gracefully) and wait for the exit."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.wait_exit(timeout_s)

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

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log().splitlines()[-lines:])


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str,
               processes: tuple[NamekoProcess, ...] = ()) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` (with the services' log tails) at the deadline."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        for process in processes:
            code = process.returncode()
            if code is not None and code != -signal.SIGKILL:
                raise AssertionError(f"{process.name} exited with {code} while waiting for {what}:\n{process.tail()}")
        time.sleep(0.2)
    logs = "\n".join(f"--- {p.name}\n{p.tail()}" for p in processes)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}\n{logs}")
