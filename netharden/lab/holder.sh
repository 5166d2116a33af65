#!/bin/sh
# netharden lab: the holder, PID 1 of a lab's PID namespace inside its private mount
# namespace, for both stacks (NetworkdLab in netns.py, NetworkManagerLab in nm.py).
# netharden/lab/nsbase.py runs it as `sh -c "$(cat holder.sh)" nhlab-holder` under
# `nsenter --net=... unshare --mount --pid [--uts] --fork --kill-child`. It prepares the
# mounts the daemon sees, prints READY and sleeps until the lab kills it.
#
# Environment (set by the lab, NamespaceLab._holder_env):
#   NHTEST_SYSFS     ro (default) or rw: how the sysfs of this netns is mounted on /sys
#   NHTEST_PROC     optional: "private" = a proc of the lab's PID namespace on /proc (its
#                    PID 1 is this script, not the host's init)
#   NHTEST_RUN_DIRS  optional: blank-separated directories made on the fresh tmpfs /run
#   NHTEST_OWNED     optional: blank-separated directories chown'ed to NHTEST_OWNER (UID:GID)
#   NHTEST_DEV       optional: "private" = /dev becomes a tmpfs holding only null, zero,
#                    full, random, urandom, tty (bind mounts of the host's) and fd links
#   NHTEST_OVERLAY   optional: blank-separated directories that get a writable overlay
#                    (upper and work dirs on the lab's /run tmpfs): writes land there
#   NHTEST_BINDS     optional: newline-separated TARGET=SOURCE bind mounts, in this order
#                    (TARGET must exist: nothing is created outside the private mounts)
#   NHTEST_HIDE      optional: blank-separated directories hidden behind empty read-only tmpfs
set -eu
mount --make-rprivate /
# Drop our copies of nsfs mounts (other labs' /run/netns/nhlab-*, docker's
# netns, ...) and of everything under /run: a copy would keep those network
# namespaces alive for as long as this lab runs.
awk '{ split($0, a, " - "); split(a[2], b, " ");
       if (b[1] == "nsfs" || $5 ~ "^/run/") print $5 }' /proc/self/mountinfo \
    | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
umount -l /sys 2>/dev/null || true
case "${NHTEST_SYSFS:-ro}" in
    ro) mount -t sysfs -o ro,nosuid,nodev,noexec sysfs /sys ;;
    rw) mount -t sysfs -o rw,nosuid,nodev,noexec sysfs /sys ;;
    *) echo "holder: NHTEST_SYSFS must be ro or rw, not ${NHTEST_SYSFS}" >&2; exit 2 ;;
esac
if [ "${NHTEST_PROC:-}" = private ]; then
    mount -t proc -o nosuid,nodev,noexec nhlab-proc /proc
fi
mount -t tmpfs -o mode=0755,nosuid,nodev,size=16m nhlab-run /run
for d in ${NHTEST_RUN_DIRS:-}; do
    mkdir -p "$d"
done
for d in ${NHTEST_OWNED:-}; do
    chown "${NHTEST_OWNER?}" "$d"
done
if [ "${NHTEST_DEV:-}" = private ]; then
    dev=/run/.nhlab-dev
    mkdir "$dev"
    mount -t tmpfs -o mode=0755,nosuid,noexec,size=1m nhlab-dev "$dev"
    for n in null zero full random urandom tty; do
        if [ -c "/dev/$n" ]; then
            : > "$dev/$n"
            mount --bind "/dev/$n" "$dev/$n"
        fi
    done
    ln -s /proc/self/fd "$dev/fd"
    ln -s /proc/self/fd/0 "$dev/stdin"
    ln -s /proc/self/fd/1 "$dev/stdout"
    ln -s /proc/self/fd/2 "$dev/stderr"
    mount --move "$dev" /dev
    rmdir "$dev"
fi
n=0
for d in ${NHTEST_OVERLAY:-}; do
    n=$((n + 1))
    o=/run/.nhlab-overlay/$n
    mkdir -p "$o/upper" "$o/work"
    mount -t overlay -o "lowerdir=$d,upperdir=$o/upper,workdir=$o/work" nhlab-overlay "$d"
done
while IFS= read -r b; do
    if [ -n "$b" ]; then
        mount --bind "${b#*=}" "${b%%=*}"
    fi
done <<EOF
${NHTEST_BINDS:-}
EOF
for d in ${NHTEST_HIDE:-}; do
    mount -t tmpfs -o ro,mode=0755,size=4k nhlab-empty "$d"
done
echo READY
exec sleep infinity
