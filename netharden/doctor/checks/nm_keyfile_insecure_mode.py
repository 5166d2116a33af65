"""``nm-keyfile-insecure-mode``: a keyfile profile NetworkManager ignores for its owner or mode.

nm-settings-keyfile(5): "For security, it will ignore files that are readable or writable by
any user other than 'root' since private keys and passphrases may be stored in plaintext inside
the file." The keyfile plugin checks every file it would read
(nms_keyfile_utils_check_file_permissions_stat()): a regular file (symlinks followed), owned by
uid 0, no group or other permission bits. Otherwise it logs, measured on 1.42:
``keyfile: load: "PATH": failed to load connection: File permissions (100644) are insecure``
(or "File owner (1000) is insecure", "file is not a regular file") and the profile does not
exist for NM: the uplink it describes is not configured, and NM may put an auto-default
"Wired connection" on that NIC instead. A file readable by others also shows its secrets
(wifi-security psk, 802-1x passwords, VPN secrets) to every local user.

Files: those the keyfile plugin reads (nm_config.py: ``keyfile.path``, /run and /usr/lib
system-connections, NM's file-name rules). ``fixed_by``: the profile fixes a finding when it
writes that file itself with a mode without group/other bits (the appliers write as root);
otherwise not (netharden does not chmod files it does not own).
"""

from __future__ import annotations

from ..host import Host
from ..model import Finding
from ..nm_config import KeyFileError, load_config, load_profiles, not_nm_host, parse_keyfile

ID = "nm-keyfile-insecure-mode"
TITLE = "NetworkManager ignores a keyfile for its owner or mode"
SEVERITY = "error"
INCIDENT = "config"
HINT = (
    "chown root:root and chmod 0600 the file, then nmcli connection reload (with platform.stack: "
    "networkmanager netharden writes its own keyfiles 0600, owned by root)"
)
NEEDS = "files"

SECRET_KEYS = {
    "psk",
    "password",
    "private-key-password",
    "phase2-private-key-password",
    "leap-password",
    "wep-key0",
    "wep-key1",
    "wep-key2",
    "wep-key3",
    "pin",
    "secrets",
}


def applies(host: Host) -> str | None:
    return not_nm_host(host)


def _secrets(text: str | None) -> list[str]:
    if not text:
        return []
    try:
        groups = parse_keyfile(text)
    except KeyFileError:
        return []
    return [f"{g}.{k}" for g, keys in groups.items() for k in keys if k in SECRET_KEYS or g == "vpn-secrets"]


def check(host: Host) -> list[Finding]:
    findings = []
    for prof in load_profiles(host, load_config(host)):
        if prof.ignored is None or prof.mode is None or not prof.ignored.lower().startswith("file "):
            continue  # a permission problem (not a parse error: NM refuses those for what they say)
        if host.kind(prof.path) not in ("file", "link"):
            continue  # a directory or socket in system-connections is no keyfile anybody wrote
        mode = prof.mode
        message = (
            f"mode {mode:04o}, owner uid {prof.uid}: the profile is ignored by NetworkManager with a warning "
            f'("failed to load connection: {prof.ignored}")'
        )
        secrets = _secrets(host.read_text(prof.path)) if mode & 0o044 else []
        if secrets:
            message += f"; other users can read its secrets ({', '.join(secrets)})"
        findings.append(Finding(subject=host.display(prof.path), message=message))
    return findings


def fixed_by(profile, plan, finding: Finding, host: Host):
    path = next((p.path for p in load_profiles(host) if host.display(p.path) == finding.subject), finding.subject)
    own = next((f for f in plan.files if f.path == path), None)
    if own is None:
        return False, "the profile does not write this file: chown root:root and chmod 0600 it yourself"
    if own.mode & 0o077:
        return False, f"the profile writes it with mode {own.mode:04o}, which NetworkManager ignores as well"
    return True, f"the profile writes it with mode {own.mode:04o}, owned by root"
