#!/bin/sh
# netharden lab: the holder, PID 1 of the lab's PID namespace inside its private mount
# namespace (netharden/lab/netns.py runs it as `sh -c "$(cat holder.sh)" nhlab-holder`
# under `nsenter --net=... unshare --mount --pid --fork --kill-child`). It prepares the
# mounts networkd sees, prints READY and sleeps until the lab kills it.
#
# Environment (set by NetworkdLab.setup):
#   NHTEST_UID, NHTEST_GID  systemd-network's uid and gid (owner of /run/systemd/netif)
#   NHTEST_ETC              the staged etc-systemd directory, mounted over /etc/systemd
#   NHTEST_NETWORK_BIND     optional: bind-mounted over /etc/systemd/network
#   NHTEST_DROPIN_BIND      optional: bind-mounted over /etc/systemd/networkd.conf.d
#   NHTEST_HIDE             optional: blank-separated directories hidden behind empty tmpfs
set -eu
: "${NHTEST_UID?}" "${NHTEST_GID?}" "${NHTEST_ETC?}"
mount --make-rprivate /
# Drop our copies of nsfs mounts (other labs' /run/netns/nhlab-*, docker's
# netns, ...) and of everything under /run: a copy would keep those network
# namespaces alive for as long as this lab runs.
awk '{ split($0, a, " - "); split(a[2], b, " ");
       if (b[1] == "nsfs" || $5 ~ "^/run/") print $5 }' /proc/self/mountinfo \
    | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
umount -l /sys 2>/dev/null || true
mount -t sysfs -o ro,nosuid,nodev,noexec sysfs /sys
mount -t tmpfs -o mode=0755,nosuid,nodev,size=16m nhlab-run /run
mkdir -p /run/systemd/network /run/systemd/netif /run/dbus
chown "$NHTEST_UID:$NHTEST_GID" /run/systemd/netif
mount --bind "$NHTEST_ETC" /etc/systemd
if [ -n "${NHTEST_NETWORK_BIND:-}" ]; then
    mount --bind "$NHTEST_NETWORK_BIND" /etc/systemd/network
fi
if [ -n "${NHTEST_DROPIN_BIND:-}" ]; then
    mount --bind "$NHTEST_DROPIN_BIND" /etc/systemd/networkd.conf.d
fi
if [ -n "${NHTEST_HIDE:-}" ]; then
    for d in $NHTEST_HIDE; do
        mount -t tmpfs -o ro,mode=0755,size=4k nhlab-empty "$d"
    done
fi
echo READY
exec sleep infinity
