"""The networkd checks of ``netharden doctor``: catchall-network, vendor-docker-network,
veth-mac-policy, foreign-routes. Each: an unhealthy host (a network namespace with real veth /
bridge / vxlan devices plus a scratch root, through the real CLI) with the finding asserted, a
healthy variant with none; and all four clean over the tree netharden renders for every example."""
from __future__ import annotations

import pytest

import netharden
from doctor_helpers import findings
from helpers import EXAMPLES, NETWORKD_FILE_EXAMPLES
from netharden.doctor import Host, run

NET = "/etc/systemd/network"
LIB = "/usr/lib/systemd/network"
CHECKS = ("catchall-network", "vendor-docker-network", "veth-mac-policy", "foreign-routes")
DEBIAN_DEFAULT_LINK = ("[Match]\nOriginalName=*\n\n[Link]\nNamePolicy=keep kernel database onboard slot path\n"
                       "AlternativeNamesPolicy=database onboard slot path\nMACAddressPolicy=persistent\n")


def docker_like(host) -> None:
    """docker0 with two veth ports (their peers stand in for the containers' ends)."""
    host.ip("link", "add", "docker0", "type", "bridge")
    for n in ("veth9f2", "veth0aa"):
        host.ip("link", "add", n, "type", "veth", "peer", "name", f"c{n}")
        host.ip("link", "set", n, "master", "docker0")


# ------------------------------------------------------------------ catchall-network


@pytest.mark.netns
def test_catchall_runtime_file_takes_live_container_interfaces(doctor_host):
    docker_like(doctor_host)
    doctor_host.ip("link", "add", "flannel.1", "type", "vxlan", "id", "1", "dstport", "8472")
    doctor_host.write("/run/systemd/network/00-.network", "[Match]\nName=*\n\n[Network]\nDHCP=yes\n")
    doctor_host.write(f"{NET}/10-br0.netdev", "[NetDev]\nName=br0\nKind=bridge\n")      # networkd's own bridge
    doctor_host.ip("link", "add", "br0", "type", "bridge")
    rc, report = doctor_host.doctor("--only", "catchall-network")
    found = findings(report, "catchall-network")
    assert rc == 1 and len(found) == 1, found
    f = found[0]
    assert f["subject"].endswith("/run/systemd/network/00-.network") and f["severity"] == "error"
    msg = f["message"]
    assert "[Match] Name=*" in msg
    taken = msg.split(" takes ")[1].split(" now")[0].split(", ")
    assert taken == ["cveth0aa", "cveth9f2", "docker0", "flannel.1", "veth0aa", "veth9f2"], msg
    assert "br0" not in taken and "lo" not in taken
    assert "would also take bridge (br-0123456789ab, docker_gwbridge, cni0" in msg and "tun (tun0, tap0)" in msg
    assert "networkd.quarantine covering /run/systemd/network/00-.network" in f["hint"]


@pytest.mark.netns
def test_catchall_host_only_match_is_a_catch_all(doctor_host):
    docker_like(doctor_host)
    doctor_host.write("/run/systemd/network/00-vmware.network", "[Match]\nVirtualization=vmware\n\n[Network]\nDHCP=yes\n")
    _, report = doctor_host.doctor("--only", "catchall-network")
    (f,) = findings(report, "catchall-network")
    assert "only host conditions (Virtualization=vmware), which matches every interface" in f["message"]


@pytest.mark.netns
def test_catchall_healthy_when_virtual_interfaces_are_excluded_or_unmanaged(doctor_host):
    docker_like(doctor_host)
    doctor_host.ip("link", "add", "flannel.1", "type", "vxlan", "id", "1", "dstport", "8472")
    doctor_host.write("/run/systemd/network/00-.network", "[Match]\nName=*\nKind=!*\n\n[Network]\nDHCP=yes\n")
    doctor_host.write(f"{LIB}/50-docker.network", "[Match]\nName=docker0\n\n[Link]\nUnmanaged=yes\n")
    doctor_host.write(f"{LIB}/80-container-ve.network", "[Match]\nName=ve-*\nDriver=veth\n\n[Network]\nDHCPServer=yes\n")
    doctor_host.ip("link", "add", "ve-web", "type", "veth", "peer", "name", "host0x")   # systemd-nspawn's own
    rc, report = doctor_host.doctor("--only", "catchall-network")
    assert findings(report, "catchall-network") == [] and rc == 0


def test_catchall_files_only_names_representatives(tmp_path):
    root = tmp_path / "root"
    (root / "etc/systemd/network").mkdir(parents=True)
    (root / "etc/systemd/network/20-dhcp.network").write_text("[Match]\nName=e* v*\n\n[Network]\nDHCP=yes\n")
    report = run(Host(root, live=False), only=["catchall-network"])
    (f,) = report.findings
    assert "would take bridge (virbr0), veth (veth1a2b3c4), vxlan (vx-001-abcde, vxlan.calico) devices" in f.message
    assert f.hint.startswith("set networkd.quarantine")      # not directly quarantinable: the general hint


# ------------------------------------------------------------------ vendor-docker-network

VENDOR = {"50-docker.network": "[Match]\nType=bridge\nName=docker*\n\n[Network]\n",
          "50-docker-veth.network": "[Match]\nDriver=veth\n\n[Network]\n"}


@pytest.mark.netns
def test_vendor_docker_files_manage_docker0_and_its_veths(doctor_host):
    docker_like(doctor_host)
    for name, text in VENDOR.items():
        doctor_host.write(f"{LIB}/{name}", text)
    rc, report = doctor_host.doctor("--only", "vendor-docker-network")
    found = {f["subject"].rsplit("/", 1)[1]: f for f in findings(report, "vendor-docker-network")}
    assert rc == 1 and sorted(found) == ["50-docker-veth.network", "50-docker.network"]
    bridge, veth = found["50-docker.network"], found["50-docker-veth.network"]
    assert "[Match] Type=bridge Name=docker* manages docker's interfaces; takes docker0 now; would also take " \
        "docker_gwbridge:" in bridge["message"]
    assert "takes veth0aa, veth9f2 now; would also take veth1a2b3c4" in veth["message"]
    assert "networkd.mask: [50-docker-veth.network]" in veth["hint"]


@pytest.mark.netns
def test_vendor_docker_files_masked_or_unmanaged_are_healthy(doctor_host):
    docker_like(doctor_host)
    for name, text in VENDOR.items():
        doctor_host.write(f"{LIB}/{name}", text)
    doctor_host.link(f"{NET}/50-docker.network", "/dev/null")
    doctor_host.write(f"{NET}/0-netharden-unmanaged-veth.network", "[Match]\nName=veth*\n\n[Link]\nUnmanaged=yes\n")
    rc, report = doctor_host.doctor("--only", "vendor-docker-network")
    assert findings(report, "vendor-docker-network") == [] and rc == 0


def test_vendor_check_leaves_catch_alls_and_own_bridges_alone(tmp_path):
    root = tmp_path / "root"
    (root / "etc/systemd/network").mkdir(parents=True)
    (root / "etc/systemd/network/99-all.network").write_text("[Match]\nName=*\n")
    (root / "etc/systemd/network/10-docker0.netdev").write_text("[NetDev]\nName=docker0\nKind=bridge\n")
    (root / "etc/systemd/network/10-docker0.network").write_text("[Match]\nName=docker0\n[Network]\nAddress=10.9.0.1/24\n")
    report = run(Host(root, live=False), only=["vendor-docker-network", "catchall-network"])
    assert [(f.check, f.subject.rsplit("/", 1)[1]) for f in report.findings] == [("catchall-network", "99-all.network")]


# ------------------------------------------------------------------ veth-mac-policy


@pytest.mark.netns
def test_default_link_gives_live_veths_a_persistent_mac(doctor_host):
    docker_like(doctor_host)
    doctor_host.write(f"{LIB}/99-default.link", DEBIAN_DEFAULT_LINK)
    rc, report = doctor_host.doctor("--only", "veth-mac-policy")
    (f,) = findings(report, "veth-mac-policy")
    assert rc == 1 and f["subject"].endswith("/usr/lib/systemd/network/99-default.link") and f["severity"] == "warning"
    assert "[Match] OriginalName=* with MACAddressPolicy=persistent is the first .link of" in f["message"]
    assert "cveth0aa, cveth9f2, veth0aa, veth9f2 now and would be of veth1a2b3c4" in f["message"]
    assert "flannel.1" not in f["message"]          # no CNI on this host


@pytest.mark.netns
def test_mac_policy_healthy_with_netharden_links_and_cni_devices_counted(doctor_host):
    docker_like(doctor_host)
    doctor_host.write(f"{LIB}/99-default.link", DEBIAN_DEFAULT_LINK)
    doctor_host.write(f"{NET}/0-netharden-veth.link", "[Match]\nOriginalName=veth* cveth*\n\n[Link]\nMACAddressPolicy=none\n")
    rc, report = doctor_host.doctor("--only", "veth-mac-policy")
    assert findings(report, "veth-mac-policy") == [] and rc == 0
    # a CNI appears: its devices still get the default policy
    doctor_host.ip("link", "add", "flannel.1", "type", "vxlan", "id", "1", "dstport", "8472")
    _, report = doctor_host.doctor("--only", "veth-mac-policy")
    (f,) = findings(report, "veth-mac-policy")
    assert "flannel.1 now and would be of cni0, cali0123456789a, lxc0123, cilium_host, vxlan.calico" in f["message"]
    assert "veth9f2" not in f["message"]


# ------------------------------------------------------------------ foreign-routes

UPLINK = "[Match]\nName=eth*\nKind=!*\n\n[Network]\nDHCP=yes\n"


@pytest.mark.netns
def test_foreign_routes_managed_while_flannel_runs(doctor_host):
    doctor_host.ip("link", "add", "flannel.1", "type", "vxlan", "id", "1", "dstport", "8472")
    doctor_host.write(f"{NET}/20-uplink.network", UPLINK)
    doctor_host.write("/etc/cni/net.d/10-flannel.conflist", '{"name": "cbr0", "plugins": [{"type": "flannel"}]}\n')
    doctor_host.write("/etc/systemd/networkd.conf", "[Network]\nManageForeignRoutes=yes\n")
    rc, report = doctor_host.doctor("--only", "foreign-routes")
    found = {f["subject"]: f["message"] for f in findings(report, "foreign-routes")}
    assert rc == 1 and sorted(found) == ["networkd.conf [Network] ManageForeignRoutes",
                                         "networkd.conf [Network] ManageForeignRoutingPolicyRules"]
    routes = found["networkd.conf [Network] ManageForeignRoutes"]
    assert "is set to yes in " in routes and routes.split("set to yes in ")[1].startswith(str(doctor_host.root))
    assert "CNI interfaces flannel.1" in routes and "10-flannel.conflist" in routes
    assert "yes by default" in found["networkd.conf [Network] ManageForeignRoutingPolicyRules"]


@pytest.mark.netns
def test_foreign_routes_healthy_when_kept_or_no_cni_or_nothing_managed(doctor_host):
    doctor_host.ip("link", "add", "flannel.1", "type", "vxlan", "id", "1", "dstport", "8472")
    doctor_host.write(f"{NET}/20-uplink.network", UPLINK)
    doctor_host.write("/etc/systemd/networkd.conf.d/50-netharden.conf",
                      "[Network]\nManageForeignRoutes=no\nManageForeignRoutingPolicyRules=no\n")
    rc, report = doctor_host.doctor("--only", "foreign-routes")
    assert findings(report, "foreign-routes") == [] and rc == 0


def test_foreign_routes_files_only(tmp_path):
    root = tmp_path / "root"
    (root / "etc/systemd/network").mkdir(parents=True)
    (root / "etc/cni/net.d").mkdir(parents=True)
    host = Host(root, live=False)
    (root / "etc/cni/net.d/10-calico.conflist").write_text('{"name": "k8s-pod-network"}')
    assert run(host, only=["foreign-routes"]).findings == []          # networkd manages nothing
    (root / "etc/systemd/network/0-unmanaged.network").write_text("[Match]\nName=*\n[Link]\nUnmanaged=yes\n")
    assert run(host, only=["foreign-routes"]).findings == []
    (root / "etc/systemd/network/0-unmanaged.network").write_text("[Match]\nName=en*\n")
    assert len(run(host, only=["foreign-routes"]).findings) == 2
    old = Host(root, live=False)
    old.__dict__["systemd_version"] = 247                             # only ManageForeignRoutes= exists
    assert [f.subject for f in run(old, only=["foreign-routes"]).findings] == ["networkd.conf [Network] ManageForeignRoutes"]
    old.__dict__["systemd_version"] = 245
    assert run(old, only=["foreign-routes"]).findings == []
    (root / "etc/cni/net.d/10-calico.conflist").write_text("")         # an empty file is no config
    assert run(host, only=["foreign-routes"]).findings == []
    (root / "etc/cni/net.d/87-podman-bridge.conflist").write_text('{"cniVersion": "0.4.0", "name": "podman"}')
    assert run(host, only=["foreign-routes"]).findings == []          # podman's own network: no cluster CNI


def test_profile_masks_fix_the_vendor_files(tmp_path):
    root = tmp_path / "root"
    (root / LIB.lstrip("/")).mkdir(parents=True)
    for name, text in VENDOR.items():
        (root / LIB.lstrip("/") / name).write_text(text)
    example = next(p for p in EXAMPLES if p.stem == "incident-2-networkd-docker-race")
    report = run(Host(root, live=False), only=["vendor-docker-network"], profile=netharden.load(example))
    assert len(report.findings) == 2
    assert all(f.fixed_by_profile and f.profile_note == "gone with the profile's files in place" for f in report.findings)


# ------------------------------------------------------------------ the healthy host: rendered trees


@pytest.mark.parametrize("example", NETWORKD_FILE_EXAMPLES, ids=lambda p: p.stem)
def test_rendered_tree_of_every_example_is_clean(tmp_path, example):
    out = tmp_path / "tree"
    netharden.emit(netharden.plan(netharden.load(example)), "tree", out)
    report = run(Host(out, live=False), only=list(CHECKS))
    assert [c.id for c in report.checks] == list(CHECKS) and not any(c.error or c.skipped for c in report.checks)
    assert report.findings == []
    # with a vendor 99-default.link and CNI config beside it, what the profile covers stays clean
    (out / "usr/lib/systemd/network").mkdir(parents=True, exist_ok=True)
    (out / "usr/lib/systemd/network/99-default.link").write_text(DEBIAN_DEFAULT_LINK)
    profile = netharden.load(example)
    covered = {g.id for g in profile.unmanaged}
    mac = run(Host(out, live=False), only=["veth-mac-policy"]).findings
    if "veth" in covered and profile.systemd >= 242:
        assert mac == []
    else:
        assert mac and "veth1a2b3c4" in mac[0].message
