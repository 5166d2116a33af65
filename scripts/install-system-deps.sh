#!/bin/sh
# Install the Debian packages the test suite runs for real (idempotent; apt only when
# something is missing). Needs root; without root it only says what is missing.
set -eu

# iproute2: ip netns/link/addr; systemd: systemd-networkd; dbus: a private bus for
# 'networkctl reload'; udev: udevadm test-builtin net_setup_link for .link files;
# util-linux: unshare/nsenter; shellcheck: lints every shell script in the repository;
# docker.io: the real dockerd 20.10 (and containerd, which it starts itself) that accepts
# or refuses rendered daemon.json files, and the packaged docker.service the drop-in is
# verified against; iptables: dockerd sets up its DOCKER chains (iptables: true) in the
# test's network namespace and refuses to start without the binary; procps: sysctl -p,
# the post-apply action for sysctl.d; docker-compose: parses the rendered compose
# fragments; unattended-upgrades + python3-apt: its real blacklist matcher and apt's
# config parser read the rendered package-hold snippet; ignition: ignition-validate and
# the real Ignition binary (in its dracut module) that applies configs to a scratch root;
# cloud-init: 'cloud-init schema' and 'cloud-init single' on the rendered cloud-config;
# netplan.io: 'netplan generate', the reference benchmarks/cli.py times the CLI against;
# network-manager: the real NetworkManager 1.42 the NetworkManager stack's files are run on
# (only in throwaway namespaces: policy-rc.d keeps its service from starting at install);
# jq: a non-Python consumer that reads --format plan documents; podman + runc/conmon:
# rootful containers booting systemd for the role's molecule scenario;
# containernetworking-plugins: podman's network-stack dependency, named because installs
# skip recommends; debootstrap + debian-archive-keyring: scripts/build-debian-image.sh.
PACKAGES="
iproute2
systemd
dbus
udev
util-linux
shellcheck
docker.io
iptables
procps
docker-compose
unattended-upgrades
python3-apt
ignition
cloud-init
jq
netplan.io
network-manager
podman
runc
conmon
containernetworking-plugins
debootstrap
debian-archive-keyring
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
# docker.io's maintainer scripts would start docker.service and containerd.service; the
# suite runs dockerd only inside throwaway namespaces, so no service starts during the
# install (policy-rc.d exit 101, honoured by invoke-rc.d and deb-systemd-invoke).
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 0755 "$policy"
    trap 'rm -f "$policy"' EXIT
fi
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
