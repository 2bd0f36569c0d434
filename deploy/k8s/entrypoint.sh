#!/bin/sh
# The container image's one entrypoint (Dockerfile: ENTRYPOINT). The first argument names the process; the
# Deployments in deploy/k8s pass it as the container's args:
#
#   <service>-api       python -m services.<service>.edge                 (intake, referral, audit, notify)
#   <service>-worker    nameko run --config $WORKER_CONFIG_DIR/<service>-worker.yaml services.<service>.worker
#   <service>-relay     python -m services.core.messaging.relay           (intake, referral, notify: audit has none)
#   <service>-migrate   migrate the service's database ($DATABASE_URL) to the code's revision, then exit
#   install-network <service>
#                       copy the service's network Secret (flat keys) into the network folder layout in
#                       $NETWORK_DIR (an in-memory emptyDir), mode 0600, owned by this user; the KEK to
#                       $KEYVAULT_KEK_PATH when that is set (intake); and, when $WEBHOOK_SECRETS_DIR is set
#                       (notify's worker), the webhook secrets there (<org>.key) to notify/webhook-secrets/ in
#                       the folder (services/core/identity/webhook_secrets.py). An init container runs it because the
#                       loaders refuse key files that group or others may read (services/core/identity/
#                       keystore.py, keyvault/kek.py, keyvault/routing_keys.py) and a Secret volume readable by
#                       a non-root user is group-readable (fsGroup), its keys symlinks (refused too). Then exit.
#
# Anything after the process name is passed on. Unknown names exit 64 with this list.
set -eu

WORKER_CONFIG_DIR="${WORKER_CONFIG_DIR:-/etc/referralnet/config}"
NETWORK_SECRET_DIR="${NETWORK_SECRET_DIR:-/etc/referralnet/secrets/network}"
KEK_SECRET_FILE="${KEK_SECRET_FILE:-/etc/referralnet/secrets/kek/kek.key}"

usage() {
    echo "usage: <service>-api | <service>-worker | <service>-relay | <service>-migrate | install-network <service>" >&2
    echo "  services: intake, referral, audit, notify (relay: intake, referral, notify)" >&2
}

fail() {
    echo "entrypoint: $*" >&2
    exit 1
}

install_network() {
    service="${1:-}"
    case "$service" in intake|referral|audit|notify) ;; *) usage; exit 64 ;; esac
    target="${NETWORK_DIR:?NETWORK_DIR must name the folder to fill}"
    [ -d "$NETWORK_SECRET_DIR" ] || fail "$NETWORK_SECRET_DIR is missing: mount the $service-network Secret there"
    umask 077
    mkdir -p "$target/ca" "$target/routing" "$target/services/$service"
    for file in "$NETWORK_SECRET_DIR"/*; do
        [ -f "$file" ] || continue  # a Secret volume's own entries (..data) are hidden and not files
        name="${file##*/}"
        case "$name" in
            ca.pem) dest="$target/ca/ca.pem" ;;
            directory.json|directory.json.sig) dest="$target/$name" ;;
            nrk-*.key) dest="$target/routing/$name" ;;
            signing.key|tls.key|tls.pem|probe.key|probe.pem) dest="$target/services/$service/$name" ;;
            *) fail "unexpected key $name in the $service-network Secret (see deploy/k8s/README.md)" ;;
        esac
        cp "$file" "$dest"
        chmod 600 "$dest"
    done
    for required in ca/ca.pem directory.json directory.json.sig; do
        [ -f "$target/$required" ] || fail "the $service-network Secret lacks ${required##*/} (see deploy/k8s/README.md)"
    done
    if [ -n "${WEBHOOK_SECRETS_DIR:-}" ]; then
        [ -d "$WEBHOOK_SECRETS_DIR" ] || fail "$WEBHOOK_SECRETS_DIR is missing: mount the notify-webhook-secrets Secret there"
        mkdir -p "$target/notify/webhook-secrets"
        for file in "$WEBHOOK_SECRETS_DIR"/*; do
            [ -f "$file" ] || continue
            name="${file##*/}"
            case "$name" in
                *.key) ;;
                *) fail "unexpected key $name in the webhook secrets: each is <org id>.key (see deploy/k8s/README.md)" ;;
            esac
            cp "$file" "$target/notify/webhook-secrets/$name"
            chmod 600 "$target/notify/webhook-secrets/$name"
        done
    fi
    if [ -n "${KEYVAULT_KEK_PATH:-}" ]; then
        [ -f "$KEK_SECRET_FILE" ] || fail "$KEK_SECRET_FILE is missing: mount the intake-kek Secret (key kek.key)"
        mkdir -p "$(dirname "$KEYVAULT_KEK_PATH")"
        cp "$KEK_SECRET_FILE" "$KEYVAULT_KEK_PATH"
        chmod 600 "$KEYVAULT_KEK_PATH"
    fi
    echo "entrypoint: network folder for $service ready in $target"
}

process="${1:-}"
[ $# -gt 0 ] && shift

case "$process" in
    intake-api|referral-api|audit-api|notify-api)
        exec python -m "services.${process%-api}.edge" "$@"
        ;;
    intake-worker|referral-worker|audit-worker|notify-worker)
        exec nameko run --config "$WORKER_CONFIG_DIR/$process.yaml" "services.${process%-worker}.worker" "$@"
        ;;
    intake-relay|referral-relay|notify-relay)
        exec python -m services.core.messaging.relay "$@"
        ;;
    intake-migrate|referral-migrate|audit-migrate|notify-migrate)
        exec python -c 'import importlib, os, sys
importlib.import_module(f"services.{sys.argv[1]}.adapters.database").migrate(os.environ["DATABASE_URL"])
print(f"entrypoint: {sys.argv[1]} database migrated")' "${process%-migrate}"
        ;;
    install-network)
        install_network "$@"
        ;;
    help|-h|--help)
        usage
        ;;
    *)
        usage
        exit 64
        ;;
esac
