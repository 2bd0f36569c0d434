"""``referralnet network ...``: the commands of the identity area (``network init``, ``network endpoints``)."""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

from services.core.identity.directory import Directory
from services.core.identity.endpoints import set_notify_endpoints
from services.core.identity.errors import IdentityError
from services.core.identity.keystore import NetworkLayout, load_directory
from services.core.identity.network import NetworkCreated, init_network
from services.core.identity.records import NotifyEndpoints
from services.core.identity.vocabulary import region_word, role_word
from services.core.identity.webhook_secrets import org_webhook_secret_path, webhook_secret_path

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
    endpoints = commands.add_parser(
        "endpoints",
        help="set where an organisation's notices go (webhook, e-mail); re-signs the directory",
        description="Set an organisation's notification endpoints in the signed directory (serial + 1). "
                    "Without --webhook and --email its endpoints are cleared. A webhook gets a secret "
                    "(32 random bytes) the first time, or with --rotate-secret; restart notify afterwards.",
    )
    endpoints.add_argument("folder", nargs="?", type=Path, default=Path("network"), help="default: ./network")
    endpoints.add_argument("--org", required=True, metavar="ID", help="the organisation's id")
    endpoints.add_argument("--webhook", default="", metavar="URL",
                           help="https://host[:port]/path (http:// only to 127.0.0.1, ::1 or localhost)")
    endpoints.add_argument("--email", default="", metavar="ADDR", help="one address, local@domain")
    endpoints.add_argument("--rotate-secret", action="store_true", help="give the webhook a new secret")
    endpoints.set_defaults(handler=run_endpoints)


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


def run_endpoints(args: argparse.Namespace) -> int:
    """Handler of ``network endpoints``: change the endpoints and say what changed; 1 with a message on failure."""
    try:
        before = load_directory(args.folder)
        had_secret = webhook_secret_path(args.folder, args.org).exists()
        after = set_notify_endpoints(args.folder, args.org, webhook_url=args.webhook, email=args.email,
                                     rotate_secret=args.rotate_secret)
    except (IdentityError, OSError) as exc:
        print(f"referralnet network endpoints: {exc}", file=sys.stderr)
        return 1
    secret = "rotated" if args.rotate_secret else "kept" if had_secret else "new"
    print(endpoints_summary(args.folder, args.org, before, after, secret=secret if args.webhook else None))
    return 0


def endpoints_summary(folder: Path, org_id: str, before: Directory, after: Directory, *, secret: str | None) -> str:
    """What ``network endpoints`` changed: the directory's serial, each endpoint, and where the secret is."""
    old, new = before.org(org_id).notify, after.org(org_id).notify
    if after.serial == before.serial:
        lines = [f"{org_id}: endpoints unchanged; directory serial {after.serial} kept"]
    else:
        lines = [f"{org_id}: endpoints changed; directory {after.network_id!r} re-signed by the CA, serial "
                 f"{before.serial} -> {after.serial} ({NetworkLayout(folder).directory})"]
    for label, field in (("webhook", "webhook_url"), ("e-mail", "email")):
        was, now = _endpoint(old, field), _endpoint(new, field)
        lines.append(f"  {label:<8} {now}" if was == now else f"  {label:<8} {was} -> {now}")
    if secret is not None:
        lines += [f"Webhook secret ({secret}), 32 bytes as base64, mode 0600:",
                  f"  {webhook_secret_path(folder, org_id)}   notify's copy",
                  f"  {org_webhook_secret_path(folder, org_id)}   the organisation's copy (to verify notices)"]
    if after.serial != before.serial or secret in {"new", "rotated"}:
        lines.append("Restart notify (edge and worker) to use them: it reads the directory and secrets at start.")
    return "\n".join(lines)


def _endpoint(notify: NotifyEndpoints | None, field: str) -> str:
    value: str = getattr(notify, field) if notify is not None else ""
    return value or "(none)"
