"""``referralnet network ...``: the commands of the identity area (today: ``network init``)."""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

from services.core.identity.errors import IdentityError
from services.core.identity.network import NetworkCreated, init_network
from services.core.identity.vocabulary import region_word, role_word

Subcommands = argparse._SubParsersAction  # the type add_subparsers() returns; argparse has no public name for it


def register(areas: Subcommands[argparse.ArgumentParser]) -> None:
    """Add ``network`` and its commands to the top-level parser's areas."""
    network = areas.add_parser("network", help="the development network: CA, organisation keys, directory")
    commands = network.add_subparsers(dest="command", required=True, metavar="COMMAND")
    init = commands.add_parser(
        "init",
        help="create a synthetic development network (CA, keys, certificates, signed directory)",
        description="Create a development network folder. Every organisation in it is synthetic.",
    )
    init.add_argument("folder", nargs="?", type=Path, default=Path("network"), help="default: ./network")
    init.add_argument("--force", action="store_true", help="replace an existing network folder")
    init.set_defaults(handler=run_init)


def run_init(args: argparse.Namespace) -> int:
    """Handler of ``network init``: create the folder and print a summary; 1 with a message on failure."""
    try:
        created = init_network(args.folder, force=args.force)
    except (IdentityError, OSError) as exc:
        print(f"referralnet network init: {exc}", file=sys.stderr)
        return 1
    print(summary(created))
    return 0


def summary(created: NetworkCreated) -> str:
    """A few lines for people: what was created, organisations by role and by region, where the keys are."""
    directory = created.directory
    by_role: dict[str, list[str]] = defaultdict(list)
    by_region: dict[str, list[str]] = defaultdict(list)
    for org in directory.organisations:
        by_role[role_word(org.role)].append(org.org_id)
        for region in org.regions:
            by_region[region_word(region)].append(org.org_id)
    services = ", ".join(service.name for service in directory.services)
    lines = [
        f"Created the development network {directory.network_id!r} in {created.layout.root}",
        f"  CA certificate sha256 {created.ca_sha256}",
        f"  {len(directory.organisations)} synthetic organisations; network services: {services}",
        "Organisations by role:",
        *(f"  {role:<17} {', '.join(ids)}" for role, ids in sorted(by_role.items())),
        "Organisations by region:",
        *(f"  {region:<17} {', '.join(ids)}" for region, ids in sorted(by_region.items())),
        "Files:",
        "  ca/ca.pem, ca/ca.key                         the network CA (ECDSA P-256)",
        "  orgs/<org_id>/signing.key, kem.key           Ed25519 signing, X25519 key encapsulation",
        "  orgs/<org_id>/tls.key, tls.pem               mTLS client certificate",
        "  services/<service>/signing.key, tls.key, tls.pem",
        "  services/<service>/probe.key, probe.pem      client certificate of the edge's health probe",
        "  directory.json, directory.json.sig           the directory, signed by the CA",
        "Private keys are unencrypted PKCS#8 (mode 0600, folders 0700): for development only.",
    ]
    return "\n".join(lines)
