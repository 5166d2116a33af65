"""The ``netharden`` command line. Exit codes: 0 ok, 2 bad input or usage.

Imports are lazy so ``netharden --help`` and ``validate`` start fast.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from . import __version__
from .problems import NetHardenError, ProfileError, UsageError

EXIT_OK, EXIT_USAGE = 0, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's own exit code is 2 as well; keep its format
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    from .emitters import EMITTERS

    p = _Parser(
        prog="netharden",
        description="Turn one declarative host profile into hardened container-host networking.",
        epilog="Exit codes: 0 ok, 1 the profile fails a lab scenario, 2 bad input or usage. Run 'netharden COMMAND --help' for details.",
    )
    p.add_argument("--version", action="version", version=f"netharden {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    r = sub.add_parser(
        "render",
        help="render a profile (or a fleet) into an output format",
        description="Validate PROFILE and write it in the chosen format. Nothing is written when the profile has a problem. "
        "PROFILE may be a fleet (a 'kind: Fleet' file or a directory of host profiles): then --out DIR "
        "receives one output per host (DIR/HOST.ign, DIR/HOST/ for tree ...), written atomically as a whole.",
    )
    r.add_argument("profile", metavar="PROFILE", help="host profile (YAML or JSON), or a fleet file or directory")
    r.add_argument("--format", "-f", default="tree", choices=sorted(EMITTERS), help="output format (default: tree)")
    r.add_argument(
        "--out",
        "-o",
        metavar="PATH",
        help="output directory (tree; default ./NAME/ after metadata.name) or file; stream formats default to stdout",
    )
    r.add_argument("--force", action="store_true", help="replace an existing non-empty output directory or file")
    r.add_argument(
        "--ignition-version",
        metavar="VERSION",
        help="Ignition spec of --format ignition/butane: 3.3.0 (default) or 3.4.0",
    )
    r.add_argument(
        "--variant",
        metavar="VARIANT",
        help="Butane variant of --format butane: flatcar (default) or fcos (the default for a platform.os: fcos profile)",
    )
    r.add_argument(
        "--keep-going",
        action="store_true",
        help="fleets: write the good hosts and list the bad ones (exit code still 2)",
    )
    r.add_argument(
        "--jobs", "-j", type=int, metavar="N", help="fleets: worker processes (default: the CPUs this process may use)"
    )

    v = sub.add_parser(
        "validate",
        help="check profiles (or fleets) and report every problem",
        description="Check each PROFILE (a host profile, a 'kind: Fleet' file or a directory of host profiles) "
        "against the schema and the semantic rules; report every problem as FILE:LINE:COL.",
    )
    v.add_argument("profiles", metavar="PROFILE", nargs="+")
    v.add_argument("--json", action="store_true", help="print problems as JSON")

    s = sub.add_parser(
        "schema",
        help="print the profile JSON schema",
        description="Print schemas/profile.schema.json (JSON Schema 2020-12), e.g. for editors.",
    )
    s.add_argument(
        "--plan", action="store_true", help="print schemas/plan.schema.json instead (the document of --format plan)"
    )

    e = sub.add_parser(
        "explain",
        help="say which incident each generated file guards against",
        description="Render PROFILE and list every generated file, link and action with the incident or hazard it guards against.",
    )
    e.add_argument("profile", metavar="PROFILE")
    e.add_argument("--json", action="store_true", help="print as JSON")

    d = sub.add_parser(
        "docker-args",
        help="print a container's docker run arguments or compose fragment",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Print the docker run arguments of container NAME (a key of docker.containers in PROFILE),\n"
        "shell-quoted on one line, or with --format compose its compose fragment. The bytes are\n"
        "those of /etc/netharden/containers/NAME.args (one argument per line, here quoted) and\n"
        "NAME.compose.yaml.",
        epilog="The arguments are quoted for a POSIX shell, so let a shell parse them:\n"
        '  eval "docker run $(netharden docker-args PROFILE NAME) IMAGE"\n'
        "A plain 'docker run $(netharden docker-args PROFILE NAME) IMAGE' splits words but does not\n"
        "remove quotes: it is right only while no value contains a space (netharden warns when one\n"
        "does). Without eval, read the rendered file, one argument per line:\n"
        '  mapfile -t args < /etc/netharden/containers/NAME.args && docker run "${args[@]}" IMAGE',
    )
    d.add_argument("profile", metavar="PROFILE")
    d.add_argument("name", metavar="NAME", help="container name (a key of docker.containers)")
    d.add_argument(
        "--format",
        "-f",
        default="args",
        choices=("args", "compose"),
        help="args: docker run arguments, shell-quoted (default); compose: the compose fragment",
    )

    lab = sub.add_parser(
        "lab",
        help="prove PROFILE against the incidents on the real systemd-networkd (root)",
        description="Replay each incident in throwaway network namespaces against the installed "
        "systemd-networkd and kernel, with a naive baseline and with PROFILE's own files. "
        "Needs root; never touches the host's interfaces, files or networkd.",
        epilog="Exit codes: 0 the profile holds in every scenario that applies (a baseline that does "
        "not reproduce is reported, not failed), 1 it fails one, 2 bad input, not root, or no "
        "systemd-networkd.",
    )
    lab.add_argument("profile", metavar="PROFILE")
    lab.add_argument("--scenario", "-s", action="append", metavar="ID", help="run only this scenario (repeatable)")
    lab.add_argument("--json", action="store_true", help="print the outcome as JSON")
    lab.add_argument(
        "--udev",
        action="store_true",
        help="NetworkManager profiles: run a real systemd-udevd with NetworkManager's udev rules in the lab "
        "(default: without udev, read-only /sys)",
    )
    lab.add_argument("--keep", action="store_true", help="keep the work directory (rendered tree, networkd logs)")

    doc = sub.add_parser(
        "doctor",
        help="audit a live host or an image for the incident patterns (read-only)",
        description="Look for the known failure modes on this host (files and the interfaces of "
        "the current network namespace) or, with --root, in an unpacked image or a "
        "rendered tree (file checks only). Changes nothing.",
        epilog="Exit codes: 0 no finding at or above --fail-on, 1 findings at or above it (or a "
        "check could not run), 2 usage errors or a bad --profile.",
    )
    doc.add_argument(
        "--root", metavar="DIR", help="audit the files under DIR instead of this host (live checks are skipped)"
    )
    doc.add_argument(
        "--live",
        action="store_true",
        help="with --root: also read the live state of this network namespace (e.g. under "
        "'ip netns exec', or a container with the host's config mounted)",
    )
    doc.add_argument("--only", action="append", metavar="ID", help="run only this check (repeatable)")
    doc.add_argument("--profile", metavar="PROFILE", help="also say which findings applying PROFILE fixes")
    doc.add_argument(
        "--fail-on",
        default="warning",
        choices=("error", "warning", "info", "never"),
        help="exit 1 when a finding is at least this severe (default: warning)",
    )
    doc.add_argument("--json", action="store_true", help="print the report as JSON")
    doc.add_argument("--list", action="store_true", help="list the checks and exit")
    return p


def _report(err: ProfileError) -> None:
    for problem in err.problems:
        print(problem.format(), file=sys.stderr)
    n = len(err.problems)
    print(f"{n} problem{'s' if n != 1 else ''} found", file=sys.stderr)


def _is_fleet(path: str) -> bool:
    from .fleet import is_fleet

    return is_fleet(path)


def cmd_render(args) -> int:
    import netharden
    from netharden import emitters

    if _is_fleet(args.profile):
        return _render_fleet(args)
    if args.keep_going or args.jobs is not None:
        raise UsageError(f"{'--keep-going' if args.keep_going else '--jobs'} applies to fleets only")
    profile = netharden.load(args.profile)
    plan = netharden.plan(profile)
    variant = args.variant
    if args.format == "butane":
        from .emitters.butane import variant_for

        variant = variant_for(profile.os, variant)  # the Butane variant of the profile's own OS
    out = args.out
    if out is None and emitters.get(args.format).KIND == "directory":
        out = default_out(profile.name)  # a directory format without --out: ./NAME/
    data = netharden.emit(
        plan, args.format, out, force=args.force, ignition_version=args.ignition_version, variant=variant
    )
    if data is not None:
        sys.stdout.buffer.write(data)
    elif out:
        count = len(plan.files) + len(plan.links)
        print(f"wrote {args.format} for {profile.name} to {out} ({count} files and links)", file=sys.stderr)
    return EXIT_OK


def default_out(name: str) -> str:
    """Where a directory format goes without --out: ``./<metadata.name>/`` in the working
    directory (metadata.name is a DNS label: always one plain path component)."""
    return f"./{name}/"


def _render_fleet(args) -> int:
    from . import fleet

    if args.jobs is not None and args.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    loaded = fleet.load(args.profile)
    try:
        result = fleet.run(
            loaded,
            args.format,
            args.out,
            force=args.force,
            keep_going=args.keep_going,
            jobs=args.jobs,
            options={"ignition_version": args.ignition_version, "variant": args.variant},
        )
    except ProfileError as err:
        _report(err)
        bad = len({p.message.split(":", 1)[0] for p in err.problems if p.message.startswith("host ")})
        if bad:
            print(f"netharden: {bad} of {len(loaded.hosts)} hosts have problems; nothing written", file=sys.stderr)
        return EXIT_USAGE
    _fleet_summary(result, args.format, args.out)
    return EXIT_USAGE if result.bad else EXIT_OK


def _fleet_summary(result, fmt: str, out: str) -> None:
    if result.bad:
        problems = [p for probs in result.bad.values() for p in probs]
        _report(ProfileError(problems))
        print(
            f"netharden: {len(result.bad)} of {result.hosts} hosts have problems, not written: {', '.join(result.bad)}",
            file=sys.stderr,
        )
    print(
        f"wrote {fmt} for {len(result.written)} of {result.hosts} hosts to {out} "
        f"in {result.seconds:.2f} s ({result.jobs} worker{'s' if result.jobs != 1 else ''})",
        file=sys.stderr,
    )


def _validate_fleet(path: str, as_json: bool, results: list) -> bool:
    from . import fleet

    try:
        loaded = fleet.load(path)
        result = fleet.run(loaded, None, None, keep_going=True)
    except ProfileError as err:
        results.append({"file": path, "ok": False, "problems": [p.to_dict() for p in err.problems]})
        if not as_json:
            _report(err)
        return False
    problems = [p for probs in result.bad.values() for p in probs]
    results.append(
        {
            "file": path,
            "ok": not problems,
            "hosts": result.hosts,
            "bad_hosts": list(result.bad),
            "problems": [p.to_dict() for p in problems],
        }
    )
    if not as_json:
        if problems:
            _report(ProfileError(problems))
            print(
                f"{path}: {len(result.bad)} of {result.hosts} hosts have problems: {', '.join(result.bad)}",
                file=sys.stderr,
            )
        else:
            print(f"{path}: ok ({result.hosts} hosts)")
    return not problems


def cmd_validate(args) -> int:
    import netharden

    failed = False
    results: list[dict] = []
    for path in args.profiles:
        if _is_fleet(path):
            failed = not _validate_fleet(path, args.json, results) or failed
            continue
        try:
            netharden.load(path)
            results.append({"file": path, "ok": True, "problems": []})
            if not args.json:
                print(f"{path}: ok")
        except ProfileError as err:
            failed = True
            results.append({"file": path, "ok": False, "problems": [p.to_dict() for p in err.problems]})
            if not args.json:
                _report(err)
    if args.json:
        print(json.dumps(results, indent=2))
    return EXIT_USAGE if failed else EXIT_OK


def cmd_schema(args) -> int:
    from .resources import read_text

    sys.stdout.write(read_text("schemas", "plan.schema.json" if args.plan else "profile.schema.json"))
    return EXIT_OK


def cmd_explain(args) -> int:
    import netharden

    from .plan_model import GUARDS, File, Link

    profile = netharden.load(args.profile)
    plan = netharden.plan(profile)
    if args.json:
        doc = plan.to_dict()
        for entry in doc["files"]:
            entry.pop("content")
        print(json.dumps(doc, indent=2))
        return EXIT_OK
    from .networkmanager import text as nm_text

    stack = {
        "networkmanager": f"NetworkManager {nm_text(profile.networkmanager)}",
        "netplan": "netplan (renders to systemd-networkd)",
    }.get(profile.stack, "systemd-networkd")
    print(f"host {profile.name}: {profile.os}, {stack}, systemd {profile.systemd}")
    if profile.stack == "netplan":
        from .renderers.netplan import where

        for line in where(profile):
            print(line)
    entries: list[File | Link] = [*plan.files, *plan.links]
    for entry in entries:
        suffix = f" -> {entry.target}" if isinstance(entry, Link) else ""
        print(f"\n{entry.path}{suffix}\n    {entry.why}")
        for g in entry.guards:
            print(f"    guards {g}: {GUARDS[g]}")
    if plan.units:
        print("\nunits:")
        for unit in plan.units:
            state = "masked" if unit.masked else "enabled" if unit.enabled else "left as is"
            print(f"    {unit.name}: {state}    # {unit.why}")
    if plan.actions:
        print("\nafter applying on a live host:")
        for action in plan.actions:
            flag = " (disruptive: only when asked)" if action.disruptive else ""
            print(f"    {' '.join(action.argv)}    # {action.why}{flag}")
    for text in plan.notes:
        print(f"\nnote: {text}")
    from .doctor.checks.uplink_shadowed import explain_notes

    for text in explain_notes(profile, plan):
        print(f"\nnote: {text}")
    return EXIT_OK


def cmd_docker_args(args) -> int:
    import difflib
    import shlex

    import netharden

    from .renderers.containers import args_path, compose_path

    profile = netharden.load(args.profile)
    names = [c.name for c in profile.containers]
    if args.name not in names:
        if not names:
            raise UsageError(f"{args.profile} defines no containers (docker.containers)")
        close = difflib.get_close_matches(args.name, names, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise UsageError(
            f"{args.profile} has no container {args.name!r}\n    hint: {hint}known containers: {', '.join(names)}"
        )
    files = {f.path: f.content for f in netharden.plan(profile).files}
    if args.format == "compose":
        sys.stdout.write(files[compose_path(args.name)])
        return EXIT_OK
    words = files[args_path(args.name)].splitlines()
    quoted = [shlex.quote(w) for w in words]
    sys.stdout.write(" ".join(quoted) + "\n")
    needs_quotes = [q for w, q in zip(words, quoted, strict=True) if q != w]
    if needs_quotes:
        again = " ".join(shlex.quote(a) for a in ("netharden", "docker-args", args.profile, args.name))
        print(
            f"netharden: warning: printed in single quotes (a value contains a space): {' '.join(needs_quotes)}\n"
            f'    hint: only a shell parsing the text removes the quotes: eval "docker run $({again}) IMAGE"; '
            f"a plain $(...) would hand the quotes to docker. Or read {args_path(args.name)}, one argument per line.",
            file=sys.stderr,
        )
    return EXIT_OK


def _require_known(kind: str, wanted, known) -> None:
    """A usage error naming the first of ``wanted`` that is not in ``known`` (ids of lab
    scenarios or doctor checks), with a did-you-mean and the list of known ids."""
    import difflib

    for name in wanted or ():
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            raise UsageError(
                f"unknown {kind} {name!r}"
                + (f"; did you mean {close[0]!r}?" if close else "")
                + f" ({kind}s: {', '.join(known)})"
            )


def cmd_lab(args) -> int:
    import os

    import netharden

    from .lab import report
    from .lab.scenarios import by_id

    scenarios = by_id()
    _require_known("scenario", args.scenario, scenarios)
    profile = netharden.load(args.profile)
    plan = netharden.plan(profile)
    if args.udev and profile.stack != "networkmanager":
        raise UsageError("--udev applies to NetworkManager profiles (platform.stack: networkmanager)")
    from .lab import netns, nm
    from .lab.scenario import networkd_version

    if profile.stack == "networkmanager":
        reason = nm.udev_available() if args.udev else nm.available()
    else:
        reason = netns.available()
    if reason is None and profile.stack == "netplan":
        from .netplan_generate import netplan_binary

        if netplan_binary() is None:
            reason = "the netplan stack's lab runs the real netplan generate: netplan is not installed (netplan.io)"
    if reason is not None:
        raise UsageError(f"netharden lab cannot run here: {reason}")
    from .lab.runner import run

    live = sys.stderr.isatty() and not args.json

    def progress(sid: str, step: str) -> None:
        if live:
            sys.stderr.write("\r\033[K" + ("" if step == "done" else f"running {sid}: {step} ..."))
            sys.stderr.flush()

    outcomes, kept = run(profile, plan, args.scenario, keep=args.keep, progress=progress, udev=args.udev)
    version: int | str = nm.nm_version() if profile.stack == "networkmanager" else networkd_version()
    if args.json:
        print(json.dumps(report.to_json(profile.name, version, outcomes, profile.stack), indent=2))
    else:
        colour = sys.stdout.isatty() and "NO_COLOR" not in os.environ
        report.table(profile.name, version, outcomes, colour=colour, stack=profile.stack)
    if kept:
        print(f"netharden lab: work directory kept: {kept}", file=sys.stderr)
    return report.exit_code(outcomes)


def cmd_doctor(args) -> int:
    import os

    from .doctor import Host, run
    from .doctor import report as doctor_report
    from .doctor.checks import all_checks

    checks = {c.ID: c for c in all_checks()}
    if args.list:
        for c in checks.values():
            print(f"{c.ID:26} {c.SEVERITY:8} {c.NEEDS:6} {c.TITLE} ({c.INCIDENT})")
        return EXIT_OK
    _require_known("check", args.only, checks)
    if args.live and not args.root:
        raise UsageError("--live goes with --root (without --root the live host is audited anyway)")
    if args.root and not os.path.isdir(args.root):
        raise UsageError(f"--root {args.root}: not a directory")
    profile = None
    if args.profile:
        import netharden

        profile = netharden.load(args.profile)
    host = Host(os.path.abspath(args.root) if args.root else "/", live=bool(args.live or not args.root))
    result = run(host, only=args.only, profile=profile)
    if args.json:
        print(doctor_report.to_json(result))
    else:
        tty = sys.stdout.isatty()
        doctor_report.text(result, colour=tty and "NO_COLOR" not in os.environ)
    return result.exit_code(args.fail_on)


COMMANDS = {
    "doctor": cmd_doctor,
    "lab": cmd_lab,
    "render": cmd_render,
    "validate": cmd_validate,
    "schema": cmd_schema,
    "explain": cmd_explain,
    "docker-args": cmd_docker_args,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except ProfileError as err:
        _report(err)
        return EXIT_USAGE
    except NetHardenError as err:
        print(f"netharden: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # e.g. piped into head
        return EXIT_OK
    except KeyboardInterrupt:  # everything has been cleaned up on the way out (lab: namespaces, work dir)
        print("\nnetharden: interrupted", file=sys.stderr)
        return 130
