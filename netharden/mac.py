"""MAC addresses: parsing, checks and the stable bridge MAC derivation.

``stable_mac(host, bridge)`` is a locally administered unicast MAC derived from the
host's ``metadata.name`` and the bridge name:

    digest = SHA-256(b"netharden-bridge-mac-v1\\0" + host + b"\\0" + bridge)
    mac    = digest[0:6], with octet 0 := (octet 0 & 0xFC) | 0x02

Octet 0 has the multicast bit (0x01) cleared and the locally administered bit (0x02)
set, so the address never collides with a vendor (OUI) address. If the result would
start with 02:42 (the prefix dockerd uses for container MACs) the second octet is
XORed with 0x80, so a bridge can never share a MAC with a container. The inputs are
fixed, so the MAC survives reboots and re-provisioning; two hosts (or two bridges)
get different MACs with overwhelming probability (48-2 random bits).
"""

from __future__ import annotations

try:  # the built-in SHA-256, without hashlib's OpenSSL start-up (a cold render's milliseconds)
    from _sha256 import sha256  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - Python 3.12 and later name it _sha2
    try:
        from _sha2 import sha256  # type: ignore[import-not-found]
    except ImportError:
        from hashlib import sha256

_DOMAIN = b"netharden-bridge-mac-v1\0"


def is_valid(mac: str) -> bool:
    """Six colon-separated pairs of hex digits."""
    parts = mac.split(":")
    return len(parts) == 6 and all(len(p) == 2 and all(c in "0123456789abcdefABCDEF" for c in p) for p in parts)


def normalize(mac: str) -> str:
    return mac.lower()


def octets(mac: str) -> list[int]:
    return [int(part, 16) for part in mac.split(":")]


def is_multicast(mac: str) -> bool:
    return bool(octets(mac)[0] & 0x01)


def is_zero(mac: str) -> bool:
    return not any(octets(mac))


def stable_mac(host: str, bridge: str) -> str:
    digest = bytearray(sha256(_DOMAIN + host.encode() + b"\0" + bridge.encode()).digest()[:6])
    digest[0] = (digest[0] & 0xFC) | 0x02
    if digest[0] == 0x02 and digest[1] == 0x42:
        digest[1] ^= 0x80
    return ":".join(f"{b:02x}" for b in digest)


def stable_uuid(name: str) -> str:
    """An RFC 4122 version-5 UUID of ``name`` in netharden's namespace (what
    ``uuid.uuid5(NAMESPACE, name)`` gives, without importing uuid at start-up)."""
    try:
        from _sha1 import sha1  # type: ignore[import-not-found]
    except ImportError:  # pragma: no cover - a build without the built-in module
        from hashlib import sha1

    digest = bytearray(sha1(UUID_NAMESPACE + name.encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


# uuid.uuid5(uuid.NAMESPACE_DNS, "netharden.dev").bytes: the namespace of netharden's
# NetworkManager connection profiles (NM keys a profile by its uuid)
UUID_NAMESPACE = bytes.fromhex("d434d3ca294c5462bb89fb007c7cf18a")
