"""``--format cloud-config``: the Plan as a cloud-init ``#cloud-config`` document.

Layout: the required ``#cloud-config`` first line, a comment header (``GENERATED``, the
host, the Plan's notes, the actions this format does not run), then ``write_files``
(every Plan file) and ``runcmd`` (masks, unit enablement, post-apply actions). The YAML is
written by ``_yaml``, whose docstring says why each form reads back unchanged (cloud-init
reads it with PyYAML): every string is ``_yaml.scalar`` (a plain word, else single-quoted,
else double-quoted with escapes), every comment line ``_yaml.comment``.

write_files entries: ``path``, ``owner: 'root:root'``, ``permissions`` as a quoted octal
string (``'0644'``: an unquoted ``0644`` is the int 420 to YAML 1.1, 644 to YAML 1.2, and
cloud-init's schema wants a string), and the content. The content is a literal block
(``_yaml.block``) when ``_yaml.block_ok`` accepts it (YAML gives back exactly those
characters and a reader sees them all) and it ends in exactly one newline: this format
writes only the clip form (``|``, ``|2``; ``block_safe``). Anything else - CRLF, no final newline
or several, trailing whitespace, control characters, a first line starting with a space -
is ``encoding: b64``: cloud-init decodes it to bytes and writes them as they are, so any
content survives byte for byte. An empty file is ``content: ''``. ``defer``
stays at its default (false): the files are written in the init stage, before the
services that start after it (below). cloud-init creates missing parent directories 0755
(umask 022) and chowns every file to root:root, like ``--format tree`` run as root.

Boot order (cloud-init 22.4's units): ``write_files`` runs in the init stage,
``cloud-init.service``: ``After=systemd-networkd-wait-online.service`` and
``Before=network-online.target``. So:

- services ordered ``After=network-online.target`` (the packaged docker.service, anything
  that waits for the network) have not started yet and read the written files (e.g.
  daemon.json) at their first start: restarting them is not needed at first boot;
- systemd-networkd, and everything else that started before, runs with the image's
  files; systemd loaded the units of the boot transaction before the files were written,
  so new units and drop-ins (the docker.service drop-in too) count only after the
  ``daemon-reload`` action. Between the init and final stages dockerd may therefore
  start while networkd still has the image's ``.network`` files and masks and no
  quarantine has run: a window this format cannot close (Ignition writes the files
  before networkd starts).

``runcmd`` is written to a script in the config stage and run by ``scripts-user`` in the
final stage (``cloud-final.service``, ``After=multi-user.target``). Until then networkd
runs with the image's files; the Plan's actions (daemon-reload, start the quarantine,
reload networkd, start new units) are what re-trigger the quarantine and reload networkd.
Its order:

1. masks: cloud-init's write_files cannot write symlinks, so ``mkdir -p`` the parent and
   ``ln -sfn TARGET PATH`` (``-f`` replaces a regular file or symlink already there;
   ``-n`` never descends into a symlinked directory);
2. ``systemctl enable`` / ``disable`` / ``mask`` per ``Plan.units`` (one command each,
   units sorted by name);
3. the Plan's actions in phase order, except the disruptive ones.

Every entry is an argv list: cloud-init writes each list as one line of a ``/bin/sh``
script with every item single-quoted, so the argv reaches the command unchanged. The
script has no ``set -e``: a failing command does not stop the next (cloud-init logs it).

Disruptive actions (restarts of running services: a dockerd restart stops its containers,
a networkd restart can cut the host off) are not run: a service that starts after the
init stage needs no restart at first boot (above), and cloud-init cannot ask whether an
interruption is acceptable. The header lists them with their reason, for the user to run
when acceptable; otherwise they take effect at the next start of the service (the next
boot). So a service already running when write_files runs (networkd: networkd.conf; a
dockerd whose unit is not ordered after network-online.target) keeps its old settings
until then.
"""

from __future__ import annotations

import base64
import shlex

from ..plan_model import GENERATED, Plan
from ._yaml import block, block_ok, scalar
from ._yaml import comment as _comment

KIND = "stream"

OWNER = "root:root"


def block_safe(content: str) -> bool:
    """True when ``content`` is written as a literal block: ``_yaml.block_ok``, and exactly one final newline."""
    return content.endswith("\n") and not content.endswith("\n\n") and block_ok(content)


def _content(content: str) -> list[str]:
    if content == "":
        return ["  content: ''"]
    if block_safe(content):
        return [f"  content: {block(content, 4)}"]
    encoded = base64.b64encode(content.encode("utf-8")).decode("ascii")
    # scalar(): base64 can be all digits ("4560" is U+37B4) or a YAML 1.1 word ("true"),
    # which a plain scalar would turn into an int or a bool
    return ["  encoding: b64", f"  content: {scalar(encoded)}"]


def _flow(argv) -> str:
    return "[" + ", ".join(scalar(arg) for arg in argv) + "]"


def runcmd(plan: Plan) -> list[list[str]]:
    """The runcmd argv lists: masks, unit enablement, non-disruptive actions in order."""
    links = sorted(plan.links, key=lambda x: x.path)
    cmds: list[list[str]] = []
    for parent in sorted({link.path.rsplit("/", 1)[0] or "/" for link in links}):
        cmds.append(["mkdir", "-p", parent])
    cmds += [["ln", "-sfn", link.target, link.path] for link in links]
    units = sorted(plan.units, key=lambda u: u.name)
    for verb, chosen in (
        ("enable", [u.name for u in units if u.enabled and not u.masked]),
        ("disable", [u.name for u in units if u.enabled is False and not u.masked]),
        ("mask", [u.name for u in units if u.masked]),
    ):
        if chosen:
            cmds.append(["systemctl", verb, *chosen])
    cmds += [list(a.argv) for a in plan.actions if not a.disruptive]
    return cmds


def render(plan: Plan) -> bytes:
    plan = plan.sorted()
    out = [
        "#cloud-config",
        _comment(GENERATED),
        _comment(f"Host {plan.profile}."),
        _comment("cloud-init writes the files at first boot (init stage); runcmd (final stage) creates the masks,"),
        _comment("enables the units and runs the post-apply actions: until then networkd runs with the image's files."),
    ]
    for note in plan.notes:
        out.append(_comment(f"Note: {note}"))
    skipped = [a for a in plan.actions if a.disruptive]
    if skipped:
        out.append(_comment("Not run (disruptive: each interrupts a running service). A service that starts after the"))
        out.append(_comment("files are written needs none at first boot; one already running keeps its old settings"))
        out.append(_comment("until its next start. Run by hand when acceptable:"))
        for action in skipped:
            out.append(_comment(f"  {shlex.join(action.argv)}" + (f"  ({action.why})" if action.why else "")))
    if plan.files:
        out.append("write_files:")
        for f in plan.files:
            out += [
                f"- path: {scalar(f.path)}",
                f"  owner: {scalar(OWNER)}",
                f"  permissions: '{f.mode:04o}'",
                *_content(f.content),
            ]
    cmds = runcmd(plan)
    if cmds:
        out.append("runcmd:")
        out += [f"- {_flow(argv)}" for argv in cmds]
    if not plan.files and not cmds:
        out.append("{}")
    return ("\n".join(out) + "\n").encode("utf-8")
