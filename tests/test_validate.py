import json

import jsonschema
import pytest
import yaml

import netharden
from netharden.problems import ProfileError
from netharden.validate import schema_text
from helpers import EXAMPLES, FULL_HOST, minimal


def errors_of(text: str) -> list:
    with pytest.raises(ProfileError) as err:
        netharden.loads(text, "p.yaml")
    return err.value.problems


def test_contract_example_validates():
    profile = netharden.load(FULL_HOST)
    assert profile.name == "build-01" and profile.systemd == 252


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_validate_with_plain_jsonschema_too(path):
    data = yaml.safe_load(path.read_text())
    jsonschema.Draft202012Validator(json.loads(schema_text())).validate(data)
    netharden.load(path)


def test_typo_gets_a_did_you_mean_hint_at_the_key():
    text = "apiVersion: netharden/v1\nkind: HostProfile\nmetadata: {name: a}\nbrdges: []\n"
    (p,) = errors_of(text)
    assert (p.line, p.column, p.path) == (4, 1, ("brdges",))
    assert p.message == "unknown key 'brdges'" and p.hint == "did you mean 'bridges'?"


def test_all_problems_are_reported_at_once():
    text = """apiVersion: netharden/v1
kind: HostProfile
metadata: {name: Bad_Name}
bridges:
  - {name: "way-too-long-bridge-name", addresses: ["10.0.0.1/24"]}
  - {name: br1, addresses: ["10.0.0.2/24"], mac: "01:00:5e:00:00:01"}
"""
    found = errors_of(text)
    messages = [p.format() for p in found]
    assert len(found) == 4, messages
    assert any("p.yaml:3:18: error: invalid name 'Bad_Name'" in m for m in messages)
    assert any("$.bridges[0].name" in m for m in messages)
    assert any("overlaps" in m and "$.bridges[1].addresses[0]" in m for m in messages)
    assert any("multicast" in m and "$.bridges[1].mac" in m for m in messages)


def test_mapping_input_reports_paths_without_lines():
    with pytest.raises(ProfileError) as err:
        netharden.load(minimal(bridges=[{"name": "br0", "mac": "00:00:00:00:00:00"}]), filename="vars")
    (p,) = err.value.problems
    assert p.format().startswith("vars: error: MAC 00:00:00:00:00:00 is all zeros (at $.bridges[0].mac)")


def test_mapping_with_non_data_values_is_a_problem_not_a_crash():
    with pytest.raises(ProfileError):
        netharden.load(minimal(metadata={"name": object()}))


def test_gateway_rules():
    base = "apiVersion: netharden/v1\nkind: HostProfile\nmetadata: {name: a}\nuplinks:\n"
    ok = base + "  - {name: eth0, addresses: [192.0.2.10/24, '2001:db8::10/64'], gateway: [192.0.2.1, 'fe80::1']}\n"
    netharden.loads(ok)
    (p,) = errors_of(base + "  - {name: eth0, addresses: [192.0.2.10/24], gateway: 198.51.100.1}\n")
    assert "outside every IPv4 address" in p.message and p.path == ("uplinks", 0, "gateway")
    (p,) = errors_of(base + "  - {name: eth0, dhcp: ipv6, gateway: 192.0.2.1}\n")
    assert "unreachable" in p.message
    netharden.loads(base + "  - {name: eth0, dhcp: ipv4, gateway: 192.0.2.1}\n")


def test_yaml_booleans_and_words_both_work_for_dhcp():
    base = "apiVersion: netharden/v1\nkind: HostProfile\nmetadata: {name: a}\nuplinks:\n  - {name: eth0, dhcp: %s}\n"
    assert netharden.loads(base % "yes").uplinks[0].dhcp == "yes"
    assert netharden.loads(base % "true").uplinks[0].dhcp == "yes"
    assert netharden.loads(base % "false").uplinks[0].dhcp == "no"


def test_defaults_are_applied_in_normalize():
    p = netharden.load(minimal(platform={"os": "coreos"}, uplinks=[{"name": "eth0"}]))
    assert p.systemd == 241
    assert [g.id for g in p.unmanaged] == ["docker", "veth", "cni", "flannel", "calico", "cilium", "weave", "vxlan", "kube"]
    assert p.masks == ("50-docker-veth.network", "50-docker.network")
    assert p.uplinks[0].dhcp == "yes" and p.uplinks[0].match.names == ("eth0",)
    assert p.foreign_routes == "keep" and p.vxlan_gc.mode == "off"
