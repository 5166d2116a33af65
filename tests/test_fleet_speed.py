"""The fleet's shared work is exact: each memo is proven to give what the plain path gives.

- Memoized renderer parts give every host of a fleet the same File objects for what the
  hosts share; the Ignition emitter's per-entry JSON is assembled into exactly
  ``json.dumps`` of the config, for host names of every length (the percent/base64
  choice moves with the length), names that occur elsewhere in the files, and every
  example's own profile.
- ``Plan.extend`` is ``add`` of each entry in order (errors and action de-duplication).
- ``_dataurl.percent_length`` is the length of ``percent_encode``.
- The generated-by header names no host and refuses control characters in what it writes.
- ``templating._SPACE`` is ``str.isspace`` on every code point.
- Forked workers stage their files in directories of their own and leave nothing else.
"""
import json
import random
import sys

import pytest

import netharden
from netharden import fleet, profile as profile_mod, templating
from netharden.emitters import _dataurl, ignition
from netharden.plan_model import GENERATED, Action, File, Link, Plan, Unit
from netharden.renderers import build_plan
from helpers import PROFILES, ROOT, clear_memos

DEFAULTS = {
    "platform": {"os": "flatcar", "systemd": 252},
    "uplinks": [{"name": "lan", "match": {"name": ["ens*", "eth*"]}, "dhcp": True}],
    "unmanaged": {"presets": ["docker", "veth", "cni", "flannel"], "names": ["tun*"]},
    "networkd": {"quarantine": ["/run/systemd/network/00-*.network"]},
    "docker": {"daemons": [{"name": "docker", "settings": {"bip": "172.17.0.1/16"}},
                           {"name": "ci", "bridge": "br-ci", "host": "unix:///var/run/docker-ci.sock"}],
               "containers": {"vpn": {"sysctls": {"net.ipv6.conf.all.disable_ipv6": "0"}}}},
    "vxlan_gc": {"mode": "remove"},
    "sysctl": {"net.ipv4.ip_forward": 1},
}


def _names():
    # every length from 1 to 63 (DNS label), and names that are words the files use
    names = ["a" + "b" * i for i in range(63)]
    return names + ["docker", "lan", "br-ci", "netharden", "host", "x-1"]


def _host(name: str, i: int) -> dict:
    return fleet.host_profile(DEFAULTS, {"name": name, "profile": {
        "bridges": [{"name": "br-ci", "addresses": [f"10.{i // 200}.{i % 200}.1/24"]}]}})


def _plans(datas):
    clear_memos()
    return [build_plan(profile_mod.normalize(d)) for d in datas]


def _dumps(plan, version="3.3.0") -> bytes:
    return (json.dumps(ignition.config(plan, version), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
            + "\n").encode()


def test_shared_entries_are_one_object_per_fleet():
    datas = [_host(n, i) for i, n in enumerate(_names()[:6])]
    plans = _plans(datas)
    first, last = plans[0], plans[-1]
    shared = {f.path: f for f in first.files}
    same = [f for f in last.files if shared.get(f.path) is f]
    assert len(same) > 10
    own = [f for f in last.files if f.path not in shared or shared[f.path] != f]
    assert {f.path.rsplit(".", 1)[-1] for f in own} == {"netdev", "network", "service"}   # the bridge, its dockerd
    plain = [build_plan(profile_mod.normalize(d)) for d in datas]
    assert [p.to_dict() for p in plain] == [p.to_dict() for p in plans]


@pytest.mark.parametrize("version", ["3.3.0", "3.4.0"])
def test_ignition_of_shared_entries_equals_json_dumps(version):
    plans = _plans([_host(n, i) for i, n in enumerate(_names())])
    expected = [_dumps(p, version) for p in plans]
    for _ in range(2):   # cold, then warm
        assert [ignition.render(p, version) for p in plans] == expected
    # both data URL encodings occur
    sources = b"".join(expected)
    assert b'"source":"data:,' in sources and b'"source":"data:;base64,' in sources


def test_ignition_of_every_example_through_the_fleet_paths():
    datas = [netharden.load(p) for p in PROFILES]
    clear_memos()
    for _ in range(2):
        plans = [netharden.plan(p) for p in datas]
        assert [ignition.render(p) for p in plans] == [_dumps(p) for p in plans]


def test_plan_extend_is_add_of_each_entry():
    entries = [File("/b", "1"), Link("/a", "/dev/null"), Unit("u.service", enabled=True),
               Action("x", ("true",), "first"), Action("x", ("true",), "second"), File("/c", "2")]
    one, many = Plan("h", 252), Plan("h", 252)
    for e in entries:
        one.add(e)
    many.extend(entries)
    assert one == many and many.actions[0].why == "first"
    many.extend([File("/d", "3")])
    with pytest.raises(ValueError, match="two plan entries write /a"):
        many.extend([File("/e", "4"), File("/a", "5")])
    assert many.paths() == {"/a", "/b", "/c", "/d", "/e"}   # the index follows what was added
    with pytest.raises(ValueError):
        many.add(Link("/e", "/dev/null"))


def test_percent_length_is_the_length_of_the_encoding():
    rng = random.Random(8)
    samples = [b"", b"\n", b"abc-._~", bytes(range(256))] + [rng.randbytes(rng.randrange(200)) for _ in range(200)]
    samples += [f.content.encode() for p in PROFILES for f in netharden.plan(netharden.load(p)).files]
    for raw in samples:
        assert _dataurl.percent_length(raw) == len(_dataurl.percent_encode(raw))


def test_the_header_names_no_host_and_refuses_control_characters():
    text = templating.render("_header.j2", guards=("config",), why="why")
    assert text.splitlines()[0] == f"# {GENERATED}" and "for host" not in text
    source = (ROOT / "templates" / "_header.j2").read_text()
    assert "profile" not in source
    with pytest.raises(Exception, match="control character"):
        templating.render("_header.j2", guards=(), why="a\nb")


def test_space_pattern_is_str_isspace():
    assert all(bool(templating._SPACE.search(c)) == c.isspace() for c in map(chr, range(sys.maxunicode + 1)))


def test_parallel_workers_stage_their_files_and_leave_nothing_else(tmp_path):
    """Forked workers create their files in a directory of their own inside the output
    (run._stage) and rename them in after each chunk: the output holds exactly one file
    per host, with the bytes of a serial run."""
    import os

    from netharden.cli import main

    run_module = sys.modules["netharden.fleet.run"]   # (netharden.fleet.run is also the function)
    hosts = "".join(f"  - name: h{i}\n    profile: {{bridges: [{{name: br-ci, addresses: [\"10.{i // 200}.{i % 200}.1/24\"]}}]}}\n"
                    for i in range(300))
    fleet_file = tmp_path / "fleet.yaml"
    fleet_file.write_text("apiVersion: netharden/v1\nkind: Fleet\ndefaults:\n  platform: {os: flatcar}\n"
                          "  uplinks: [{name: lan, match: {name: eth*}}]\nhosts:\n" + hosts)
    serial, parallel = tmp_path / "serial", tmp_path / "parallel"
    assert main(["render", str(fleet_file), "--format", "ignition", "--out", str(serial), "--jobs", "1"]) == 0
    assert main(["render", str(fleet_file), "--format", "ignition", "--out", str(parallel), "--jobs", "2"]) == 0
    names = sorted(os.listdir(parallel))
    assert names == sorted(f"h{i}.ign" for i in range(300))
    assert not any(n.startswith(run_module.STAGE_PREFIX) for n in names)
    assert all((parallel / n).read_bytes() == (serial / n).read_bytes() for n in names)
