"""``python -m services.core.migrations``: upgrade a database, show its revision, check it against the code.

``register(areas)`` also fits the ``referralnet`` command (``referralnet db upgrade ...``) when added to
services/core/cli.py's AREAS.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.util import CommandError

from services.core.database import normalize_url
from services.core.migrations import MigrationError, alembic_config, current, drift, upgrade

Subcommands = argparse._SubParsersAction  # the type add_subparsers() returns; argparse has no public name for it
URL_ENV = "DATABASE_URL"


def register(areas: Subcommands[argparse.ArgumentParser]) -> None:
    """Add ``db`` and its commands to a top-level parser's areas."""
    add_commands(areas.add_parser("db", help="database migrations of the shared core tables"))


def add_commands(parser: argparse.ArgumentParser) -> None:
    """Add ``upgrade``, ``current``, ``check`` and ``revision`` to ``parser``."""
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    up = commands.add_parser("upgrade", help="migrate the database to the latest revision (idempotent)")
    _database_url(up)
    up.add_argument("--revision", default="heads", help="target revision (default: every branch's head)")
    up.add_argument("--version-location", action="append", default=[], type=Path, metavar="DIR",
                    help="a service's own revision folder (repeatable)")
    up.set_defaults(handler=run_upgrade)
    show = commands.add_parser("current", help="print the revisions the database is at")
    _database_url(show)
    show.set_defaults(handler=run_current)
    check = commands.add_parser("check", help="exit 1 if the database differs from the core tables' code")
    _database_url(check)
    check.set_defaults(handler=run_check)
    new = commands.add_parser("revision", help="write a new, empty revision file from the template")
    new.add_argument("--message", "-m", required=True)
    new.add_argument("--rev-id", required=True, help="e.g. core_0002 or referral_0001 (branch name first)")
    new.add_argument("--head", default="core@head", help="what it follows (default: core@head; base for a new branch)")
    new.add_argument("--version-path", type=Path, help="folder to write to (default: the core versions folder)")
    new.add_argument("--branch-label", help="label of a new branch (a service's name)")
    new.add_argument("--depends-on", help="a revision of another branch this one needs, e.g. core_0001")
    new.set_defaults(handler=run_revision)


def run_upgrade(args: argparse.Namespace) -> int:
    """Migrate, then say where the database is."""
    upgrade(args.database_url, args.revision, version_locations=args.version_location)
    return run_current(args)


def run_current(args: argparse.Namespace) -> int:
    """Print ``<url without password>: <revisions>``."""
    revisions = current(args.database_url)
    print(f"{_shown(args.database_url)}: {', '.join(revisions) or 'no revision (empty database)'}")
    return 0


def run_check(args: argparse.Namespace) -> int:
    """0 when the database matches the code's tables, else 1 with one line per difference."""
    differences = drift(args.database_url)
    for difference in differences:
        print(f"differs: {difference}")
    print(f"{_shown(args.database_url)}: {len(differences)} difference(s) from the core tables")
    return 1 if differences else 0


def run_revision(args: argparse.Namespace) -> int:
    """Write the revision file (Alembic prints its path)."""
    locations = [args.version_path] if args.version_path else []
    command.revision(
        alembic_config(version_locations=locations), args.message, head=args.head, rev_id=args.rev_id,
        version_path=str(args.version_path.resolve()) if args.version_path else None,
        branch_label=args.branch_label, depends_on=args.depends_on,
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default: ``sys.argv[1:]``), run the command, return its exit status."""
    parser = argparse.ArgumentParser(prog="python -m services.core.migrations", description=__doc__)
    add_commands(parser)
    args = parser.parse_args(argv)
    if hasattr(args, "database_url") and not args.database_url:
        parser.error(f"--database-url is required when {URL_ENV} is not set")
    try:
        status: int = args.handler(args)
    except (CommandError, MigrationError, sa.exc.SQLAlchemyError) as error:
        print(f"migrations: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    return status


def _database_url(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--database-url", type=_normalized, default=_normalized(os.environ.get(URL_ENV, "")),
                        help=f"SQLAlchemy URL (postgres:// accepted; default: ${URL_ENV})")


def _normalized(url: str) -> str:
    """A libpq-style ``postgres://`` or ``postgresql://`` URL with SQLAlchemy's psycopg 3 driver named."""
    return normalize_url(url)


def _shown(url: str) -> str:
    return sa.make_url(url).render_as_string(hide_password=True)
