"""The network stack a host runs (``platform.stack``): the one place that decides it.

Three stacks configure a host's uplinks and bridges:

- ``networkd``: systemd-networkd ``.network``/``.netdev`` files in /etc/systemd/network;
- ``netplan``: one netplan YAML file that netplan's generator renders to networkd files
  in /run/systemd/network (Ubuntu; the container-interface guards stay networkd files);
- ``networkmanager``: NetworkManager keyfiles and a conf.d drop-in.

Profile normalization, validation, the renderers, the lab and the tests all read the
stack through ``stack_for``.
"""

from __future__ import annotations

STACKS: tuple[str, ...] = ("networkd", "netplan", "networkmanager")

# The stack each platform.os runs by default (documented in the schema).
DEFAULT_STACK: dict[str, str] = {
    "flatcar": "networkd",
    "fcos": "networkmanager",
    "coreos": "networkd",
    "debian": "networkd",
    "ubuntu": "netplan",
    "rhel": "networkmanager",
    "rocky": "networkmanager",
    "alma": "networkmanager",
    "fedora": "networkmanager",
    "generic": "networkd",
}

# Stacks a platform.os cannot have: the image ships no such daemon or generator.
MISSING_STACK: dict[tuple[str, str], str] = {
    ("fcos", "networkd"): "Fedora CoreOS ships no systemd-networkd (coreos/fedora-coreos-config#574, #632)",
    ("flatcar", "networkmanager"): "Flatcar Container Linux ships no NetworkManager",
    ("coreos", "networkmanager"): "CoreOS Container Linux ships no NetworkManager",
    ("flatcar", "netplan"): "Flatcar Container Linux ships no netplan",
    ("coreos", "netplan"): "CoreOS Container Linux ships no netplan",
    ("fcos", "netplan"): "Fedora CoreOS ships no netplan",
}


def stack_for(os_name: object, stack: object = None) -> str:
    """The profile's network stack: ``platform.stack`` when given, else its os's default
    (networkd for an os the schema refuses: validation reads raw data with this too)."""
    if isinstance(stack, str) and stack:
        return stack
    return DEFAULT_STACK.get(os_name, "networkd") if isinstance(os_name, str) else "networkd"
