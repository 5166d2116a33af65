#!/bin/sh
# Build the booted-Debian podman images the molecule scenario of roles/netharden runs on.
#
#   sh scripts/build-debian-image.sh [12|11|12nm|12ifupdown ...]      (default: all four)
#
# Each image is debootstrapped (minbase + systemd as PID 1, dbus for networkctl,
# python3 for Ansible, iproute2 for the verify's veths, procps for sysctl) from the
# Debian mirror apt on this machine is configured with - read from apt's own sources at
# run time, never written anywhere - and imported with `podman import` as
#   localhost/netharden-debian12:latest      (bookworm, systemd 252, systemd-networkd)
#   localhost/netharden-debian11:latest      (bullseye, systemd 247, systemd-networkd)
#   localhost/netharden-debian12-nm:latest   (bookworm + network-manager 1.42: a host whose
#                                             stack is NetworkManager; no ifupdown)
#   localhost/netharden-debian12-ifupdown:latest (bookworm + ifupdown, systemd-networkd
#                                             installed and disabled: Debian's default host)
# The root filesystem tarballs are cached under $NETHARDEN_IMAGE_CACHE
# (default /var/cache/netharden/images); an image is debootstrapped again only when its
# tarball is missing, and imported again only when podman does not have the image
# (to refresh: remove the tarball and `podman rmi` the image, then run this again).
#
# Users with a registry set NETHARDEN_MOLECULE_IMAGE_DEBIAN12 / _DEBIAN11 / _DEBIAN12NM /
# _DEBIAN12IFUPDOWN to
# their own image (anything not under localhost/): this script then builds nothing for
# that image and molecule pulls it. NETHARDEN_DEBIAN_MIRROR overrides the mirror.
#
# udev is left out of 12 and 11 on purpose: in a container /sys is read-only,
# systemd-udevd does not start (ConditionPathIsReadWrite=/sys), and systemd-networkd works
# without it (it does not wait for udev inside a container), as in the netns lab.
# network-manager depends on udev, so 12nm has it installed, and the same holds: udevd does
# not start, and NetworkManager, seeing a read-only /sys, runs without udev ("no udev" in
# its platform log), as in the NetworkManager lab (netharden/lab/nm.py). minbase has no
# ifupdown; the 12nm build fails if anything pulled it in (NetworkManager's ifupdown plugin
# would then leave /etc/network/interfaces devices to it).
# The ifupdown image (12ifupdown) is Debian's default host: ifupdown installed, networkd
# disabled as the package leaves it, and the installer's /etc/network/interfaces (netcfg's
# text) for the primary NIC eth0, with two changes a --network=none container needs: "auto"
# instead of "allow-hotplug" (no udev to hotplug it) and a static address instead of DHCP
# (nothing answers DHCP). The container has no eth0 of its own: the molecule prepare step
# makes one (a veth pair) and ifupdown configures it.
# Needs root (debootstrap, rootful podman).
set -eu

CACHE=${NETHARDEN_IMAGE_CACHE:-/var/cache/netharden/images}
PACKAGES=systemd,systemd-sysv,dbus,python3,iproute2,procps
# the NetworkManager image: network-manager and what it pulls in (udev, polkitd, libnm ...);
# libpam-systemd provides the logind polkitd depends on (debootstrap resolves no virtual
# package: without it polkitd and network-manager stay unconfigured)
NM_PACKAGES=$PACKAGES,libpam-systemd,network-manager
IFUPDOWN_PACKAGES=$PACKAGES,ifupdown

die() {
    echo "build-debian-image: $*" >&2
    exit 1
}

say() {
    echo "build-debian-image: $*" >&2
}

# The URI of the Debian archive apt uses: the first deb822 stanza (or sources.list line)
# of type deb whose suites include a plain release (no -security / -updates suffix).
apt_mirror() {
    if [ -n "${NETHARDEN_DEBIAN_MIRROR:-}" ]; then
        echo "$NETHARDEN_DEBIAN_MIRROR"
        return 0
    fi
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -r "$f" ] || continue
        uri=$(awk '
            function flush() {
                if (deb && plain && uri != "" && !found) { print uri; found = 1 }
                deb = 0; plain = 0; uri = ""
            }
            /^[ \t]*#/ { next }
            /^[ \t]*$/ { flush(); next }
            tolower($1) == "types:" { for (i = 2; i <= NF; i++) if ($i == "deb") deb = 1 }
            tolower($1) == "uris:" { uri = $2 }
            tolower($1) == "suites:" { for (i = 2; i <= NF; i++) if ($i !~ /-/) plain = 1 }
            tolower($1) == "enabled:" && tolower($2) == "no" { deb = 0 }
            END { flush() }
        ' "$f")
        if [ -n "$uri" ]; then
            echo "$uri"
            return 0
        fi
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -r "$f" ] || continue
        uri=$(awk '
            $1 == "deb" {
                i = 2
                if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
                if ($(i + 1) !~ /-/) { print $i; exit }
            }
        ' "$f")
        if [ -n "$uri" ]; then
            echo "$uri"
            return 0
        fi
    done
    return 1
}

# debootstrap honours http_proxy; take apt's own proxy setting when the environment has none.
apt_proxy() {
    if [ -z "${http_proxy:-}" ] && command -v apt-config >/dev/null 2>&1; then
        proxy=""
        eval "$(apt-config shell proxy Acquire::http::Proxy)"
        if [ -n "$proxy" ] && [ "$proxy" != DIRECT ]; then
            http_proxy=$proxy
            export http_proxy
        fi
    fi
}

# build_rootfs SUITE PACKAGES TARBALL: debootstrap SUITE with PACKAGES and pack it into
# TARBALL (atomically).
build_rootfs() {
    suite=$1
    packages=$2
    tarball=$3
    command -v debootstrap >/dev/null 2>&1 || die "debootstrap is not installed (sh scripts/install-system-deps.sh)"
    mirror=$(apt_mirror) || die "no Debian mirror found in apt's sources (set NETHARDEN_DEBIAN_MIRROR)"
    apt_proxy
    mkdir -p "$CACHE"
    work=$(mktemp -d "$CACHE/.build-$suite.XXXXXX")
    # shellcheck disable=SC2064  # expand $work now: the trap must remove this build's dir
    trap "rm -rf '$work'" EXIT
    trap 'exit 130' INT TERM
    say "debootstrap $suite (minbase + $packages) from the mirror in apt's sources"
    start=$(date +%s)
    debootstrap --variant=minbase --include="$packages" \
        --keyring=/usr/share/keyrings/debian-archive-keyring.gpg \
        "$suite" "$work/root" "$mirror" >"$work/debootstrap.log" 2>&1 ||
        { tail -n 30 "$work/debootstrap.log" >&2; die "debootstrap $suite failed"; }
    root=$work/root
    check_rootfs "$root" "$packages"
    # A container image, not an installed machine: no apt sources (they would name the
    # mirror, and the containers run with --network=none), no caches, no machine id (systemd
    # makes one at boot), a hostname podman sets, no console getty.
    rm -f "$root/etc/apt/sources.list"
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/var/log/*.log
    : >"$root/etc/machine-id"
    rm -f "$root/var/lib/dbus/machine-id"
    echo localhost >"$root/etc/hostname"
    ln -sf /dev/null "$root/etc/systemd/system/getty@.service"
    ln -sf /dev/null "$root/etc/systemd/system/console-getty.service"
    tar -C "$root" --numeric-owner -czf "$work/rootfs.tar.gz" .
    mv "$work/rootfs.tar.gz" "$tarball"
    rm -rf "$work"
    trap - EXIT INT TERM
    say "$suite rootfs built in $(($(date +%s) - start)) s: $tarball"
}

# The Debian 12 installer's /etc/network/interfaces (netcfg), eth0 brought up by "auto" with
# a static address (see the header).
write_interfaces() {
    cat >"$1/etc/network/interfaces" <<'INTERFACES'
# This file describes the network interfaces available on your system
# and how to activate them. For more information, see interfaces(5).

source /etc/network/interfaces.d/*

# The loopback network interface
auto lo
iface lo inet loopback

# The primary network interface
auto eth0
iface eth0 inet static
	address 192.0.2.10/24
INTERFACES
}

# check_rootfs ROOT PACKAGES: with network-manager, it is installed, enabled at boot, and
# ifupdown is not installed; with ifupdown, it is installed, networking.service is enabled
# and systemd-networkd is not.
check_rootfs() {
    case ",$2," in
        *,ifupdown,*)
            grep -qx 'Package: ifupdown' "$1/var/lib/dpkg/status" || die "ifupdown is not installed in the rootfs"
            [ -L "$1/etc/systemd/system/multi-user.target.wants/networking.service" ] ||
                die "networking.service is not enabled in the rootfs"
            [ ! -e "$1/etc/systemd/system/multi-user.target.wants/systemd-networkd.service" ] ||
                die "systemd-networkd is enabled in the rootfs"
            write_interfaces "$1"
            return 0
            ;;
        *,network-manager,*) ;;
        *) return 0 ;;
    esac
    status=$1/var/lib/dpkg/status
    grep -qx 'Package: network-manager' "$status" || die "network-manager is not installed in the rootfs"
    ! grep -qx 'Package: ifupdown' "$status" || die "ifupdown got installed next to network-manager"
    [ -L "$1/etc/systemd/system/multi-user.target.wants/NetworkManager.service" ] ||
        die "NetworkManager.service is not enabled in the rootfs"
}

# build RELEASE SUITE IMAGE PACKAGES VARIABLE
build() {
    release=$1
    suite=$2
    image=$3
    packages=$4
    variable=$5
    case $image in
        localhost/*) ;;
        *)
            say "debian$release: using $image (set by $variable), nothing to build"
            return 0
            ;;
    esac
    if podman image exists "$image"; then
        say "debian$release: $image is present"
        return 0
    fi
    tarball=$CACHE/netharden-debian$release-rootfs.tar.gz
    if [ ! -s "$tarball" ]; then
        build_rootfs "$suite" "$packages" "$tarball"
    else
        say "debian$release: using the cached rootfs $tarball"
    fi
    podman import --quiet \
        --change 'CMD ["/sbin/init"]' \
        --change 'ENV container=podman' \
        --change 'STOPSIGNAL SIGRTMIN+3' \
        --message "netharden molecule image: Debian $release ($suite) debootstrap minbase + $packages" \
        "$tarball" "$image" >/dev/null
    say "debian$release: imported $image"
}

[ "$(id -u)" = 0 ] || die "needs root (debootstrap and rootful podman)"
command -v podman >/dev/null 2>&1 || die "podman is not installed (sh scripts/install-system-deps.sh)"

[ $# -gt 0 ] || set -- 12 11 12nm 12ifupdown
for release in "$@"; do
    case $release in
        12)
            build 12 bookworm "${NETHARDEN_MOLECULE_IMAGE_DEBIAN12:-localhost/netharden-debian12:latest}" \
                "$PACKAGES" NETHARDEN_MOLECULE_IMAGE_DEBIAN12
            ;;
        11)
            build 11 bullseye "${NETHARDEN_MOLECULE_IMAGE_DEBIAN11:-localhost/netharden-debian11:latest}" \
                "$PACKAGES" NETHARDEN_MOLECULE_IMAGE_DEBIAN11
            ;;
        12nm)
            build 12nm bookworm "${NETHARDEN_MOLECULE_IMAGE_DEBIAN12NM:-localhost/netharden-debian12-nm:latest}" \
                "$NM_PACKAGES" NETHARDEN_MOLECULE_IMAGE_DEBIAN12NM
            ;;
        12ifupdown)
            build 12ifupdown bookworm \
                "${NETHARDEN_MOLECULE_IMAGE_DEBIAN12IFUPDOWN:-localhost/netharden-debian12-ifupdown:latest}" \
                "$IFUPDOWN_PACKAGES" NETHARDEN_MOLECULE_IMAGE_DEBIAN12IFUPDOWN
            ;;
        *) die "unknown release '$release' (12, 11, 12nm or 12ifupdown)" ;;
    esac
done
