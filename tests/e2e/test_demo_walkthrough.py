"""`make demo`'s walk-through and the auditor's checks, run against the session's e2e network.

The same code `python -m deploy.local demo` runs (deploy/local/walkthrough.py), so a change that breaks
the demo fails here: every step raises on an unexpected answer (an offer that never comes, a case file
that does not open, a key released after consent was revoked, a notice that never reaches the partners'
inbox), and the auditor's replay of the network's topics must come back clean.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy.local.network import LocalNetwork
from deploy.local.walkthrough import audit_the_log, run_walkthrough
from tests.e2e.notify_support import RecordingInbox

pytestmark = pytest.mark.e2e


def test_the_demo_walkthrough_and_the_auditors_replay_pass(e2e_network: LocalNetwork, kafka_bootstrap: str,
                                                            partner_inbox: RecordingInbox, tmp_path: Path) -> None:
    lines: list[str] = []
    run_walkthrough(e2e_network, say=lines.append, inbox=partner_inbox)
    trail = "\n".join(lines)
    assert "opens 1 case file(s) on its own machine: intact" in trail
    assert "asks for the key again: FAILED_PRECONDITION" in trail
    assert "is closed" in trail
    assert "psi-cus-01:expired -> psi-lim-01:completed" in trail
    assert "psi-cus-01  handoff_expired" in trail and "alb-cus-01  consent_revoked" in trail
    assert "pro-nna-01 accepts the child-protection offer and opens the case file: intact" in trail
    assert "pol-mdd-01 erases subject" in trail and "leg-aqp-01 asks for the key: FAILED_PRECONDITION" in trail

    status = audit_the_log(e2e_network, kafka_bootstrap, tmp_path / "audit", say=lines.append)
    assert status == 0, "\n".join(lines)
    assert (tmp_path / "audit" / "report.html").stat().st_size > 0
