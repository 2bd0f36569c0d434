"""``referralnet``: the command-line entry point, one sub-command per area (``referralnet network init``).

An area adds itself with a ``register(areas)`` function that creates its parser and sets ``handler`` (a
function of the parsed arguments returning the exit status) on each command; handlers live in the area's
own package (``services/core/identity/cli.py`` for ``network``, ``services/audit/replay/cli.py`` for
``audit``). Run as ``referralnet`` (console script) or ``python -m services.core.cli``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence

from services.audit.replay import cli as audit_cli
from services.core.identity import cli as identity_cli

Handler = Callable[[argparse.Namespace], int]
AREAS: tuple[Callable[[identity_cli.Subcommands[argparse.ArgumentParser]], None], ...] = (
    identity_cli.register, audit_cli.register)


def build_parser() -> argparse.ArgumentParser:
    """The ``referralnet`` parser with every area registered."""
    parser = argparse.ArgumentParser(
        prog="referralnet",
        description="Consent-bound referral network for identified victims of human trafficking.",
    )
    areas = parser.add_subparsers(dest="area", required=True, metavar="AREA")
    for register in AREAS:
        register(areas)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default: ``sys.argv[1:]``), run the chosen command, return its exit status."""
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    return handler(args)


if __name__ == "__main__":
    raise SystemExit(main())
