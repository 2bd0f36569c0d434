"""The auditor's reports and command line, without Kafka: report.json's shape, report.html's content and
safety (escaped, self-contained, no script), the funnel and time-to-acceptance figures, the charts, and the
exit statuses of ``referralnet audit replay`` when it cannot run.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import cast

import pytest

from services.audit.replay.charts import acceptance_histogram, funnel_chart, time_unit
from services.audit.replay.funnel import FunnelBuilder, FunnelFigures, FunnelRow
from services.audit.replay.report import AuditReport, CheckpointRow, Finding, TopicRow, write_json
from services.audit.replay.report_html import MAX_CHAIN_ROWS, render_html, write_html
from services.core.cli import main
from services.core.generated.referralnet.common.v1 import vocabulary_pb2 as vocab
from services.core.generated.referralnet.referral.v1 import events_pb2 as referral
from services.core.identity.network import init_network

START_US = 1_800_000_000_000_000
SECOND_US = 1_000_000
EVENT_ID = "0194f1c2-7a3b-7c4d-8e5f-0123456789ab"


def _offer(handoff: str, referral_id: str, need: int, service: int, region: int, at_s: int) -> referral.HandoffOffered:
    return referral.HandoffOffered(
        handoff_id=handoff, referral_id=referral_id, need_index=need, service_type=cast("vocab.ServiceType", service),
        region=cast("vocab.Region", region), provider_org="alb-cus-01",
        offered_at_unix_micros=START_US + at_s * SECOND_US)


def _accepted(handoff: str, at_s: int) -> referral.HandoffAccepted:
    return referral.HandoffAccepted(handoff_id=handoff, accepted_at_unix_micros=START_US + at_s * SECOND_US)


def _figures() -> FunnelFigures:
    shelter, legal = vocab.SERVICE_TYPE_SHELTER, vocab.SERVICE_TYPE_LEGAL_AID
    cusco, puno = vocab.REGION_CUSCO, vocab.REGION_PUNO
    messages = [
        _offer("hof-1", "ref-a", 0, shelter, cusco, 0),  # declined, then offered again and accepted at 100 s
        _offer("hof-2", "ref-a", 0, shelter, cusco, 40),
        _accepted("hof-2", 100),
        referral.ServiceCompleted(handoff_id="hof-2"),
        _offer("hof-3", "ref-a", 1, legal, cusco, 0),  # accepted at 30 s, never completed
        _accepted("hof-3", 30),
        _offer("hof-4", "ref-b", 0, shelter, puno, 10),  # offered, nobody accepted
        _accepted("hof-unknown", 5),  # an acceptance of an offer never read: ignored
        referral.ReferralClosed(referral_id="ref-a"),
    ]
    return FunnelBuilder().add_all(messages).figures()


def test_the_funnel_counts_needs_per_service_type_and_region_and_times_acceptance_from_the_first_offer() -> None:
    figures = _figures()

    assert [row.as_dict() for row in figures.by_service_type] == [
        {"label": "legal_aid", "offered": 1, "accepted": 1, "completed": 0, "offers": 1},
        {"label": "shelter", "offered": 2, "accepted": 1, "completed": 1, "offers": 3},
    ]
    assert [(row.label, row.offered, row.accepted, row.completed) for row in figures.by_region] == [
        ("cusco", 2, 2, 1), ("puno", 1, 0, 0)]
    assert figures.acceptance_seconds == [30.0, 100.0]
    assert figures.acceptance_summary() == {"needs": 2, "median_s": 65.0, "p90_s": 100.0, "max_s": 100.0}
    assert FunnelFigures().acceptance_summary() == {"needs": 0}


def test_an_enum_value_the_vocabulary_does_not_name_is_labelled_unknown() -> None:
    figures = FunnelBuilder().add_all([_offer("hof-9", "ref-z", 0, 999, 0, 0)]).figures()
    assert [row.label for row in figures.by_service_type] == ["unknown_999"]
    assert [row.label for row in figures.by_region] == ["unspecified"]


@pytest.mark.parametrize(("largest", "unit"), [(0.0, "seconds"), (120.0, "seconds"), (121.0, "minutes"),
                                               (7200.0, "minutes"), (7201.0, "hours"), (200_000.0, "days")])
def test_durations_are_shown_in_the_unit_that_suits_them(largest: float, unit: str) -> None:
    assert time_unit(largest)[0] == unit


def test_charts_are_standalone_svg_documents_naming_nothing_outside_themselves() -> None:
    rows = [FunnelRow("shelter", 3, 2, 1, 4), FunnelRow("legal_aid", 1, 1, 0, 1)]
    for svg in (funnel_chart(rows, "Needs by service type"), funnel_chart([], "empty"),
                acceptance_histogram([3.0, 50.0, 4000.0]), acceptance_histogram([])):
        assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
        assert not re.search(r'(?:href|src)="(?!#)', svg), "an SVG must reference only its own parts"
        assert "<script" not in svg
    assert funnel_chart(rows, "x") == funnel_chart(rows, "x")  # same figures, same bytes


def _report(**overrides: object) -> AuditReport:
    report = AuditReport(bootstrap="127.0.0.1:9092", network_id="referralnet-dev", origin="referralnet-dev/audit/v1",
                         started_at_us=START_US, records_read=1200, read_seconds=0.5, elapsed_seconds=1.25,
                         tree_size=1100, root_hash="ab" * 32, duplicates=3, rejected=0, pending=97, pending_verified=97,
                         events_checked=1197, disclosures={"offer": 10, "key_release": 2}, funnel=_figures())
    report.topics = [TopicRow("referralnet.audit.checkpoints.v1", "checkpoints", 3, 2),
                     TopicRow("referralnet.intake.events.v1", "events", 3, 700)]
    report.checkpoints = [CheckpointRow("referralnet.audit.checkpoints.v1[0]@0", 1000, "cd" * 32, "cd" * 32, START_US,
                                        0, 2, 1000, 3, 0, True),
                          CheckpointRow("referralnet.audit.checkpoints.v1[0]@1", 1100, "ab" * 32, "ab" * 32,
                                        START_US + SECOND_US, 1000, 1, 100, 0, 0, True)]
    for name, value in overrides.items():
        setattr(report, name, value)
    return report


def test_a_clean_report_says_so_with_exit_status_zero(tmp_path: Path) -> None:
    report = _report()
    path = write_json(report, tmp_path / "report.json")

    written = json.loads(path.read_text())

    assert report.clean and report.exit_status == 0
    assert (written["format"], written["verdict"], written["exit_status"]) == (
        "referralnet/audit-replay-report/v1", "clean", 0)
    assert (written["checkpoints_checked"], written["checkpoints_ok"], written["tree_size"], written["root_hash"]) == (
        2, 2, 1100, "ab" * 32)
    assert written["newest_checkpoint"]["tree_size"] == 1100
    assert written["pending"] == {"records": 97, "verified": 97, "rejected": 0}
    assert (written["violations"], written["violations_count"], written["disclosures_count"]) == ([], 0, 12)
    assert written["rate"] == {"records_per_s": 2400.0, "read_seconds": 0.5, "elapsed_seconds": 1.25}
    assert written["funnel"]["time_to_acceptance"]["needs"] == 2
    assert written["generated_at"] == "2027-01-15T08:00:00.000000Z"


def test_violations_are_listed_with_their_event_ids_and_set_exit_status_one(tmp_path: Path) -> None:
    findings = [Finding("bad_signature", "event was rejected: bad_signature", (EVENT_ID,)),
                Finding("release_without_consent", "KeyReleased rel-1 to alb-cus-01", ("e2", "e3"), "sub-1"),
                Finding("checkpoint_inconsistent", "checkpoint of size 9: wrong_previous_hash")]
    report = _report(violations=findings)

    written = json.loads(write_json(report, tmp_path / "report.json").read_text())
    page = render_html(report)

    assert report.exit_status == 1 and written["verdict"] == "violations"
    assert written["violations_by_check"] == {"bad_signature": 1, "checkpoint_inconsistent": 1,
                                              "release_without_consent": 1}
    assert written["violations"][1] == {"check": "release_without_consent", "detail": "KeyReleased rel-1 to alb-cus-01",
                                        "event_ids": ["e2", "e3"], "subject_id": "sub-1"}
    assert "3 violations found" in page
    for needle in (EVENT_ID, "release_without_consent", "sub-1", "wrong_previous_hash"):
        assert needle in page


def test_the_html_report_is_self_contained_escaped_and_runs_no_script(tmp_path: Path) -> None:
    hostile = "<script>alert('x')</script><img src=https://example.org/t.png>"
    report = _report(violations=[Finding("bad_signature", hostile, ("<b>id</b>",), "sub-<i>")])

    page = write_html(report, tmp_path / "report.html").read_text()

    assert "<script" not in page and "<b>id</b>" not in page and "<i>" not in page
    assert "&lt;script&gt;" in page and "&lt;b&gt;id&lt;/b&gt;" in page
    sources = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert sources and all(source.startswith("data:image/svg+xml;base64,") for source in sources)
    assert "http://" not in page and "https://" not in page.replace("https://example.org", "")
    for source in sources:
        svg = base64.b64decode(source.split(",", 1)[1]).decode()
        assert svg.startswith("<svg") and "<script" not in svg
    for section in ("Summary", "Checkpoint chain", "Violations", "Referral funnel", "Time from first offer",
                    "What was read"):
        assert section in page
    assert page.count("<img") == 3  # funnel by service type, by region, time to acceptance


def test_an_empty_log_reports_no_checkpoint_no_offer_and_no_acceptance() -> None:
    page = render_html(_report(checkpoints=[], funnel=FunnelFigures(), tree_size=0, root_hash=""))
    assert "No checkpoint was read" in page and "No offer was read" in page and "No need was accepted" in page
    assert "<img" not in page


def test_a_long_chain_shows_every_checkpoint_with_a_problem_and_the_newest_ones() -> None:
    rows = [CheckpointRow(f"t[0]@{index}", index + 1, "00" * 32, "00" * 32, START_US, index, 1, 1, 0, 0, True,
                          ("wrong_previous_hash",) if index == 5 else ()) for index in range(MAX_CHAIN_ROWS * 2)]
    page = render_html(_report(checkpoints=rows))
    shown = re.findall(r"<code>t\[0\]@(\d+)</code>", page)
    assert shown[0] == "5" and len(shown) == MAX_CHAIN_ROWS // 2 + 1
    assert shown[-1] == str(MAX_CHAIN_ROWS * 2 - 1)


@pytest.fixture(scope="module")
def network_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("audit-cli") / "network"
    init_network(folder)
    return folder


def test_replay_without_a_network_folder_exits_2_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["audit", "replay", "--bootstrap", "127.0.0.1:1", "--network", str(tmp_path / "nowhere"),
                   "--out", str(tmp_path / "out"), "--no-progress"])
    assert status == 2
    assert "nowhere: no such folder" in capsys.readouterr().err


def test_replay_with_a_ca_that_did_not_sign_the_directory_exits_2(network_dir: Path, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    other = tmp_path / "other"
    init_network(other)
    status = main(["audit", "replay", "--bootstrap", "127.0.0.1:1", "--network", str(network_dir),
                   "--ca", str(other / "ca" / "ca.pem"), "--out", str(tmp_path / "out"), "--no-progress"])
    assert status == 2
    assert "signed by a different CA than the trusted one" in capsys.readouterr().err


def test_replay_when_no_broker_answers_exits_2_naming_the_address(network_dir: Path, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["audit", "replay", "--bootstrap", "127.0.0.1:1", "--network", str(network_dir),
                   "--out", str(tmp_path / "out"), "--no-progress", "--connect-timeout", "1"])
    assert status == 2
    assert "cannot reach Kafka at 127.0.0.1:1" in capsys.readouterr().err


def test_replay_refuses_an_output_path_that_is_a_file(network_dir: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    taken = tmp_path / "taken"
    taken.write_text("")
    status = main(["audit", "replay", "--bootstrap", "127.0.0.1:1", "--network", str(network_dir),
                   "--out", str(taken), "--no-progress"])
    assert status == 2 and "--out" in capsys.readouterr().err


def test_replay_without_its_required_arguments_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["audit", "replay", "--network", "x"])
    assert exited.value.code == 2 and "--bootstrap" in capsys.readouterr().err


def test_network_init_is_still_there(tmp_path: Path) -> None:
    assert main(["network", "init", str(tmp_path / "net")]) == 0
