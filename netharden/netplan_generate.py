"""The real ``netplan generate --root-dir`` over a set of netplan YAML files: one
implementation shared by the doctor (``uplink-shadowed`` judges what networkd will read once
netplan has run) and the lab (a Plan or a baseline with files under /etc/netplan gets
netplan's generated /run/systemd/network files before networkd starts).

netplan reads ``{/lib,/etc,/run}/netplan/*.yaml`` (a name in /run shadows /etc, /etc shadows
/lib; all merged in file-name order) and writes ``/run/systemd/network/10-netplan-<id>.network``
(``.link``, ``.netdev``) plus udev rules and units we do not use here.

How netharden's own netplan netdefs are named is the netplan renderer's rule
(``renderers/netplan.py``); :func:`netdef_id` / :func:`generated_network` read it from there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

# netplan's directories and netharden's file: the netplan renderer's (re-exported for the lab)
from .renderers.netplan import GENERATED_DIR, NETPLAN_DIRS, NETPLAN_FILE  # noqa: F401

GENERATED_PREFIX = "10-netplan-"


class NetplanError(RuntimeError):
    """netplan generate refused the YAML (its stderr is the message)."""


def netplan_binary() -> str | None:
    for candidate in (shutil.which("netplan"), "/usr/sbin/netplan", "/usr/bin/netplan"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def is_netplan_yaml(path: str) -> bool:
    return os.path.dirname(path) in NETPLAN_DIRS and path.endswith(".yaml")


def generate(yaml_files: dict[str, str], *, timeout: float = 30.0) -> dict[str, str]:
    """Run the real ``netplan generate --root-dir`` over ``yaml_files`` (target path -> text,
    paths under /etc/netplan, /lib/netplan or /run/netplan) in a scratch root; returns the
    networkd files it wrote (target path under /run/systemd/network -> text).

    Raises NetplanError when netplan refuses the YAML, RuntimeError when netplan is missing."""
    binary = netplan_binary()
    if binary is None:
        raise RuntimeError("netplan is not installed (netplan.io)")
    with tempfile.TemporaryDirectory(prefix="netharden-netplan.") as tmp:
        root = Path(tmp)
        for path, text in sorted(yaml_files.items()):
            target = root / path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
            target.chmod(0o600)  # netplan warns about world-readable YAML
        done = subprocess.run(
            [binary, "generate", "--root-dir", str(root)], capture_output=True, text=True, timeout=timeout
        )
        if done.returncode != 0:
            raise NetplanError(done.stderr.strip() or f"netplan generate exited {done.returncode}")
        out = {}
        gen = root / GENERATED_DIR.lstrip("/")
        if gen.is_dir():
            for f in sorted(gen.iterdir()):
                if f.is_file() and f.suffix in (".network", ".netdev", ".link"):
                    out[f"{GENERATED_DIR}/{f.name}"] = f.read_text(encoding="utf-8")
        return out


def generate_into(yaml_files: dict[str, str], run_network_dir: Path) -> list[str]:
    """:func:`generate`, its networkd files written into ``run_network_dir`` (the lab's
    /run/systemd/network); returns their names."""
    files = generate(yaml_files)
    run_network_dir.mkdir(parents=True, exist_ok=True)
    names = []
    for path, text in files.items():
        name = os.path.basename(path)
        (run_network_dir / name).write_text(text, encoding="utf-8")
        (run_network_dir / name).chmod(0o644)
        names.append(name)
    return names


# --------------------------------------------------------------------------- netharden's own netdefs
# MERGE: helper A (branch i16-netplan) exports netharden.renderers.netplan.netdef_id() and
# generated_network(); these two functions are the only place that depends on it.


def netdef_id(uplink_or_bridge) -> str:
    """The netplan id of a profile uplink or bridge in /etc/netplan/60-netharden.yaml (the
    netplan renderer's rule)."""
    from .renderers import netplan

    return netplan.netdef_id(uplink_or_bridge)


def generated_network(uplink_or_bridge) -> str:
    """The file name netplan 0.106 generates for that netdef (in /run/systemd/network)."""
    from .renderers import netplan

    return os.path.basename(netplan.generated_network(uplink_or_bridge))


def generated_name(netdef: str) -> str:
    """netplan's networkd file name for the netdef id ``netdef``."""
    return f"{GENERATED_PREFIX}{netdef}.network"
