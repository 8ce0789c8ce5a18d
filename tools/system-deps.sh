#!/usr/bin/env bash
# Installs the Debian packages genbench's tests and tools use, once.
# Idempotent: packages already present are skipped without touching apt.
# Usage: tools/system-deps.sh [PACKAGE...]   (default: everything below)
set -euo pipefail

default_pkgs=(chromium)
pkgs=("${@:-${default_pkgs[@]}}")

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "genbench: needs Debian packages: ${missing[*]}" >&2
  echo "  fix: sudo apt-get install -y ${missing[*]}   (or run as root)" >&2
  exit 1
fi
echo "genbench: installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
