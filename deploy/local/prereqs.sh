#!/usr/bin/env bash
# Checks the system tools the project needs and, as root, installs the missing ones with apt-get.
# Not root: prints the exact command to run and fails. Usage: deploy/local/prereqs.sh [--with-npm]
set -euo pipefail

want_npm=0
[ "${1:-}" = "--with-npm" ] && want_npm=1
missing=()

python_ok() {
  command -v python3 >/dev/null &&
    python3 -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' &&
    python3 -c 'import ensurepip, venv' 2>/dev/null
}
java_ok() {
  local java="${JAVA_HOME:+$JAVA_HOME/bin/}java"
  command -v "$java" >/dev/null || return 1
  local major
  major=$("$java" -version 2>&1 | sed -n 's/.*version "\([0-9]*\)\.*.*/\1/p' | head -n 1)
  [ -n "$major" ] && [ "$major" -ge 17 ]
}

python_ok || missing+=(python3 python3-venv)
java_ok || missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || missing+=(maven)
command -v make >/dev/null || missing+=(make)
[ "$want_npm" = 1 ] && ! command -v npm >/dev/null && missing+=(npm)

[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing missing system packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  python_ok || { echo "error: Python >= 3.11 with venv is needed; this system's python3 is $(python3 --version 2>&1)" >&2; exit 1; }
  java_ok || { echo "error: Java >= 17 is still not the default java; set JAVA_HOME to a Java 17+ install" >&2; exit 1; }
  exit 0
fi

echo "error: missing system packages: ${missing[*]}" >&2
echo "install them with: sudo apt-get install ${missing[*]}" >&2
echo "(Python must be >= 3.11 and Java >= 17; JAVA_HOME may name a Java elsewhere)" >&2
exit 1
