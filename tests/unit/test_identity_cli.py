"""``referralnet network init``: the argparse entry point, its summary, exit statuses and ``python -m``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from services.core.cli import main
from services.core.identity.keystore import load_directory
from services.core.identity.vocabulary import ROLES

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_network_init_creates_the_folder_and_prints_a_summary(tmp_path, capsys):
    assert main(["network", "init", str(tmp_path / "net")]) == 0
    out = capsys.readouterr().out
    assert str(tmp_path / "net") in out
    for role in ROLES:
        assert f"\n  {role} " in out
    assert "madre_de_dios" in out and "directory.json.sig" in out
    assert len(load_directory(tmp_path / "net").organisations) == 17


def test_network_init_refuses_an_existing_network_without_force(tmp_path, capsys):
    assert main(["network", "init", str(tmp_path / "net")]) == 0
    before = (tmp_path / "net" / "ca" / "ca.pem").read_bytes()
    capsys.readouterr()
    assert main(["network", "init", str(tmp_path / "net")]) == 1
    captured = capsys.readouterr()
    assert "--force" in captured.err and captured.out == ""
    assert (tmp_path / "net" / "ca" / "ca.pem").read_bytes() == before
    assert main(["network", "init", "--force", str(tmp_path / "net")]) == 0
    assert (tmp_path / "net" / "ca" / "ca.pem").read_bytes() != before


def test_the_default_folder_is_network_in_the_current_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["network", "init"]) == 0
    assert (tmp_path / "network" / "directory.json").is_file()


@pytest.mark.parametrize("argv", [[], ["network"], ["network", "destroy"], ["audit"]])
def test_incomplete_or_unknown_commands_exit_with_usage(argv, capsys):
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert "usage: referralnet" in capsys.readouterr().err


def test_python_dash_m_runs_the_same_command(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "services.core.cli", "network", "init", str(tmp_path / "net")],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Created the development network" in result.stdout
    assert load_directory(tmp_path / "net").network_id == "referralnet-dev"
