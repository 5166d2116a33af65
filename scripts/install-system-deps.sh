#!/bin/sh
# Install the Debian packages the test suite runs for real (idempotent; apt only when
# something is missing). Needs root; without root it only says what is missing.
set -eu

# iproute2: ip netns/link/addr; systemd: systemd-networkd; dbus: a private bus for
# 'networkctl reload'; udev: udevadm test-builtin net_setup_link for .link files;
# util-linux: unshare/nsenter; shellcheck: lints every shell script in the repository.
PACKAGES="
iproute2
systemd
dbus
udev
util-linux
shellcheck
"

missing=""
for pkg in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $pkg"
    fi
done
[ -x /lib/systemd/systemd-networkd ] || missing="$missing systemd"

if [ -z "$missing" ]; then
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "install-system-deps: missing Debian packages:$missing (run as root to install them)" >&2
    exit 0
fi
echo "install-system-deps: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
