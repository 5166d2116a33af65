#!/usr/bin/python
# netharden_files: write the netharden Plan's files and symlinks on the managed host in one
# module call (one round trip instead of one ansible.builtin.copy per file), with check
# mode and diffs.
#
# This file is the one implementation; the collection ships the same file at
# plugins/modules/netharden_files.py (a symlink), like the netharden_plan action plugin.
# It runs on the managed host's Python (3.6 and later: Debian 10 and newer, Ubuntu 18.04
# and newer).
from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

DOCUMENTATION = r"""
---
module: netharden_files
short_description: Write the files and symlinks of a netharden Plan
description:
  - Writes every file of the Plan (content, mode, owner root:root) and every symlink (masks, unit
    [Install] links) in one module call, each atomically (a temporary sibling renamed into place).
  - Creates missing parent directories (mode 0755, root:root); existing directories are left as they are.
  - Removes the paths in I(remove) when they are regular files or symlinks, never a directory.
  - Reports exactly the paths it changed (C(changed_paths)); supports check mode and diff mode.
  - Part of the netharden role; the role's tasks pass it the output of the netharden_plan action.
options:
  files:
    description: Files to write, each a mapping with C(path) (absolute), C(content) (text, written as
      UTF-8 exactly as given) and C(mode) (octal string such as C("0644")).
    type: list
    elements: dict
    default: []
  links:
    description: Symlinks to create or correct, each a mapping with C(path) and C(target).
    type: list
    elements: dict
    default: []
  remove:
    description: Paths to remove when they are a regular file or a symlink (the role's prune).
    type: list
    elements: path
    default: []
author: netharden contributors
"""

EXAMPLES = r"""
- name: Write netharden's files
  netharden_files:
    files:
      - path: /etc/systemd/network/10-netharden-br0.netdev
        content: "[NetDev]\nName=br0\nKind=bridge\n"
        mode: "0644"
    links:
      - path: /etc/systemd/network/50-docker.network
        target: /dev/null
"""

RETURN = r"""
changed_paths:
  description: The paths written, corrected or removed by this call (in check mode, those that would be).
  returned: always
  type: list
  elements: str
"""

import errno
import os
import stat
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_bytes, to_text

MAX_DIFF = 256 * 1024  # larger files get a "(content differs)" diff, like ansible.builtin.copy's max_diff_size


def _lstat(path):
    try:
        return os.lstat(path)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            return None
        raise


def _read(path, size):
    if size > MAX_DIFF:
        return None
    with open(path, "rb") as fh:
        return fh.read()


def _text(data):
    return "" if data is None else to_text(data, errors="surrogate_or_strict")


def _before(path, st):
    """What a diff shows for the current state of path (``st``: its lstat, or None)."""
    if st is None:
        return ""
    if stat.S_ISLNK(st.st_mode):
        return "-> %s\n" % os.readlink(path)
    if stat.S_ISREG(st.st_mode):
        old = _read(path, st.st_size)
        return "(%d bytes, not shown)\n" % st.st_size if old is None else _text(old)
    return "(not a regular file)\n"


def _ensure_parent(path, check):
    """Create the missing ancestors of path (0755 root:root); returns the created ones."""
    missing, parent = [], os.path.dirname(path)
    while parent not in ("", "/") and _lstat(parent) is None:
        missing.append(parent)
        parent = os.path.dirname(parent)
    for directory in reversed(missing):
        if not check:
            os.mkdir(directory, 0o755)
            os.chown(directory, 0, 0)
            os.chmod(directory, 0o755)
    return list(reversed(missing))


def _atomic_file(path, data, mode):
    directory = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(prefix=".netharden.", dir=directory)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fchown(fh.fileno(), 0, 0)
            os.fchmod(fh.fileno(), mode)
            os.fsync(fh.fileno())
        os.rename(tmp, path)
    except BaseException:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise


def _atomic_link(path, target):
    directory = os.path.dirname(path)
    tmp = tempfile.mktemp(prefix=".netharden.", dir=directory)  # a symlink cannot be made with mkstemp
    os.symlink(target, tmp)
    try:
        os.rename(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def main():
    module = AnsibleModule(
        argument_spec=dict(
            files=dict(type="list", elements="dict", default=[]),
            links=dict(type="list", elements="dict", default=[]),
            remove=dict(type="list", elements="path", default=[]),
        ),
        supports_check_mode=True,
    )
    check = module.check_mode
    changed, diffs, created_dirs = [], [], []

    def fail(path, message):
        module.fail_json(msg="netharden_files: %s: %s" % (path, message), changed_paths=changed)

    def check_path(path):
        if not isinstance(path, str) or not path.startswith("/") or os.path.normpath(path) != path or path == "/":
            fail(repr(path), "not an absolute, normalized path")

    try:
        for path in module.params["remove"]:
            check_path(path)
            st = _lstat(path)
            if st is None:
                continue
            if not (stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)):
                continue  # never a directory or a device: the role removes only what it wrote
            diffs.append(dict(before_header=path, after_header="%s (removed)" % path, before=_before(path, st), after=""))
            if not check:
                os.unlink(path)
            changed.append(path)

        for item in module.params["files"]:
            path, content, mode = item.get("path"), item.get("content"), item.get("mode")
            check_path(path)
            if not isinstance(content, str):
                fail(path, "content must be text")
            try:
                mode = int(str(mode), 8)
            except ValueError:
                fail(path, "mode %r is not an octal number" % (mode,))
            data = to_bytes(content, errors="surrogate_or_strict")
            created_dirs += _ensure_parent(path, check)
            st = _lstat(path)
            if st is not None and stat.S_ISDIR(st.st_mode):
                fail(path, "is a directory, netharden would write a file there")
            same_content = False
            if st is not None and stat.S_ISREG(st.st_mode) and st.st_size == len(data):
                with open(path, "rb") as fh:
                    same_content = fh.read() == data
            if same_content and (st.st_uid, st.st_gid) == (0, 0) and stat.S_IMODE(st.st_mode) == mode:
                continue
            if same_content:
                if not check:
                    os.chown(path, 0, 0)
                    os.chmod(path, mode)
                diffs.append(dict(before_header=path, after_header=path,
                                  before="mode %04o owner %d:%d\n" % (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid),
                                  after="mode %04o owner 0:0\n" % mode))
            else:
                before = _before(path, st)
                after = content if len(data) <= MAX_DIFF else "(%d bytes, not shown)\n" % len(data)
                diffs.append(dict(before_header=path, after_header=path, before=before, after=after))
                if not check:
                    _atomic_file(path, data, mode)
            changed.append(path)

        for item in module.params["links"]:
            path, target = item.get("path"), item.get("target")
            check_path(path)
            if not isinstance(target, str) or not target:
                fail(path, "a symlink needs a target")
            created_dirs += _ensure_parent(path, check)
            st = _lstat(path)
            if st is not None and stat.S_ISLNK(st.st_mode) and os.readlink(path) == target:
                continue
            if st is not None and stat.S_ISDIR(st.st_mode):
                fail(path, "is a directory, netharden would put a symlink there")
            diffs.append(dict(before_header=path, after_header=path, before=_before(path, st),
                              after="-> %s\n" % target))
            if not check:
                _atomic_link(path, target)
            changed.append(path)
    except (OSError, IOError) as exc:
        fail(getattr(exc, "filename", None) or "?", to_text(exc))

    module.exit_json(changed=bool(changed or created_dirs), changed_paths=changed,
                     created_dirs=sorted(set(created_dirs)), diff=diffs)


if __name__ == "__main__":
    main()
