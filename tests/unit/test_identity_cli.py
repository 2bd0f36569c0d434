"""``referralnet network init`` and ``network endpoints``: the argparse entry point, summaries, exit statuses."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from services.core.cli import main
from services.core.identity.keystore import load_directory
from services.core.identity.records import NotifyEndpoints
from services.core.identity.vocabulary import ROLES
from services.core.identity.webhook_secrets import load_webhook_secrets, org_webhook_secret_path, webhook_secret_path

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


WEBHOOK = "http://127.0.0.1:8080/hooks/alb-cus-01"


@pytest.fixture
def network(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    assert main(["network", "init", str(tmp_path / "net")]) == 0
    capsys.readouterr()
    return tmp_path / "net"


def endpoints(network: Path, *args: str) -> int:
    return main(["network", "endpoints", str(network), "--org", "alb-cus-01", *args])


def test_network_endpoints_sets_them_and_says_what_changed_and_where_the_secret_is(network, capsys):
    assert endpoints(network, "--webhook", WEBHOOK, "--email", "a@inbox.referralnet.invalid") == 0
    out = capsys.readouterr().out
    assert "serial 1 -> 2" in out
    assert f"webhook  (none) -> {WEBHOOK}" in out
    assert "e-mail   (none) -> a@inbox.referralnet.invalid" in out
    assert "Webhook secret (new)" in out
    assert str(webhook_secret_path(network, "alb-cus-01")) in out
    assert str(org_webhook_secret_path(network, "alb-cus-01")) in out
    assert "Restart notify" in out
    assert load_directory(network).org("alb-cus-01").notify == NotifyEndpoints(WEBHOOK, "a@inbox.referralnet.invalid")
    assert list(load_webhook_secrets(network)) == ["alb-cus-01"]


def test_network_endpoints_again_rotate_and_clear(network, capsys):
    endpoints(network, "--webhook", WEBHOOK)
    secret = load_webhook_secrets(network)["alb-cus-01"]
    capsys.readouterr()

    assert endpoints(network, "--webhook", WEBHOOK) == 0
    out = capsys.readouterr().out
    assert "endpoints unchanged; directory serial 2 kept" in out and "Webhook secret (kept)" in out
    assert "Restart notify" not in out

    assert endpoints(network, "--webhook", WEBHOOK, "--rotate-secret") == 0
    out = capsys.readouterr().out
    assert "Webhook secret (rotated)" in out and "Restart notify" in out
    assert load_webhook_secrets(network)["alb-cus-01"] != secret

    assert endpoints(network) == 0
    out = capsys.readouterr().out
    assert "serial 2 -> 3" in out and f"webhook  {WEBHOOK} -> (none)" in out and "Webhook secret" not in out
    assert load_directory(network).org("alb-cus-01").notify is None


@pytest.mark.parametrize(("args", "message"), [
    (["--org", "alb-xyz-01", "--email", "a@b.example"], "no organisation 'alb-xyz-01' in the directory"),
    (["--org", "alb-cus-01", "--webhook", "http://partner.example/x"], "'notify.webhook_url'"),
    (["--org", "alb-cus-01", "--email", "a b@c.example"], "'notify.email'"),
    (["--org", "alb-cus-01", "--rotate-secret"], "give its URL too"),
])
def test_network_endpoints_failures_exit_1_with_the_reason(network, capsys, args, message):
    before = (network / "directory.json").read_bytes()
    assert main(["network", "endpoints", str(network), *args]) == 1
    captured = capsys.readouterr()
    assert captured.err.startswith("referralnet network endpoints: ") and message in captured.err
    assert captured.out == ""
    assert (network / "directory.json").read_bytes() == before


def test_network_endpoints_in_a_folder_that_is_no_network(tmp_path, capsys):
    assert main(["network", "endpoints", str(tmp_path), "--org", "alb-cus-01"]) == 1
    assert "is this a network folder" in capsys.readouterr().err


def test_network_endpoints_requires_the_org(network, capsys):
    with pytest.raises(SystemExit) as exited:
        main(["network", "endpoints", str(network), "--email", "a@b.example"])
    assert exited.value.code == 2
    assert "--org" in capsys.readouterr().err
