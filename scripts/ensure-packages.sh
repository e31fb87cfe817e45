#!/usr/bin/env bash
# ensure-packages.sh PKG... — make sure the given Debian packages are installed.
#
# Quiet and idempotent when everything is present. As root, missing packages are
# installed (one `apt-get update`, then one `apt-get install` for all of them);
# otherwise the script prints the command to run and exits 1.
# The caller may set ENSURE_PACKAGES_FOR="what needs them" for the messages.
set -euo pipefail

if [ "$#" -eq 0 ]; then
    echo "usage: $0 PACKAGE..." >&2
    exit 2
fi

needed_for="${ENSURE_PACKAGES_FOR:-$(basename "${0}")}"

missing=()
for pkg in "$@"; do
    status="$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)"
    if [ "$status" != "installed" ]; then
        missing+=("$pkg")
    fi
done

[ "${#missing[@]}" -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "ensure-packages: missing Debian packages (needed for ${needed_for}): ${missing[*]}" >&2
    echo "ensure-packages: run as root:" >&2
    echo "    apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
fi

for pkg in "${missing[@]}"; do
    echo "ensure-packages: installing ${pkg} (needed for ${needed_for})"
done
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
