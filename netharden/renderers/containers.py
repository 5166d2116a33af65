"""Per-container network profiles (incident 5): docker run arguments and a compose fragment.

openvpn in a deploy container failed with "RTNETLINK answers: Permission denied" on
``ip -6 addr add``: the runtime had disabled IPv6 in the container's namespace
(``net.ipv6.conf.{all,default,eth0}.disable_ipv6=1``; /proc/sys is read-only inside a
container, so only ``docker run --sysctl`` can change it). For every entry of
``docker.containers`` this renders, under /etc/netharden/containers:

  NAME.args          one docker run argument per line
  NAME.compose.yaml  a compose fragment for the service NAME
  README             what the files are and how to use them (one per host)

Decisions:

- ``NAME.args`` holds arguments and nothing else: ``--sysctl=KEY=VALUE`` (sorted by key),
  then ``--cap-add=CAP`` (sorted), then ``--device=SPEC`` (sorted), so reordering the
  profile does not change the bytes. No header comment: the file is read with
  ``mapfile -t``, ``xargs -d '\\n'`` or a ``while read`` loop, where a comment line would
  become an argument (docker would take it as the image name). The README beside it
  carries the generated-by header and the usage. ``netharden docker-args`` prints the
  same arguments shell-quoted (cli.py).
- Capabilities are written without the ``CAP_`` prefix: docker before 20.10 refused
  ``CAP_NET_ADMIN``, every version takes ``NET_ADMIN``, and compose passes the list to
  the same daemon. The profile may use either spelling; both files agree.
- The compose fragment double-quotes every scalar (JSON string syntax, which is YAML
  too), so neither a YAML 1.1 loader (docker-compose v1) nor a 1.2 one (compose v2)
  retypes a value: ``"0"`` stays a string, a service named ``on`` or ``123`` stays a
  name. ``sysctls`` is a mapping, which every compose version accepts.
- Order of application: runc writes ``--sysctl`` values in Go map order (random) after
  docker's SetKey prestart hook moved eth0 into the namespace. Writing
  ``net.ipv6.conf.all.disable_ipv6=0`` re-enables interfaces already there (eth0) and
  also sets ``default``; ``default.disable_ipv6=0`` alone only reaches interfaces created
  later (openvpn's tun0). The incident-5 example sets both to 0 so the result holds in
  any order and whatever the kernel copies; tests/test_containers_netns.py replays it.
"""

from __future__ import annotations

from functools import lru_cache

from ..plan_model import File, Plan
from ..profile import Container, Profile
from ..templating import render as render_template

CONTAINERS_DIR = "/etc/netharden/containers"
GUARDS = ("incident-5",)


def args_path(name: str) -> str:
    return f"{CONTAINERS_DIR}/{name}.args"


def compose_path(name: str) -> str:
    return f"{CONTAINERS_DIR}/{name}.compose.yaml"


def capability(name: str) -> str:
    """NET_ADMIN for NET_ADMIN and CAP_NET_ADMIN (the spelling every docker accepts)."""
    return name.removeprefix("CAP_")


def render(profile: Profile, plan: Plan) -> None:
    if profile.containers:
        plan.extend(entries(profile.containers))


@lru_cache(maxsize=64)
def entries(containers: tuple[Container, ...]) -> tuple[File, ...]:
    out = [f for container in containers for f in _container(container)]
    why = "How to use the per-container docker run arguments and compose fragments"
    out.append(
        File(
            path=f"{CONTAINERS_DIR}/README",
            guards=GUARDS,
            why=why,
            content=render_template(
                "containers/README.j2", guards=GUARDS, why=why, dir=CONTAINERS_DIR, names=[c.name for c in containers]
            ),
        )
    )
    return tuple(out)


def _container(container: Container) -> tuple[File, File]:
    caps = sorted({capability(c) for c in container.cap_add})
    devices = sorted(set(container.devices))
    if not (container.sysctls or caps or devices):
        raise ValueError(f"container {container.name!r} has no settings (the schema requires one)")
    context = {"guards": GUARDS, "container": container, "caps": caps, "devices": devices}
    why = f"compose fragment for service {container.name}: namespaced sysctls, capabilities and devices"
    return (
        File(
            path=args_path(container.name),
            content=render_template("containers/args.j2", **context),
            guards=GUARDS,
            why=f"docker run arguments for container {container.name}, one per line",
        ),
        File(
            path=compose_path(container.name),
            guards=GUARDS,
            why=why,
            content=render_template(
                "containers/compose.yaml.j2", why=why, path=compose_path(container.name), **context
            ),
        ),
    )
