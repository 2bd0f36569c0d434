#!/usr/bin/env bash
# Lint the protobuf schemas with buf (rules in proto/buf.yaml: STANDARD).
#
#   bash proto/lint.sh
#
# buf comes from the npm package @bufbuild/buf, pinned to BUF_VERSION below. npm ships buf's native
# binary inside a per-platform package (@bufbuild/buf-linux-x64, ...), so nothing is downloaded
# outside the npm registry. It is installed once into a cache folder outside the repository,
# one folder per version, and reused from then on:
#   ${XDG_CACHE_HOME:-$HOME/.cache}/referralnet/buf/<version>
# Needs node and npm on PATH. Exits non-zero when buf reports a lint error.
set -euo pipefail

BUF_VERSION="1.75.0"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache_dir="${XDG_CACHE_HOME:-$HOME/.cache}/referralnet/buf/${BUF_VERSION}"
buf="${cache_dir}/node_modules/.bin/buf"

if [[ ! -x "$buf" ]]; then
    for tool in node npm; do
        if ! command -v "$tool" >/dev/null; then
            echo "lint.sh: $tool not found on PATH; install Node.js (with npm) to run buf" >&2
            exit 1
        fi
    done
    echo "lint.sh: installing @bufbuild/buf@${BUF_VERSION} into ${cache_dir}" >&2
    mkdir -p "$(dirname "$cache_dir")"
    # Install into a scratch folder and rename it into place, so an interrupted install never
    # leaves a half-filled cache that later runs would trust.
    staging="$(mktemp -d "${cache_dir}.XXXXXX")"
    trap 'rm -rf "$staging"' EXIT
    # --ignore-scripts: the package's postinstall only re-checks the native binary (or, when the
    # platform package is missing, runs npm again to fetch it); bin/buf finds the platform binary
    # by itself. Skipping it gives the same result on every npm version (npm 11 skips unapproved
    # install scripts with a warning anyway).
    npm install --prefix "$staging" --no-audit --no-fund --no-package-lock --ignore-scripts \
        --loglevel=error "@bufbuild/buf@${BUF_VERSION}" >&2
    rm -rf "$cache_dir"
    mv "$staging" "$cache_dir"
    trap - EXIT
fi

installed="$("$buf" --version)"
if [[ "$installed" != "$BUF_VERSION" ]]; then
    echo "lint.sh: ${buf} reports version ${installed}, expected ${BUF_VERSION}; delete ${cache_dir}" >&2
    exit 1
fi

cd "$repo_root/proto"
buf_status=0
"$buf" lint || buf_status=$?
if [[ $buf_status -ne 0 ]]; then
    echo "lint.sh: buf lint failed (exit ${buf_status})" >&2
    exit "$buf_status"
fi
echo "buf ${BUF_VERSION}: lint passed"
