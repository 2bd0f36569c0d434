"""``referralnet audit replay``: the auditor's replay of the ledger straight from Kafka (see :mod:`.auditor`).

Exit status: 0 when every check passed, 1 when the report lists any violation, 2 when the replay could not
run (bad arguments, no broker, a missing topic, a directory the given CA did not sign); the message says
which.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

Subcommands = argparse._SubParsersAction  # the type add_subparsers() returns; argparse has no public name for it

DESCRIPTION = """Read the checkpoint topic and every source topic from offset 0 (no consumer group, not audit's
database), verify every envelope against the CA-signed directory, rebuild the ledger in the order the
signed checkpoints give and compare every root, run the compliance checks, and write report.json and
report.html."""
EPILOG = """exit status: 0 clean, 1 violations found (listed in report.json and report.html), 2 the replay could
not run (the message says why).

example: referralnet audit replay --bootstrap 127.0.0.1:9092 --network ./network --ca ./trusted-ca.pem --out ./audit
"""


def register(areas: Subcommands[argparse.ArgumentParser]) -> None:
    """Add ``audit`` and its commands to the top-level parser's areas."""
    audit = areas.add_parser("audit", help="auditors: replay and verify the audit ledger from Kafka")
    commands = audit.add_subparsers(dest="command", required=True, metavar="COMMAND")
    replay = commands.add_parser(
        "replay", help="replay Kafka from offset 0, rebuild the Merkle tree, check checkpoints and compliance",
        description=DESCRIPTION,
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    replay.add_argument("--bootstrap", required=True, metavar="HOST:PORT", help="Kafka bootstrap servers")
    replay.add_argument("--network", required=True, type=Path, metavar="DIR",
                        help="the network folder: directory.json and its signature, routing/nrk-<n>.key")
    replay.add_argument("--ca", type=Path, metavar="CA.pem",
                        help="the CA certificate you trust to have signed the directory (default: DIR/ca/ca.pem)")
    replay.add_argument("--out", type=Path, default=Path("audit-report"), metavar="DIR",
                        help="where report.json and report.html go (default: ./audit-report)")
    replay.add_argument("--topics", nargs="+", metavar="TOPIC",
                        help="events topics (default: intake's, referral's and notify's); a dead-letter topic's "
                             "name (referralnet.<consumer>.dlq.v1) given here counts as a dead-letter topic")
    replay.add_argument("--dead-letter-topics", nargs="*", metavar="TOPIC",
                        help="dead-letter topics to account for (default: the intake, referral and notify workers')")
    replay.add_argument("--checkpoint-topic", metavar="TOPIC", help="default: referralnet.audit.checkpoints.v1")
    replay.add_argument("--connect-timeout", type=float, default=15.0, metavar="SECONDS",
                        help="how long to wait for a Kafka broker to answer (default: 15)")
    replay.add_argument("--no-progress", action="store_true", help="no progress bar")
    replay.set_defaults(handler=run_replay_command)


def run_replay_command(args: argparse.Namespace) -> int:
    """Handler of ``audit replay``: run it, print the verdict and where the reports are; the exit status."""
    from services.audit.replay.auditor import (  # noqa: PLC0415 (kafka, matplotlib: only when replaying)
        DEFAULT_DEAD_LETTER_TOPICS,
        DEFAULT_SOURCE_TOPICS,
        ReplayOptions,
        ReplayUsageError,
        run_replay,
    )
    from services.audit.replay.report import EXIT_USAGE  # noqa: PLC0415
    from services.core.messaging.topics import CHECKPOINT_TOPIC  # noqa: PLC0415

    options = ReplayOptions(bootstrap=args.bootstrap, network_dir=args.network, out_dir=args.out, ca_path=args.ca,
                            source_topics=tuple(args.topics or DEFAULT_SOURCE_TOPICS),
                            dead_letter_topics=tuple(DEFAULT_DEAD_LETTER_TOPICS if args.dead_letter_topics is None
                                                     else args.dead_letter_topics),
                            checkpoint_topic=args.checkpoint_topic or CHECKPOINT_TOPIC, progress=not args.no_progress,
                            connect_timeout_s=args.connect_timeout)
    try:
        run = run_replay(options)
    except ReplayUsageError as error:
        print(f"referralnet audit replay: {error}", file=sys.stderr)
        return EXIT_USAGE
    report = run.report
    verdict = "clean" if report.clean else f"{len(report.violations)} violation(s)"
    by_check = ", ".join(f"{check} {count}" for check, count in report.violations_by_check().items())
    print(f"audit replay: {verdict}{f' ({by_check})' if by_check else ''}")
    print(f"  {report.records_read:,} records read at {report.records_per_second:,.0f}/s; "
          f"{len(report.checkpoints)} checkpoints checked, {report.checkpoints_ok} hold")
    print(f"  tree size {report.tree_size:,}, root {report.root_hash}; {report.pending:,} records pending")
    print(f"  reports: {run.json_path} and {run.html_path}")
    return report.exit_status
