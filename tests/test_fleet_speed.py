"""The fleet fast paths of the replayed-entry round (issue 8): each is proven to give
exactly what the plain path gives.

- Replayed Plan entries carry the recorded entry they were made from (``_cache.ORIGIN``);
  the Ignition emitter assembles their JSON from it: compared with ``json.dumps`` of the
  same Plans for host names of every length (the base64 cut moves with the length modulo
  3, the percent/base64 choice with the length), names that occur elsewhere in the files,
  and every example's own profile.
- ``Plan.extend`` is ``add`` of each entry in order (errors and action de-duplication).
- ``_dataurl.percent_length`` is the length of ``percent_encode``.
- The memoized generated-by header (``templating.MEMOIZED``) declares what the template
  reads, and renders what jinja2 renders.
- ``templating._SPACE`` is ``str.isspace`` on every code point.
- Forked workers stage their files in directories of their own and leave nothing else.
"""
import random
import re
import sys

import jinja2
import jinja2.meta
import pytest

import netharden
from netharden import fleet, profile as profile_mod, templating
from netharden.emitters import _dataurl, ignition
from netharden.plan_model import Action, File, Link, Plan, Unit
from netharden.renderers import _cache, build_plan
from helpers import PROFILES, ROOT

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


def _cached_plans(datas):
    _cache.clear()
    with _cache.enabled(), profile_mod.sharing():
        return [build_plan(profile_mod.normalize(d)) for d in datas]


def test_replayed_entries_carry_their_recorded_entry():
    datas = [_host(n, i) for i, n in enumerate(_names()[:6])]
    plans = _cached_plans(datas)
    try:
        last = plans[-1]
        replayed = [f for f in last.files if f.__dict__.get(_cache.ORIGIN) is not None]
        assert len(replayed) > 10
        for f in replayed:
            origin = f.__dict__[_cache.ORIGIN]
            assert origin.path == f.path and origin.mode == f.mode
            assert origin.content.replace(_cache.SENTINEL, last.profile) == f.content
        # the origin is not a field: equality, repr and to_dict ignore it
        plain = build_plan(profile_mod.normalize(datas[-1]))
        assert last.to_dict() == plain.to_dict() and last.files == plain.files
    finally:
        _cache.clear()


@pytest.mark.parametrize("version", ["3.3.0", "3.4.0"])
def test_ignition_from_replayed_entries_equals_json_dumps(version):
    datas = [_host(n, i) for i, n in enumerate(_names())]
    plans = _cached_plans(datas)
    try:
        with ignition.fragments(False):
            expected = [ignition.render(p, version) for p in plans]
        with ignition.fragments():
            for _ in range(2):   # cold, then warm
                assert [ignition.render(p, version) for p in plans] == expected
        # both data URL encodings occur among the replayed files
        sources = b"".join(expected)
        assert b'"source":"data:,' in sources and b'"source":"data:;base64,' in sources
    finally:
        _cache.clear()


def test_ignition_of_every_example_through_the_fleet_paths():
    datas = [netharden.load(p) for p in PROFILES]
    _cache.clear()
    try:
        with _cache.enabled():
            for _ in range(2):
                plans = [netharden.plan(p) for p in datas]
                with ignition.fragments(False):
                    expected = [ignition.render(p) for p in plans]
                with ignition.fragments():
                    assert [ignition.render(p) for p in plans] == expected
    finally:
        _cache.clear()


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


def test_header_memo_declares_what_the_header_reads():
    source = (ROOT / "templates" / "_header.j2").read_text()
    env = jinja2.Environment(**templating.COMPILE_OPTIONS)   # no globals: they count as variables here
    env.filters.update(templating.FILTERS)
    for name, keys in templating.MEMOIZED.items():
        found = jinja2.meta.find_undeclared_variables(env.parse((ROOT / "templates" / name).read_text()))
        # the memo keys on these; the globals it checks are the environment's own
        assert found - set(templating._lite().globals) == set(keys) | {"profile"}
        assert _cache.profile_uses(name) == ("name",)
    # the name only ever goes through ini, verbatim
    assert re.findall(r"profile\.name[^}]*}}", source) == ["profile.name | ini }}"]


def test_memoized_header_renders_what_jinja2_renders(monkeypatch):
    from types import SimpleNamespace

    contexts = [dict(profile=SimpleNamespace(name=n), guards=g, why=w)
                for n in ("a", "node-0001", "x" * 63) for g in ((), ("incident-1", "config")) for w in ("", "why")]
    contexts.append(dict(profile=SimpleNamespace(name="n"), guards=("config",), why="w", comment=";"))
    lite = [templating.render("networkd/bridge.netdev.j2", bridge=SimpleNamespace(name="br", mac="02:00:00:00:00:01",
                                                                                 mtu=None, stp=False), **c)
            for c in contexts]
    monkeypatch.setenv("NETHARDEN_PRECOMPILED", "0")
    plain = [templating.render("networkd/bridge.netdev.j2", bridge=SimpleNamespace(name="br", mac="02:00:00:00:00:01",
                                                                                  mtu=None, stp=False), **c)
             for c in contexts]
    assert lite == plain
    monkeypatch.delenv("NETHARDEN_PRECOMPILED")
    with pytest.raises(Exception, match="control character"):
        templating.render("_header.j2", profile=SimpleNamespace(name="a\nb"), guards=(), why="")


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
