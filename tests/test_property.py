"""Property tests: every valid generated profile renders; every mutated invalid one is
rejected with exit code 2, a FILE:LINE:COL message naming a JSON path, no traceback and
no output."""
import copy
import re

from hypothesis import HealthCheck, given, settings, strategies as st

from netharden.cli import main
from helpers import tree_files, write_profile

label = st.from_regex(r"[a-z][a-z0-9-]{0,10}[a-z0-9]", fullmatch=True)
bridge_name = st.from_regex(r"nhbr[a-z0-9]{1,8}", fullmatch=True)
unicast_mac = st.tuples(st.integers(0, 255), st.lists(st.integers(0, 255), min_size=5, max_size=5)).map(
    lambda t: ":".join(f"{b:02x}" for b in [(t[0] & 0xFE) | 0x02, *t[1]]))


@st.composite
def profiles(draw):
    subnet = iter(range(1, 250))  # every interface gets its own 10.N.0.0/24
    data = {"apiVersion": "netharden/v1", "kind": "HostProfile", "metadata": {"name": draw(label)}}
    networkmanager = False
    if draw(st.booleans()):
        os_name = draw(st.sampled_from(["flatcar", "fcos", "coreos", "debian", "ubuntu", "rhel", "fedora", "generic"]))
        data["platform"] = {"os": os_name}
        if draw(st.booleans()):
            data["platform"]["systemd"] = draw(st.integers(237, 260))
        networkmanager = os_name in ("fcos", "rhel", "fedora")
        netplan = os_name == "ubuntu"
        if os_name in ("debian", "ubuntu", "generic") and draw(st.booleans()):
            data["platform"]["stack"] = draw(st.sampled_from(["networkmanager", "netplan"]))
            networkmanager, netplan = data["platform"]["stack"] == "networkmanager", data["platform"]["stack"] == "netplan"
        if networkmanager and draw(st.booleans()):
            data["platform"]["networkmanager"] = draw(st.sampled_from(["1.26", "1.42", "1.50"]))
    else:
        netplan = False
    # NetworkManager globs have no [ranges]; a netplan match takes one glob, and not one that takes lo
    globs = ["en*", "eth*", "ens?"] + ([] if netplan else ["*"]) + ([] if networkmanager else ["e[tn]*"])
    uplinks = []
    for i, name in enumerate(draw(st.lists(label, max_size=3, unique=True))):
        up = {"name": name}
        kind = draw(st.sampled_from(["glob", "exact", "mac", "none"]))
        if kind == "glob":
            up["match"] = {"name": draw(st.lists(st.sampled_from(globs), min_size=1, max_size=1 if netplan else 3,
                                                 unique=True))}
        elif kind == "exact":
            up["match"] = {"name": f"eth{i}"}
        elif kind == "mac":
            up["match"] = {"mac": draw(unicast_mac)}
        elif len(name) > 15 or netplan:  # netplan: a name could be "lo" or a bridge's (refused there)
            up["match"] = {"name": "eth*"}
        if draw(st.booleans()):
            n = next(subnet)
            up["addresses"] = [f"10.{n}.0.10/24"]
            if draw(st.booleans()):
                up["gateway"] = f"10.{n}.0.1"
        else:
            up["dhcp"] = draw(st.sampled_from(["yes", "ipv4", "ipv6", True]))
        if draw(st.booleans()):
            up["mtu"] = draw(st.integers(1280, 9000))
        uplinks.append(up)
    if uplinks:
        data["uplinks"] = uplinks
    bridges = []
    for name in draw(st.lists(bridge_name, max_size=3, unique=True)):
        br = {"name": name, "addresses": [f"10.{next(subnet)}.0.1/24"]}
        if draw(st.booleans()):
            br["mac"] = draw(unicast_mac)
        bridges.append(br)
    macs = [b["mac"] for b in bridges if "mac" in b]
    if len(set(macs)) != len(macs):
        for b in bridges:
            b.pop("mac", None)
    if bridges:
        data["bridges"] = bridges
    if draw(st.booleans()):
        data["unmanaged"] = {"presets": draw(st.lists(st.sampled_from(["docker", "veth", "cni", "flannel", "calico", "cilium", "weave", "vxlan", "kube"]), unique=True))}
    if draw(st.booleans()):
        data["networkd"] = {"foreign_routes": draw(st.sampled_from(["keep", "manage"]))}
    return data


# Each mutation makes a valid profile invalid in one known way: (description, function).
def _set(path, value):
    def apply(d):
        node = d
        for key in path[:-1]:
            node = node.setdefault(key, {}) if isinstance(key, str) else node[key]
        node[path[-1]] = value
        return True
    return apply


def _first(key, field, value):
    def apply(d):
        if not d.get(key):
            return False
        d[key][0][field] = value
        return True
    return apply


MUTATIONS = [
    _set(("apiVersion",), "netharden/v2"),
    _set(("kind",), "Fleet"),
    _set(("metadata", "name"), "Not A Label"),
    _set(("metadata", "nmae"), "typo"),
    _set(("bridgse",), []),
    _set(("platform", "os"), "windows"),
    _set(("platform", "systemd"), 200),
    _set(("unmanaged",), {"presets": ["docker", "nope"]}),
    _set(("networkd",), {"mask": ["../etc/passwd"]}),
    _set(("networkd",), {"quarantine": ["/etc/shadow"]}),
    _set(("sysctl",), {"net.ipv4.ip_forward": "1\nkernel.x=1"}),
    _set(("vxlan_gc",), {"interval": "soon"}),
    _first("uplinks", "dhcp", "sometimes"),
    _first("uplinks", "mtu", 12),
    _first("uplinks", "addresses", ["10.0.0.300/24"]),
    _first("uplinks", "match", {"name": ["eth0; rm -rf /"]}),
    _first("bridges", "name", "a-bridge-name-too-long"),
    _first("bridges", "name", "all"),
    _first("bridges", "mac", "01:00:5e:00:00:01"),
    _first("bridges", "mac", "zz:zz"),
    _first("bridges", "addresses", ["10.250.0.0/24"]),
    _first("bridges", "stp", "yes please"),
]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(profiles())
def test_valid_profiles_render_deterministically(tmp_path_factory, data):
    tmp = tmp_path_factory.mktemp("valid")
    path = write_profile(tmp / "p.yaml", data)
    assert main(["render", str(path), "--out", str(tmp / "a")]) == 0
    assert main(["render", str(path), "--out", str(tmp / "b")]) == 0
    assert tree_files(tmp / "a") == tree_files(tmp / "b")


LOCATED = re.compile(r"^(?P<file>.+):(?P<line>\d+):(?P<col>\d+): error: .+ \(at \$[^ ]*\)$")


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(profiles(), st.sampled_from(range(len(MUTATIONS))))
def test_mutated_profiles_fail_cleanly(tmp_path_factory, capsys, data, which):
    bad = copy.deepcopy(data)
    if not MUTATIONS[which](bad):
        bad["metadata"]["name"] = "UPPER"  # the mutation's target is absent: break something else
    tmp = tmp_path_factory.mktemp("invalid")
    path = write_profile(tmp / "p.yaml", bad)
    capsys.readouterr()
    assert main(["render", str(path), "--out", str(tmp / "out")]) == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    errors = [line for line in captured.err.splitlines() if ": error: " in line]
    assert errors, captured.err
    for line in errors:
        m = LOCATED.match(line)
        assert m and m["file"] == str(path) and int(m["line"]) >= 1, line
    assert not (tmp / "out").exists()
    assert sorted(p.name for p in tmp.iterdir()) == ["p.yaml"]
