#!/usr/bin/env bash
# Install the Debian packages Vitrine needs, or say exactly how to.
# Usage: scripts/system-deps.sh demo|test
# demo: libzbar0 (pyzbar), mosquitto (optional: the demo falls back to an embedded broker)
# test: the above plus mosquitto-clients, PostgreSQL (central service tests), Chromium
#       (the panel's browser test drives Debian's /usr/bin/chromium with Playwright)
#       openssl (the TLS listener test makes its own throw-away certificates), and for the
#       Kivy window tests (signage, kiosk) Xvfb plus the GL and multitouch libraries Kivy's
#       SDL2 wheel loads (libgl1, libegl1, libgl1-mesa-dri: Mesa's software renderer; libmtdev1).
set -euo pipefail
profile="${1:-test}"
need=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
pkgs=(libzbar0 mosquitto)
if [ "$profile" = "test" ]; then
  pkgs+=(mosquitto-clients postgresql chromium openssl xvfb libgl1 libegl1 libgl1-mesa-dri libmtdev1)
fi
for p in "${pkgs[@]}"; do
  have_pkg "$p" || need+=("$p")
done
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null; then
  echo "vitrine: missing system packages: ${need[*]} (not a Debian system: install them by hand)" >&2
  [ "$profile" = "demo" ] && exit 0 || exit 1
fi
if [ "$(id -u)" = "0" ]; then
  echo "vitrine: installing ${need[*]} with apt-get" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  # The Debian package starts a system-wide broker on :1883; Vitrine runs its own.
  if command -v systemctl >/dev/null && systemctl is-active --quiet mosquitto 2>/dev/null; then
    systemctl disable --now mosquitto >/dev/null 2>&1 || true
  fi
else
  echo "vitrine: missing system packages. Run:" >&2
  echo "    sudo apt-get install -y ${need[*]}" >&2
  if [ "$profile" = "demo" ] && [[ " ${need[*]} " != *" libzbar0 "* ]]; then
    exit 0  # only mosquitto missing: the demo uses its embedded broker
  fi
  exit 1
fi
