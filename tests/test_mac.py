from hypothesis import given, strategies as st

from netharden.mac import is_multicast, octets, stable_mac

labels = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?", fullmatch=True)
ifnames = st.from_regex(r"[a-z][a-z0-9]{0,14}", fullmatch=True)


def test_stable_mac_is_fixed_for_fixed_inputs():
    # the derivation is a public promise (documented in netharden/mac.py): never change it silently
    assert stable_mac("build-01", "dockerbrjenkins") == "3e:ae:91:8c:7c:ae"


@given(labels, ifnames)
def test_stable_mac_is_locally_administered_unicast(host, bridge):
    mac = stable_mac(host, bridge)
    first = octets(mac)[0]
    assert first & 0x02 and not is_multicast(mac)
    assert not mac.startswith("02:42:")  # dockerd's container prefix
    assert stable_mac(host, bridge) == mac


def test_different_hosts_and_bridges_get_different_macs():
    macs = {stable_mac(f"node-{i:04d}", "br0") for i in range(2000)}
    macs |= {stable_mac("node-0000", f"br{i}") for i in range(1, 2000)}
    assert len(macs) == 3999
