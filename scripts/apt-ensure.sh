#!/bin/sh
# Installs the named Debian packages that are missing, through apt when root.
# Without root it only says what is missing (the process runtime still works).
set -eu
missing=""
for pkg in "$@"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing="$missing $pkg"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "apt-ensure: not root; please install:$missing" >&2
  exit 0
fi
echo "apt-ensure: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends $missing >/dev/null
