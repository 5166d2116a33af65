"""``--format plan``: the Plan as JSON, checked against schemas/plan.schema.json with the
real jsonschema validator, read back into an equal Plan, and read by jq (a consumer that
is not Python) byte for byte."""
import json
import subprocess

import jsonschema
import pytest

import netharden
from netharden.cli import main
from netharden.emitters import planjson
from netharden.plan_model import ALLOW_CLASSES, GUARDS, Action, File, Link, Plan, Unit
from netharden.problems import UsageError
from helpers import EXAMPLES, PROFILES, ROOT, need

SCHEMA = json.loads((ROOT / "schemas" / "plan.schema.json").read_text(encoding="utf-8"))
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)   # no format_checker: formats are not asserted

AWKWARD = {
    "/etc/awkward/quotes": "say \"hi\" and 'bye' \\ back\\slash\n",
    "/etc/awkward/percent": "100% %s %% %n ${HOME} $(id) `x`\n",
    "/etc/awkward/unicode": "Ünïcödé – 😀 \u2028 \u2029 \u0085 \ufeff end\n",
    "/etc/awkward/trailing": "trailing spaces   \nand tab\t\n",
    "/etc/awkward/no-final-newline": "no final newline",
    "/etc/awkward/crlf": "windows\r\nline\r\n",
    "/etc/awkward/tabs": "\tleading tab\n\t\tdouble\n",
    "/etc/awkward/empty": "",
    "/etc/awkward/controls": "nul \x00 bell \x07 esc \x1b del \x7f\n",
    "/etc/awkward/only-newlines": "\n\n\n",
}


def awkward_plan() -> Plan:
    plan = Plan("awkward-01", 252)
    for i, (path, content) in enumerate(sorted(AWKWARD.items())):
        plan.add(File(path, content, 0o755 if i % 2 else 0o644, guards=("config",), why=f"why \"{i}\" 100%\t"))
    plan.add(Link("/etc/systemd/network/50-docker.network", "/dev/null", ("incident-2",), "mask"))
    plan.add(Unit("a.service", True, False, ("incident-1",), "enable"))
    plan.add(Unit("b.service", None, True, (), "mask it"))
    plan.add(Unit("c.service", False, False, (), ""))
    plan.add(Action("z-last", ("systemctl", "try-restart", "docker.service"), "restart", 50, True))
    plan.add(Action("a-first", ("printf", "%s\\n", "ü \"q\""), "arg with awkward bytes", 10))
    plan.note("a note with \"quotes\", 100% and ü")
    return plan


def plan_of(path):
    return netharden.plan(netharden.load(path))


def test_schema_is_valid_draft_2020_12_closed_and_described():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema" and SCHEMA["$id"]
    assert SCHEMA["properties"]["apiVersion"]["const"] == "netharden/v2"
    assert SCHEMA["properties"]["kind"]["const"] == "Plan"
    objects = []

    def walk(node, where):
        if isinstance(node, dict):
            if node.get("type") == "object":
                objects.append(where)
                assert node.get("additionalProperties") is False, f"{where} is open"
                assert set(node["required"]) == set(node["properties"]), f"{where}: every key is required"
            for key, sub in node.get("properties", {}).items():
                assert sub.get("description"), f"{where}.{key} has no description"
            for key, sub in node.items():
                walk(sub, f"{where}/{key}")
        elif isinstance(node, list):
            for i, sub in enumerate(node):
                walk(sub, f"{where}[{i}]")

    walk(SCHEMA, "#")
    assert len(objects) == 6   # the document, file, link, unit, action, sysctl


def test_schema_guard_ids_are_the_plan_models():
    assert SCHEMA["$defs"]["file"]["properties"]["guards"]["items"]["enum"] == sorted(GUARDS)


def test_the_schema_ships_with_the_package():
    assert planjson.schema() == SCHEMA


@pytest.mark.parametrize("path", PROFILES, ids=lambda p: p.name)
def test_every_example_validates_and_round_trips(path):
    plan = plan_of(path)
    data = netharden.emit(plan, "plan")
    doc = json.loads(data)
    errors = [f"{e.json_path}: {e.message}" for e in VALIDATOR.iter_errors(doc)]
    assert errors == []
    assert doc["apiVersion"] == "netharden/v2" and doc["kind"] == "Plan"
    assert doc["profile"] == plan.profile and doc["systemd"] == plan.systemd
    back = planjson.loads(data)
    expected = plan.sorted()
    assert back.files == expected.files and back.links == expected.links and back.units == expected.units
    assert back.actions == expected.actions and back.notes == expected.notes
    assert back == expected
    assert data == netharden.emit(plan, "plan")            # deterministic


def test_output_format_sorted_keys_indent_two_final_newline():
    plan = awkward_plan()
    data = planjson.render(plan)
    text = data.decode("utf-8")                             # valid UTF-8
    doc = json.loads(text)
    assert text == json.dumps(doc, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    assert text.endswith("}\n") and not text.endswith("\n\n")
    assert "Ünïcödé" in text and "😀" in text               # non-ASCII as it is, not \u escapes
    assert "\\r\\n" in text and "\r" not in text             # CR escaped by JSON
    assert [f["mode"] for f in doc["files"]][:2] == ["0644", "0755"]


def test_awkward_contents_survive_unchanged():
    plan = awkward_plan()
    data = planjson.render(plan)
    doc = json.loads(data)
    assert list(VALIDATOR.iter_errors(doc)) == []
    assert {f["path"]: f["content"] for f in doc["files"]} == AWKWARD
    assert planjson.loads(data) == plan.sorted()


def test_jq_reads_every_content_byte_for_byte(tmp_path):
    jq = need("jq", "apt-get install jq (scripts/install-system-deps.sh)")
    plan = awkward_plan()
    out = tmp_path / "plan.json"
    out.write_bytes(planjson.render(plan))
    for path, content in AWKWARD.items():
        got = subprocess.run([jq, "-j", "--arg", "p", path, '.files[] | select(.path == $p) | .content', str(out)],
                             capture_output=True, check=True).stdout
        assert got == content.encode("utf-8"), path
    modes = subprocess.run([jq, "-r", ".files[].mode", str(out)], capture_output=True, check=True, text=True).stdout
    assert modes.split() == [f"{f.mode:04o}" for f in plan.sorted().files]


def test_jq_reads_every_example(tmp_path):
    jq = need("jq", "apt-get install jq (scripts/install-system-deps.sh)")
    for path in EXAMPLES:
        plan = plan_of(path)
        out = tmp_path / f"{path.stem}.json"
        out.write_bytes(planjson.render(plan))
        got = subprocess.run([jq, "-j", '.files[] | .path + "\\u0000" + .content + "\\u0000"', str(out)],
                             capture_output=True, check=True).stdout.split(b"\0")
        assert got.pop() == b""
        assert dict(zip(got[::2], got[1::2])) == {f.path.encode(): f.content.encode("utf-8") for f in plan.files}


@pytest.mark.parametrize("mutate, where", [
    (lambda d: d.pop("apiVersion"), "$"),
    (lambda d: d.update(apiVersion="netharden/v1"), "$.apiVersion"),
    (lambda d: d.update(extra=1), "$"),
    (lambda d: d["files"][0].update(mode=420), "$.files[0].mode"),
    (lambda d: d["files"][0].update(mode="644"), "$.files[0].mode"),
    (lambda d: d["files"][0].update(path="etc/relative"), "$.files[0].path"),
    (lambda d: d["files"][0].update(path="/etc/../shadow"), "$.files[0].path"),
    (lambda d: d["files"][0].pop("content"), "$.files[0]"),
    (lambda d: d["files"][0].update(guards=["incident-9"]), "$.files[0].guards[0]"),
    (lambda d: d["units"][0].update(enabled="yes"), "$.units[0].enabled"),
    (lambda d: d["actions"][0].update(argv=[]), "$.actions[0].argv"),
    (lambda d: d["actions"][0].update(extra=True), "$.actions[0]"),
    (lambda d: d["actions"][0].pop("triggers"), "$.actions[0]"),
    (lambda d: d["actions"][0].update(triggers=["etc/relative"]), "$.actions[0].triggers[0]"),
    (lambda d: d["actions"][0].update(triggers=["/etc/../x/"]), "$.actions[0].triggers[0]"),
    (lambda d: d["actions"][0].update(triggers=["/etc//x"]), "$.actions[0].triggers[0]"),
    (lambda d: d["actions"][0].update(unit="../x.service"), "$.actions[0].unit"),
    (lambda d: d["actions"][0].update(ensure_started=None), "$.actions[0].ensure_started"),
    (lambda d: d["actions"][0].update(allow="everything"), "$.actions[0].allow"),
    (lambda d: d["actions"][0].update(sysctls=[{"key": "a.b", "value": 1}]), "$.actions[0].sysctls[0].value"),
    (lambda d: d["actions"][0].update(sysctls=[{"key": "a.b", "value": "1", "x": 1}]), "$.actions[0].sysctls[0]"),
    (lambda d: d["units"][0].update(wanted_by=["multi user.target"]), "$.units[0].wanted_by[0]"),
    (lambda d: d["units"][0].pop("wanted_by"), "$.units[0]"),
])
def test_schema_rejects_broken_documents(mutate, where):
    doc = json.loads(planjson.render(awkward_plan()))
    mutate(doc)
    errors = list(VALIDATOR.iter_errors(doc))
    assert errors and {e.json_path for e in errors} == {where}
    with pytest.raises(UsageError, match="not a valid plan document"):
        planjson.loads(json.dumps(doc))


def test_schema_allow_classes_are_the_plan_models():
    assert SCHEMA["$defs"]["action"]["properties"]["allow"]["enum"] == [*ALLOW_CLASSES, None]


def test_the_structure_appliers_read_round_trips():
    """v2's structure (units' wanted_by, actions' triggers, unit, ensure_started, allow, sysctls)
    survives the document, awkward values included."""
    plan = Plan("structured", 252)
    plan.add(Unit("nh-ü.service", True, False, ("config",), "why", wanted_by=("multi-user.target", "b@x.target")))
    plan.add(Action("start", ("systemctl", "start", "nh-ü.service"), phase=30,
                    triggers=("/etc/systemd/system/nh-ü.service", "/etc/systemd/system/nh-ü.service.d/", "/"),
                    unit="nh-ü.service", ensure_started=True))
    plan.add(Action("restart", ("systemctl", "try-restart", "docker.service"), phase=50, disruptive=True,
                    triggers=("/etc/docker/daemon.json",), unit="docker.service", allow="docker"))
    plan.add(Action("load", ("sysctl", "-p", "/etc/sysctl.d/x.conf"), phase=20, triggers=(),
                    sysctls=(("net.ipv4.conf.eth0/100.rp_filter", "0"), ("net.ipv4.ip_local_port_range", "1  2 "))))
    data = planjson.render(plan)
    doc = json.loads(data)
    assert list(VALIDATOR.iter_errors(doc)) == []
    assert doc["units"][0]["wanted_by"] == ["multi-user.target", "b@x.target"]
    assert {a["id"]: (a["unit"], a["ensure_started"], a["allow"]) for a in doc["actions"]} == {
        "load": (None, False, None), "start": ("nh-ü.service", True, None),
        "restart": ("docker.service", False, "docker")}
    assert doc["actions"][0]["sysctls"] == [{"key": "net.ipv4.conf.eth0/100.rp_filter", "value": "0"},
                                            {"key": "net.ipv4.ip_local_port_range", "value": "1  2 "}]
    assert planjson.loads(data) == plan.sorted()


def test_loads_refuses_text_that_is_not_json():
    with pytest.raises(UsageError, match="not a plan document"):
        planjson.loads(b"#cloud-config\n")


def test_cli_writes_the_plan(tmp_path, capsys):
    full = ROOT / "examples" / "full-host.yaml"
    assert main(["render", str(full), "--format", "plan"]) == 0
    assert capsys.readouterr().out.encode("utf-8") == planjson.render(plan_of(full))
    out = tmp_path / "plan.json"
    assert main(["render", str(full), "--format", "plan", "--out", str(out)]) == 0
    assert out.read_bytes() == planjson.render(plan_of(full))
