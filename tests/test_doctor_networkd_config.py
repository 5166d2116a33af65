"""The doctor's networkd reader and [Match] evaluator (netharden/doctor/networkd_config.py):
unit tests on scratch roots, and a differential test that feeds the same tricky files to the
real systemd-networkd (netharden/lab/netns.py) and to the evaluator and asserts they pick the
same file for every interface."""
from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from netharden.doctor.host import Host
from netharden.doctor.networkd_config import (PHYSICAL, REPRESENTATIVES, Device, first_match, fnmatch, load_files,
                                              networkd_conf, parse_ini, parse_ini_located, strv_matches)

ETC = "/etc/systemd/network"
RUN = "/run/systemd/network"
LIB = "/usr/lib/systemd/network"


def write(root: Path, path: str, text: str | None) -> None:
    """text None: a mask (symlink to /dev/null)."""
    p = root / path.lstrip("/")
    p.parent.mkdir(parents=True, exist_ok=True)
    if text is None:
        p.symlink_to("/dev/null")
    else:
        p.write_text(text)


def dev(name: str, kind: str | None = "veth", driver: str | None = None, type_: str = "ether", mac: str | None = None):
    return Device(name, kind, driver if driver is not None else kind, type_, mac)


def chosen(root: Path, device: Device, version: int | None = 252, suffix: str = ".network") -> str | None:
    host = Host(root, live=False)
    host.__dict__["systemd_version"] = version
    cf = first_match(load_files(host, suffix, version), device)
    return None if cf is None else cf.path


# ----------------------------------------------------------------- files, order, shadowing, masks


def test_lexical_order_across_directories_first_match_wins(tmp_path):
    write(tmp_path, f"{LIB}/10-lib.network", "[Match]\nName=v*\n")
    write(tmp_path, f"{ETC}/20-etc.network", "[Match]\nName=*\n")
    write(tmp_path, f"{RUN}/05-run.network", "[Match]\nName=x*\n")
    assert chosen(tmp_path, dev("veth0")) == f"{LIB}/10-lib.network"    # /usr/lib sorts in by name
    assert chosen(tmp_path, dev("xa")) == f"{RUN}/05-run.network"
    assert chosen(tmp_path, dev("eth0", None)) == f"{ETC}/20-etc.network"


def test_same_name_earlier_directory_shadows_later(tmp_path):
    write(tmp_path, f"{LIB}/50-docker.network", "[Match]\nName=*\n")
    write(tmp_path, f"{RUN}/50-docker.network", "[Match]\nName=docker0\n")
    assert chosen(tmp_path, dev("veth0")) is None
    assert chosen(tmp_path, dev("docker0", "bridge")) == f"{RUN}/50-docker.network"


@pytest.mark.parametrize("mask", ["symlink", "empty"])
def test_mask_hides_lower_file_and_matches_nothing(tmp_path, mask):
    write(tmp_path, f"{LIB}/50-docker-veth.network", "[Match]\nDriver=veth\n")
    write(tmp_path, f"{ETC}/50-docker-veth.network", None if mask == "symlink" else "")
    write(tmp_path, f"{LIB}/90-late.network", "[Match]\nName=veth*\n")
    files = load_files(Host(tmp_path, live=False), ".network", 252)
    assert [f.masked for f in files] == [True, False]
    assert chosen(tmp_path, dev("veth0")) == f"{LIB}/90-late.network"


def test_merged_usr_lib_is_read_once(tmp_path):
    write(tmp_path, f"{LIB}/10-x.network", "[Match]\nName=*\n")
    (tmp_path / "lib").symlink_to("usr/lib")
    files = load_files(Host(tmp_path, live=False), ".network", 252)
    assert [(f.path, f.shadowed) for f in files] == [(f"{LIB}/10-x.network", ())]


def test_split_usr_lib_counts(tmp_path):
    write(tmp_path, "/lib/systemd/network/10-x.network", "[Match]\nName=*\n")
    assert chosen(tmp_path, dev("veth0")) == "/lib/systemd/network/10-x.network"


def test_hidden_files_and_directories_are_not_files(tmp_path):
    write(tmp_path, f"{ETC}/.hidden.network", "[Match]\nName=*\n")
    (tmp_path / ETC.lstrip("/") / "dir.network").mkdir()
    write(tmp_path, f"{ETC}/notes.txt", "[Match]\nName=*\n")
    assert load_files(Host(tmp_path, live=False), ".network", 252) == []


# ----------------------------------------------------------------- drop-ins and INI


def test_dropins_from_every_directory_shadowed_by_name_in_name_order(tmp_path):
    write(tmp_path, f"{LIB}/10-a.network", "[Match]\nName=nomatch\n")
    write(tmp_path, f"{RUN}/10-a.network.d/20-reset.conf", "[Match]\nName=\nName=veth*\n")
    write(tmp_path, f"{LIB}/10-a.network.d/20-reset.conf", "[Match]\nName=never\n")       # shadowed
    write(tmp_path, f"{ETC}/10-a.network.d/30-kind.conf", "[Match]\nKind=veth\n")
    files = load_files(Host(tmp_path, live=False), ".network", 252)
    assert files[0].dropins == (f"{RUN}/10-a.network.d/20-reset.conf", f"{ETC}/10-a.network.d/30-kind.conf")
    assert chosen(tmp_path, dev("veth0")) == f"{LIB}/10-a.network"
    assert chosen(tmp_path, dev("veth1", "bridge")) is None
    write(tmp_path, f"{ETC}/10-a.network.d/20-reset.conf", None)                            # masked drop-in
    assert chosen(tmp_path, dev("veth0")) is None


def test_ini_like_systemd():
    text = ("# comment\n; comment\nName=outside\n[Match]\n  Name \t=\t a* \\\n# skipped \\\n  b*\n"
            "[match]\nName=lower\n[Network]\nDHCP=yes\nnoequals\n[Match]\r\nKind=veth\r\n")
    assert parse_ini(text) == [("Match", "Name", "a*    b*"), ("match", "Name", "lower"), ("Network", "DHCP", "yes"),
                               ("Match", "Kind", "veth")]
    assert parse_ini("[Match\nName=*\n") is None
    assert parse_ini("[Match]\nName=x \\\\\nName=y\n") == [("Match", "Name", "x \\\\"), ("Match", "Name", "y")]


def test_ini_positions():
    """parse_ini_located: the same assignments, each with the text it was read from."""
    text = "\ufeff# c\n[Match]\r\nName=a \\\n# skipped\n  b\nKind=!*\n[Network]\nDHCP=yes"
    located = parse_ini_located(text)
    assert [(a.section, a.key, a.value) for a in located] == parse_ini(text)
    assert [text[a.start:a.end] for a in located] == ["Name=a \\\n# skipped\n  b\n", "Kind=!*\n", "DHCP=yes"]
    assert [text[:a.header].splitlines()[-1] for a in located] == ["[Match]", "[Match]", "[Network]"]
    assert parse_ini_located("[Match\nName=*\n") is None


def test_repeated_keys_accumulate_and_empty_resets(tmp_path):
    write(tmp_path, f"{ETC}/10-a.network", "[Match]\nName=a*\nName=b*\n")
    write(tmp_path, f"{ETC}/20-b.network", "[Match]\nName=c*\nName=\nName=d*\n")
    assert chosen(tmp_path, dev("b1")) == f"{ETC}/10-a.network"
    assert chosen(tmp_path, dev("c1")) is None
    assert chosen(tmp_path, dev("d1")) == f"{ETC}/20-b.network"


def test_unmanaged_and_booleans(tmp_path):
    write(tmp_path, f"{ETC}/10-a.network", "[Match]\nName=*\n[Link]\nUnmanaged=yes\nUnmanaged=bogus\n")
    write(tmp_path, f"{ETC}/20-b.network", "[Match]\nName=*\n[Link]\nUnmanaged=on\nUnmanaged=0\n")
    files = load_files(Host(tmp_path, live=False), ".network", 252)
    assert [f.unmanaged for f in files] == [True, False]


# ----------------------------------------------------------------- [Match]


def test_negation_applies_to_every_word_of_an_assignment(tmp_path):
    write(tmp_path, f"{ETC}/10-up.network", "[Match]\nName=*\nDriver=!veth bridge\n")
    assert chosen(tmp_path, dev("veth0", "veth")) is None
    assert chosen(tmp_path, dev("br0", "bridge")) is None
    assert chosen(tmp_path, dev("vx0", "vxlan")) == f"{ETC}/10-up.network"
    assert chosen(tmp_path, dev("eth0", None, driver="e1000")) == f"{ETC}/10-up.network"


def test_per_word_negation_and_missing_attributes():
    assert strv_matches(("en*", "!ens3"), "ens4") and not strv_matches(("en*", "!ens3"), "ens3")
    assert strv_matches(("!*",), None)                 # Kind=!* on a NIC (no kind)
    assert not strv_matches(("!*",), "veth")
    assert not strv_matches(("*",), None)              # a positive glob needs the attribute
    assert strv_matches(("!veth",), "bridge") and strv_matches((), None)


def test_fnmatch_semantics():
    assert fnmatch("br-????????????", "br-0123456789ab") and not fnmatch("br-????????????", "br-01")
    assert fnmatch("veth[0-9a-f]*", "veth1a") and not fnmatch("veth[!0-9]*", "veth1a")
    assert fnmatch("flannel*", "flannel.1") and fnmatch("*", ".hidden") and fnmatch("a*", "a/b")
    assert fnmatch(r"a\*", "a*") and not fnmatch(r"a\*", "ab")
    assert fnmatch("[[:digit:]]x", "1x") and fnmatch("[]]", "]") and fnmatch("[", "[")


def test_name_words_that_are_no_interface_names_are_dropped(tmp_path):
    write(tmp_path, f"{ETC}/10-a.network", "[Match]\nName=eth0:1 all 123\n")         # nothing valid left
    write(tmp_path, f"{ETC}/20-b.network", '[Match]\nName="veth*"\n')                 # quotes are literal
    assert chosen(tmp_path, dev("veth0")) is None
    assert load_files(Host(tmp_path, live=False), ".network", 252)[0].ignored


def test_mac_match(tmp_path):
    write(tmp_path, f"{ETC}/10-a.network", "[Match]\nMACAddress=52:54:00:AA:BB:CC 52-54-00-00-00-01\n")
    assert chosen(tmp_path, dev("eth0", None, mac="52:54:00:aa:bb:cc")) == f"{ETC}/10-a.network"
    assert chosen(tmp_path, dev("eth1", None, mac="52:54:00:00:00:01")) == f"{ETC}/10-a.network"
    assert chosen(tmp_path, dev("veth0")) is None                      # no MAC known: no match


@pytest.mark.parametrize("version, expected", [(252, None), (245, None), (244, "all"), (241, "all"), (None, None)])
def test_match_without_conditions_ignored_from_245(tmp_path, version, expected):
    write(tmp_path, f"{RUN}/00-.network", "[Match]\n# Name=eth0\n\n[Network]\nDHCP=yes\n")
    got = chosen(tmp_path, dev("veth0"), version)
    assert got == (f"{RUN}/00-.network" if expected else None)


@pytest.mark.parametrize("text", ["[Match]\nVirtualization=vmware\n", "[Match]\nHost=node-1\nKernelCommandLine=!x\n",
                                  "[Match]\nArchitecture=x86-64\nCredential=foo\n"])
def test_host_conditions_count_as_true(tmp_path, text):
    write(tmp_path, f"{RUN}/00-.network", text)
    for d in REPRESENTATIVES:
        assert chosen(tmp_path, d) == f"{RUN}/00-.network", d


def test_kind_only_from_251(tmp_path):
    write(tmp_path, f"{ETC}/20-up.network", "[Match]\nName=*\nKind=!*\n")
    assert chosen(tmp_path, dev("veth0"), 252) is None
    assert chosen(tmp_path, dev("veth0"), 250) == f"{ETC}/20-up.network"    # Kind= unknown: ignored
    assert chosen(tmp_path, dev("eth0", None), 252) == f"{ETC}/20-up.network"


def test_link_files_original_name_and_loopback(tmp_path):
    write(tmp_path, f"{LIB}/99-default.link", "[Match]\nOriginalName=*\n[Link]\nMACAddressPolicy=persistent\n")
    write(tmp_path, f"{ETC}/0-netharden-veth.link", "[Match]\nOriginalName=veth*\n[Link]\nMACAddressPolicy=none\n")
    write(tmp_path, f"{ETC}/10-name.link", "[Match]\nName=*\n")        # not a .link key: ignored file
    assert chosen(tmp_path, dev("veth0"), suffix=".link") == f"{ETC}/0-netharden-veth.link"
    assert chosen(tmp_path, dev("flannel.1", "vxlan"), suffix=".link") == f"{LIB}/99-default.link"
    assert chosen(tmp_path, Device("lo", None, None, "loopback"), suffix=".link") is None


def test_representatives_as_networkd_sees_them():
    by = {d.name: d for d in REPRESENTATIVES}
    assert (by["docker0"].kind, by["docker0"].driver, by["docker0"].type) == ("bridge", "bridge", "bridge")
    assert (by["veth1a2b3c4"].type, by["tun0"].type, by["flannel.1"].type) == ("ether", "none", "vxlan")
    assert all(d.kind and d.mac is None and d.path is None for d in REPRESENTATIVES)
    assert all(d.kind is None for d in PHYSICAL)
    assert all(len(d.name) <= 15 for d in REPRESENTATIVES)


def test_networkd_conf_effective_values(tmp_path):
    host = Host(tmp_path, live=False)
    assert {k: v.value for k, v in networkd_conf(host).items()} == {"ManageForeignRoutes": True,
                                                                    "ManageForeignRoutingPolicyRules": True}
    write(tmp_path, "/etc/systemd/networkd.conf", "[Network]\nManageForeignRoutes=no\n")
    write(tmp_path, "/usr/lib/systemd/networkd.conf.d/50-x.conf", "[Network]\nManageForeignRoutes=yes\n"
          "ManageForeignRoutingPolicyRules=no\n")
    write(tmp_path, "/etc/systemd/networkd.conf.d/60-y.conf", "[Network]\nManageForeignRoutingPolicyRules=maybe\n")
    s = networkd_conf(host)
    assert (s["ManageForeignRoutes"].value, s["ManageForeignRoutes"].source) == (True, "/usr/lib/systemd/networkd.conf.d/50-x.conf")
    assert s["ManageForeignRoutingPolicyRules"].value is False
    write(tmp_path, "/etc/systemd/networkd.conf.d/50-x.conf", None)          # masks the /usr/lib drop-in
    assert networkd_conf(host)["ManageForeignRoutes"].value is False


# ----------------------------------------------------------------- differential: the real networkd


# Each file goes into the lab's /etc or /run systemd/network; every link of the namespace must
# get the same file from the real networkd 252 and from first_match(). Names: dd-<case>.
DIFF_FILES = {
    f"{ETC}/10-shadow.network": "[Match]\nName=dd-sh*\n",
    f"{RUN}/10-shadow.network": "[Match]\nName=*\n",                             # shadowed by /etc
    f"{ETC}/05-masked.network": None,
    f"{RUN}/05-masked.network": "[Match]\nName=*\n",                             # masked from /etc
    f"{RUN}/11-unmanaged.network": "[Match]\nName=dd-un*\n[Link]\nUnmanaged=yes\n",
    f"{ETC}/12-empty.network": "[Match]\n#Name=*\n\n[Network]\nDHCP=no\n",        # ignored (>= 245)
    f"{ETC}/13-neg.network": "[Match]\nName=dd-n* !dd-nb*\n",
    f"{ETC}/14-allneg.network": "[Match]\nName=dd-a*\nDriver=!veth bridge\n",       # excludes both
    f"{ETC}/15-kind.network": "[Match]\nName=dd-k*\nKind=bridge\n",
    f"{ETC}/16-kindneg.network": "[Match]\nName=dd-k*\nKind=!*\n",                  # never a virtual device
    f"{RUN}/17-dropin.network": "[Match]\nName=dd-none\n",
    f"{RUN}/17-dropin.network.d/a.conf": "[Match]\nName=\nName=dd-dr*\n",
    f"{ETC}/17-dropin.network.d/b.conf": "[Match]\nName=dd-drx\n",               # accumulates
    f"{ETC}/18-cont.network": "[Match]\nName=dd-none \\\n# skipped \\\n dd-co*\n",
    f"{ETC}/19-glob.network": "[Match]\nName=dd-g[0-9]?x\n",
    f"{ETC}/20-quoted.network": '[Match]\nName="dd-q*"\n',
    f"{ETC}/21-badheader.network": "[Match\nName=dd-bh*\n",
    f"{ETC}/22-mac.network": "[Match]\nMACAddress=02:00:00:dd:00:01\n",
    f"{ETC}/23-noeq.network": "[Match]\nName=dd-e*\nnoequals\n",                  # the line is ignored
    f"{ETC}/25-emptycont.network": "[Match]\nName=dd-none \\\n\n dd-ec*\n",
    f"{ETC}/26-commentcont.network": "[Match]\n# Name=dd-none \\\nName=dd-cc*\n",
    f"{ETC}/24-reset.network": "[Match]\nName=dd-rs*\nKind=bridge\nKind=\n",
    f"{ETC}/90-hostonly.network": "[Match]\nKernelCommandLine=!nh-no-such-flag\n",  # catches the rest
}
# veth pairs (name, peer) and bridges
DIFF_VETHS = [("dd-sh1", "dd-shp1"), ("dd-un1", "dd-unp1"), ("dd-n1", "dd-nb1"), ("dd-a1", "dd-ap1"),
              ("dd-k1", "dd-kp1"), ("dd-dr1", "dd-drx"), ("dd-co1", "dd-cop1"), ("dd-g1ax", "dd-g12x"),
              ("dd-q1", "dd-qp1"), ("dd-bh1", "dd-e1"), ("dd-ec1", "dd-cc1"), ("dd-m1", "dd-rs1"), ("dd-plain", "dd-plainp")]
DIFF_BRIDGES = ["dd-kbr", "dd-abr", "dd-rsbr", "dd-nbr"]
DIFF_MACS = {"dd-m1": "02:00:00:dd:00:01"}


def _lab_device(link: dict) -> Device:
    kind = (link.get("linkinfo") or {}).get("info_kind")
    # without udev (the lab's read-only /sys) networkd's Type= is the ARPHRD name
    return Device(link["ifname"], kind, kind, link.get("link_type", "ether"), link.get("address"))


@pytest.mark.netns
def test_real_networkd_picks_the_same_file_as_the_evaluator(tmp_path):
    from netharden.lab.cleanup import leftovers
    from netharden.lab.netns import NetworkdLab, require_or_skip

    require_or_skip(pytest)
    etc = tmp_path / "etc-network"
    etc.mkdir()
    for path, text in DIFF_FILES.items():
        if path.startswith(ETC):
            write(etc, path[len(ETC):], text)
    scratch = tmp_path / "root"                      # the same files for the evaluator
    for path, text in DIFF_FILES.items():
        write(scratch, path, text)
    with NetworkdLab(etc, start=False, extra_env={"SYSTEMD_LOG_LEVEL": "debug"}) as lab:
        for path, text in DIFF_FILES.items():
            if path.startswith(RUN):
                p = lab.root_path(path)
                p.parent.mkdir(parents=True, exist_ok=True)
                p.write_text(text)
        for name, peer in DIFF_VETHS:
            lab.add_veth(name, peer, peer_up=False)
            if name in DIFF_MACS:
                lab.ip("link", "set", name, "address", DIFF_MACS[name])
        for name in DIFF_BRIDGES:
            lab.add_bridge(name)
        lab.start()
        links = lab.ip_json("-d", "link", "show")
        names = [l["ifname"] for l in links]
        deadline = time.monotonic() + 20
        real: dict[str, str | None] = {}
        while time.monotonic() < deadline:
            log = lab.log_text()
            real = {}
            for name in names:
                found = re.findall(rf"^.*\b{re.escape(name)}: found matching network '([^']+)'", log, re.M)
                real[name] = found[-1] if found else None
            if all(real.values()) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        version = 252
        files = load_files(Host(scratch, live=False), ".network", version)
        mine = {}
        for link in links:
            cf = first_match(files, _lab_device(link))
            mine[link["ifname"]] = None if cf is None else cf.path
        # the unmanaged ones: networkd logs the match, the state file says unmanaged
        for name in ("dd-un1", "dd-unp1"):
            assert lab.admin_state(name) == "unmanaged"
        assert lab.warnings()  # networkd warned about the empty [Match] and the bad header
        assert real == mine, {n: (real[n], mine[n]) for n in names if real[n] != mine[n]}
        # the cases are not vacuous: they pick different files
        assert len(set(mine.values())) >= 10, mine
    assert leftovers(ignore_other_live_owners=True) == []
