"""The rendered quarantine helper against the real systemd-networkd, in a throwaway
network + mount namespace (netharden/lab/netns.py).

Only the helper and a real-[Match] uplink file are installed: none of netharden's
0-netharden-unmanaged-* files, which would protect the veths on their own. So what
keeps the veths unmanaged here is the quarantine itself.

The helper runs in the lab's mount namespace with its production paths (no test
root): /run there is the lab's own tmpfs. networkd is not run by systemd in the lab
(no /run/systemd/system), so the helper finds it by its process and reloads it with
``networkctl reload`` over the lab's private D-Bus.
"""
from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import pytest

import netharden
from helpers import minimal
from netharden.lab.netns import NetworkdLab, leftovers, require_or_skip

pytestmark = pytest.mark.netns

HELPER = "/usr/local/libexec/netharden/netharden-quarantine"
RUN = "/run/systemd/network"
STRAY = "[Match]\nName=*\n\n[Network]\nDHCP=yes\n"   # what the VMware host had: takes all, DHCP forever
UPLINK = ("[Match]\nName=nhq-up0\n\n[Network]\nAddress=192.0.2.10/24\n"
          "LinkLocalAddressing=no\nIPv6AcceptRA=no\n")
CLAIMED = ("configuring", "configured")
SETTLED = ("unmanaged", "configuring", "configured")


@pytest.fixture(autouse=True)
def _needs_namespaces():
    require_or_skip(pytest)


def networkd_version() -> int:
    out = subprocess.run(["networkctl", "--version"], capture_output=True, text=True, check=True).stdout
    return int(re.match(r"systemd (\d+)", out).group(1))


@pytest.fixture(scope="module")
def helper(tmp_path_factory) -> Path:
    """The helper rendered for the systemd that runs in the lab (a reload needs >= 244)."""
    plan = netharden.plan(netharden.load(minimal(platform={"os": "debian", "systemd": networkd_version()})))
    text = next(f.content for f in plan.files if f.path == HELPER)
    path = tmp_path_factory.mktemp("helper") / "netharden-quarantine"
    path.write_text(text)
    path.chmod(0o755)
    return path


def run_helper(lab: NetworkdLab, helper: Path) -> str:
    done = lab.run("sh", str(helper), check=False)
    assert done.returncode == 0, done.stderr + lab.describe()
    return done.stderr


def claimed_by(lab: NetworkdLab, ifname: str, network_file: str, timeout: float = 10) -> None:
    """Wait until networkd manages ifname with network_file (a reload is asynchronous)."""
    deadline = time.monotonic() + timeout
    while True:
        state = lab.wait_for(ifname, CLAIMED, timeout=timeout)
        if state.get("NETWORK_FILE") == network_file:
            return
        assert time.monotonic() < deadline, (ifname, state, lab.describe())
        time.sleep(0.02)


def assert_unmanaged(lab: NetworkdLab, *names: str) -> None:
    for name in names:
        state = lab.wait_for(name, "unmanaged", timeout=10)
        assert "NETWORK_FILE" not in state, (name, state, lab.describe())


def test_quarantine_frees_container_veths_on_real_networkd(tmp_path, helper):
    etc = tmp_path / "etc-network"
    etc.mkdir()
    with NetworkdLab(etc, start=False) as lab:
        run = lab.root_path(RUN)
        (run / "00-.network").write_text(STRAY)
        (run / "10-uplink.network").write_text(UPLINK)
        (run / "05-masked.network").symlink_to("/dev/null")
        lab.start()

        # the harm (incident 1): the stray sorts first and takes everything
        lab.add_veth("nhq-up0", "nhq-up0p")
        lab.add_veth("veth1a2b3c4", "nhq-c1")          # a container's veth pair appears
        for name in ("nhq-up0", "veth1a2b3c4", "nhq-c1"):
            claimed_by(lab, name, f"{RUN}/00-.network")

        mark = lab.log_mark()
        log = run_helper(lab, helper)
        assert f"moved {RUN}/00-.network to /run/netharden/quarantine/00-.network" in log
        assert "reloaded systemd-networkd" in log
        assert "member=Reload" in lab.log_text(since=mark)       # networkd got the helper's reload

        quarantine = lab.root_path("/run/netharden/quarantine")
        assert (quarantine / "00-.network").read_text() == STRAY
        assert not (run / "00-.network").exists()
        assert (run / "10-uplink.network").read_text() == UPLINK       # a real [Match]: not moved
        assert (run / "05-masked.network").is_symlink()                # a mask: not moved
        assert_unmanaged(lab, "veth1a2b3c4", "nhq-c1", "nhq-up0p")
        claimed_by(lab, "nhq-up0", f"{RUN}/10-uplink.network")
        lab.wait_for("nhq-up0", "configured", timeout=10)
        assert "192.0.2.10/24" in lab.addresses("nhq-up0")

        # the VMware case: the file is written again later, more containers start
        (run / "00-.network").write_text(STRAY)
        lab.run("networkctl", "reload")
        lab.add_veth("veth5d6e7f8", "nhq-c2")
        claimed_by(lab, "veth5d6e7f8", f"{RUN}/00-.network")
        log = run_helper(lab, helper)
        assert "to /run/netharden/quarantine/00-.network.1 " in log          # never over the first one
        assert sorted(p.name for p in quarantine.iterdir()) == ["00-.network", "00-.network.1"]
        assert_unmanaged(lab, "veth5d6e7f8", "nhq-c2", "veth1a2b3c4", "nhq-c1")
        claimed_by(lab, "nhq-up0", f"{RUN}/10-uplink.network")
        lab.wait_for("nhq-up0", "configured", timeout=10)

        # nothing left to move: no reload
        mark = lab.log_mark()
        log = run_helper(lab, helper)
        assert "moved 0" in log and "reload" not in log
        assert "member=Reload" not in lab.log_text(since=mark)
    assert leftovers(ignore_other_live_owners=True) == []


# Files whose meaning turns on how they are parsed. Each goes alone into the lab's
# /run/systemd/network; a fresh veth shows whether the real networkd lets it take the
# veth, and the helper must move exactly those files. (Files without any interface
# condition are not here: networkd >= 245 ignores them, older ones took everything;
# test_quarantine.py covers them.)
DIFFERENTIAL = {
    "name-star": ("[Match]\nName=*\n", {}),
    "blanks-and-tabs": ("[Match]\n  Name \t=\t *  \n", {}),
    "crlf": ("[Match]\r\nName=*\r\n", {}),
    "no-final-newline": ("[Match]\nName=*", {}),
    "quoted-star": ('[Match]\nName="*"\n', {}),
    "star-among-globs": ("[Match]\nName=en* *\n", {}),
    "question-star": ("[Match]\nName=?*\n", {}),
    "star-with-exclusion": ("[Match]\nName=* !nhq*\n", {}),
    "literal-word": ("[Match]\nName=*x\n", {}),
    "reset-then-star": ("[Match]\nName=nhq-none\nName=\nName=*\n", {}),
    "mac-reset": ("[Match]\nMACAddress=02:00:00:00:00:99\nMACAddress=\nName=*\n", {}),
    "mac": ("[Match]\nName=*\nMACAddress=02:00:00:00:00:99\n", {}),
    "lowercase-section": ("[Match]\nName=*\n[match]\nName=nhq-none\n", {}),
    "assignment-outside-section": ("Name=nhq-none\n[Match]\nName=*\n", {}),
    "second-match-section": ("[Match]\nName=*\n[Network]\nDHCP=no\n[Match]\nName=nhq-none\n", {}),
    "continuation": ("[Match]\nName=nhq-none \\\n *\n", {}),
    "continuation-over-comment": ("[Match]\nName=nhq-none \\\n# x \\\n *\n", {}),
    "comment-does-not-continue": ("[Match]\n# MACAddress=02:00:00:00:00:99 \\\nName=*\n", {}),
    "invalid-section-header": ("[Match\nName=*\n", {}),
    "dropin-narrows": ("[Match]\nName=*\n", {f"{RUN}/00-q.network.d/mac.conf": "[Match]\nMACAddress=02:00:00:00:00:99\n"}),
    "dropin-masked": ("[Match]\nName=*\n", {f"{RUN}/00-q.network.d/mac.conf": "[Match]\nMACAddress=02:00:00:00:00:99\n",
                                           "/etc/systemd/network/00-q.network.d/mac.conf": None}),
    "dropin-resets": ("[Match]\nName=nhq-none\n", {f"{RUN}/00-q.network.d/star.conf": "[Match]\nName=\nName=*\n"}),
    "dropin-without-section": ("[Match]\nName=*\n", {f"{RUN}/00-q.network.d/x.conf": "MACAddress=02:00:00:00:00:99\n"}),
}


def test_helper_moves_exactly_what_real_networkd_lets_take_every_interface(tmp_path, helper):
    etc = tmp_path / "etc-network"
    etc.mkdir()
    agree = {}
    with NetworkdLab(etc) as lab:
        run = lab.root_path(RUN)
        quarantine = lab.root_path("/run/netharden/quarantine")
        for i, (case, (text, dropins)) in enumerate(sorted(DIFFERENTIAL.items())):
            created = [run / "00-q.network"]
            (run / "00-q.network").write_bytes(text.encode())
            for path, content in dropins.items():
                p = lab.root_path(path)
                p.parent.mkdir(parents=True, exist_ok=True)
                if content is None:
                    p.symlink_to("/dev/null")
                else:
                    p.write_text(content)
                created += [p, p.parent]
            lab.run("networkctl", "reload")
            veth = f"nhq-d{i}"
            lab.add_veth(veth, f"nhq-d{i}p")
            state = lab.wait_for(veth, SETTLED, timeout=10)
            takes_all = state.get("NETWORK_FILE") == f"{RUN}/00-q.network"
            assert takes_all == (state["ADMIN_STATE"] != "unmanaged"), (case, state)

            run_helper(lab, helper)
            moved = not (run / "00-q.network").exists()
            agree[case] = (takes_all, moved)
            if moved:
                assert (quarantine / "00-q.network").read_bytes() == text.encode(), case
                (quarantine / "00-q.network").unlink()
                assert_unmanaged(lab, veth)      # the helper reloaded networkd
            for p in created:      # files before their directories
                if p.is_symlink() or p.is_file():
                    p.unlink()
                elif p.is_dir() and not any(p.iterdir()):
                    p.rmdir()
            lab.ip("link", "del", veth)
    disagree = {case: v for case, v in agree.items() if v[0] != v[1]}
    assert not disagree, f"(networkd takes every interface, helper moved) differ: {disagree}"
    # both verdicts occur, so the comparison means something
    assert {v[0] for v in agree.values()} == {True, False}
