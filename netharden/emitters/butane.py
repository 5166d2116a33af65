"""``--format butane``: the Plan as a Butane config, for users who post-process with
Butane (``butane --strict < host.bu > host.ign``) before provisioning.

Same entries as ``--format ignition`` (``ignition.layout``: unit files and drop-ins in
``systemd.units``, other files in ``storage.files``, masks in ``storage.links``), but
with the contents inline and readable.

Versions. Each Butane spec targets one Ignition spec (Butane's spec table): variant
``flatcar`` 1.0.0 -> Ignition 3.3.0, 1.1.0 -> 3.4.0; variant ``fcos`` 1.4.0 -> 3.3.0,
1.5.0 -> 3.4.0. ``--ignition-version`` picks the row, ``--variant`` the variant.

The YAML is written by ``_yaml``, whose docstring says why each form reads back unchanged
in YAML 1.1 (PyYAML) and YAML 1.2 (go-yaml v3, which Butane uses) alike:

- Strings (paths, names, targets, version) are double-quoted with escapes
  (``_yaml.quoted``), which is also a valid JSON string.
- File and unit contents are a literal block (``_yaml.block``: ``|-``, ``|`` or ``|+``
  as the final newlines need) when ``_yaml.block_ok`` accepts them, otherwise the
  double-quoted form.
- ``mode`` is decimal with the octal in a comment (``mode: 420  # 0644``): ``0644`` is
  octal to go-yaml v3 and YAML 1.1 but the decimal 644 to a YAML 1.2 core-schema reader,
  decimal is the same number to all of them.

A header comment names the profile (``_yaml.comment_text``) and says the file is
generated. Butane itself is not run by the test suite: Debian 12 has no Butane package.
The tests parse the output back (PyYAML, pure and libyaml) and compare every file, link
and unit with the Ignition output, whose application by the real Ignition binary is
tested.
"""

from __future__ import annotations

from ..plan_model import GENERATED, Plan
from ._yaml import block_or_quoted
from ._yaml import comment_text as _header_text
from ._yaml import quoted as quote
from .ignition import layout

KIND = "stream"
OPTIONS = {
    "ignition_version": (("3.3.0", "3.4.0"), "3.3.0"),
    "variant": (("flatcar", "fcos"), "flatcar"),
}

# The variant a profile's platform.os gets when --variant is not given (the emitter reads
# only the Plan, so the CLI and the fleet runner ask here).
OS_VARIANT = {"fcos": "fcos"}


def variant_for(os_name: str, given: str | None) -> str | None:
    """``given``, else the variant of the profile's OS (None: the emitter's default)."""
    return given if given is not None else OS_VARIANT.get(os_name)


# (variant, Ignition spec) -> Butane spec version
BUTANE_VERSIONS = {
    ("flatcar", "3.3.0"): "1.0.0",
    ("flatcar", "3.4.0"): "1.1.0",
    ("fcos", "3.3.0"): "1.4.0",
    ("fcos", "3.4.0"): "1.5.0",
}


def scalar(s: str, indent: int) -> str:
    """``s`` as the value after ``key:``, from its leading space: a literal block indented
    by ``indent`` spaces, or the double-quoted scalar (``_yaml.block_or_quoted``)."""
    return " " + block_or_quoted(s, indent)


def render(plan: Plan, ignition_version: str = "3.3.0", variant: str = "flatcar") -> bytes:
    files, links, units = layout(plan)
    version = BUTANE_VERSIONS[(variant, ignition_version)]
    out = [
        f"# {GENERATED}",
        f"# Host {_header_text(plan.profile)}, Butane {variant} {version} (Ignition spec {ignition_version}): butane --strict < THIS > config.ign",
        f"variant: {variant}",
        f"version: {quote(version)}",
    ]
    if files or links:
        out.append("storage:")
    if files:
        out.append("  files:")
        for f in files:
            out += [
                f"    - path: {quote(f.path)}",
                f"      mode: {f.mode}  # {f.mode:04o}",
                "      overwrite: true",
                "      contents:",
                "        inline:" + scalar(f.content, 10),
            ]
    if links:
        out.append("  links:")
        for link in links:
            out += [
                f"    - path: {quote(link.path)}",
                f"      target: {quote(link.target)}",
                "      hard: false",
                "      overwrite: true",
            ]
    if units:
        out += ["systemd:", "  units:"]
        for u in units:
            out.append(f"    - name: {quote(u.name)}")
            if u.enabled is not None:
                out.append(f"      enabled: {'true' if u.enabled else 'false'}")
            if u.masked:
                out.append("      mask: true")
            if u.contents is not None:
                out.append("      contents:" + scalar(u.contents, 8))
            if u.dropins:
                out.append("      dropins:")
                for name, contents in u.dropins:
                    out += [f"        - name: {quote(name)}", "          contents:" + scalar(contents, 12)]
    return ("\n".join(out) + "\n").encode("utf-8")
