"""The fast paths of a cold render change nothing but speed.

- The generated artefacts (netharden/_profile_schema_check.py, netharden/_templates_compiled.py)
  are what ``python -m netharden.precompile --write`` makes of the current schema,
  templates and Jinja2 (``make precompile``).
- Every example and the awkward profile render byte for byte the same in every format
  through the precompiled path (schema checker + ``_jinja_lite``) and through the
  source path (jsonschema + jinja2 compiling templates), and the precompiled run never
  falls back to jinja2. Generated profiles agree too.
- The generated schema checker says "valid" exactly when jsonschema finds no error.
- Stale artefacts are ignored as a whole, and an error in a lite render is raised as it
  is, never rendered again; under CI the declared Jinja2 must take the lite path.
- The CLI imports lazily: ``--help``, ``schema`` and ``validate`` of a valid profile import
  neither jinja2 nor jsonschema, and neither does rendering the full host.
"""
from __future__ import annotations

import copy
import json
import os
import random
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import netharden
from netharden import _jinja_lite, precompile, templating, validate
from netharden.emitters import EMITTERS
from netharden.problems import NetHardenError
from netharden.yamlload import Document, load_file
from helpers import PROFILES, ROOT, clear_memos, minimal, tree_files
from test_property import MUTATIONS, profiles


@pytest.fixture
def source_path(monkeypatch):
    """Switch to the path without precompiled artefacts (as NETHARDEN_PRECOMPILED=0)."""
    def use(on: bool):
        monkeypatch.setenv("NETHARDEN_PRECOMPILED", "1" if on else "0")
        validate._precompiled_check.cache_clear()
        clear_memos()   # memoized renderer parts hold what the other path rendered
    yield use
    validate._precompiled_check.cache_clear()
    clear_memos()


def test_generated_artefacts_are_in_sync():
    import fastjsonschema

    from netharden import _profile_schema_check as checker, _templates_compiled as compiled

    stale = precompile.stale()
    # A new Jinja2 release: the templates then render through jinja2 (correct, slower) until
    # 'make precompile' is run with it. A new fastjsonschema release generates other text,
    # and the committed checker still runs. Neither is a reason to fail unrelated work.
    newer = {}
    if compiled.JINJA2_VERSION != templating.jinja2_version():
        newer["netharden/_templates_compiled.py"] = f"Jinja2 {compiled.JINJA2_VERSION}, {templating.jinja2_version()} installed"
    if checker.VERSION != fastjsonschema.VERSION:
        newer["netharden/_profile_schema_check.py"] = f"fastjsonschema {checker.VERSION}, {fastjsonschema.VERSION} installed"
    if newer:
        assert set(stale) <= set(newer), stale
        pytest.skip(f"generated with {'; '.join(newer.values())}: run 'make precompile'")
    assert stale == [], "run 'make precompile' (python -m netharden.precompile --write)"


def test_every_template_runs_on_the_lite_runtime():
    from netharden import _templates_compiled as compiled

    if compiled.JINJA2_VERSION != templating.jinja2_version():
        pytest.skip("templates precompiled with another Jinja2: see test_generated_artefacts_are_in_sync")
    assert sorted(compiled.TEMPLATES) == sorted(precompile.template_sources())
    assert [name for name, (_, factory) in compiled.TEMPLATES.items() if factory is None] == []
    assert templating._lite() is not None


def _render_all(path, tmp, tag):
    """{format: bytes, or the tree's files, or the refusal's text} of one profile."""
    plan = netharden.plan(netharden.load(path))
    out = {}
    for fmt in sorted(EMITTERS):
        try:
            if fmt == "tree":
                netharden.emit(plan, fmt, tmp / f"{tag}-{path.stem}")
                out[fmt] = tree_files(tmp / f"{tag}-{path.stem}")
            else:
                out[fmt] = netharden.emit(plan, fmt)
        except NetHardenError as err:
            out[fmt] = f"refused: {err}"
    return out


@pytest.mark.parametrize("path", PROFILES, ids=lambda p: p.name)
def test_precompiled_and_source_paths_write_the_same_bytes(path, tmp_path, source_path, monkeypatch):
    source_path(False)
    reference = _render_all(path, tmp_path, "source")
    source_path(True)
    assert validate._precompiled_check() is not None

    def no_jinja2():  # the precompiled run must not fall back to jinja2 for any template
        raise AssertionError("a template fell back to jinja2")

    if templating._lite() is not None:  # None only with another Jinja2 than the precompiled one
        monkeypatch.setattr(templating, "environment", no_jinja2)
    assert _render_all(path, tmp_path, "fast") == reference


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(profiles())
def test_generated_profiles_render_the_same_through_both_paths(monkeypatch, data):
    profile = netharden.load(data)
    monkeypatch.setenv("NETHARDEN_PRECOMPILED", "0")
    clear_memos()
    reference = netharden.plan(profile).to_dict()
    monkeypatch.setenv("NETHARDEN_PRECOMPILED", "1")
    clear_memos()
    assert netharden.plan(profile).to_dict() == reference


# ------------------------------------------------------------------ schema checker
def _agrees(data):
    check = validate._precompiled_check()
    assert check is not None
    jsonschema_ok = next(validate._validator().iter_errors(data), None) is None
    assert check(data) is jsonschema_ok, json.dumps(data)[:300]
    return jsonschema_ok


def test_schema_checker_agrees_on_examples_and_the_bad_corpus():
    for path in PROFILES:
        assert _agrees(load_file(path).data)
    invalid = 0
    for path in sorted((ROOT / "tests" / "bad").glob("*")):
        try:
            doc = load_file(path)
        except netharden.ProfileError:
            continue  # a YAML-level problem: never reaches the schema
        invalid += not _agrees(doc.data)
    assert invalid > 50


_ODD_VALUES = [None, True, False, 0, 1, 1.0, 1500.0, -1, 65536, 10 ** 6, "", "x", "UPPER", "eth0", "a" * 300,
               "eth0\n", "10.0.0.1/24", "02:00:00:00:00:01", [], [1], ["x", "x"], ["eth*"], {}, {"name": "x"}]


def _paths(node, path=()):
    yield path
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, path + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, path + (i,))


def _replace(data, path, value):
    data = copy.deepcopy(data)
    if not path:
        return value
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return data


@pytest.mark.parametrize("path", PROFILES, ids=lambda p: p.name)
def test_schema_checker_agrees_on_every_node_replaced_by_odd_values(path):
    data = load_file(path).data
    rng = random.Random(path.name)
    for where in _paths(data):
        for value in rng.sample(_ODD_VALUES, 6):
            _agrees(_replace(data, where, value))
        if isinstance(data, dict) and where:  # an unknown key beside each node
            parent = where[:-1]
            node = data
            for key in parent:
                node = node[key]
            if isinstance(node, dict):
                _agrees(_replace(data, parent + ("zzz",), 1))


@settings(max_examples=150, deadline=None)
@given(profiles(), st.sampled_from(range(len(MUTATIONS))))
def test_schema_checker_agrees_on_generated_and_mutated_profiles(data, which):
    _agrees(data)
    bad = copy.deepcopy(data)
    MUTATIONS[which](bad)
    _agrees(bad)


def test_a_stale_schema_checker_is_not_used(monkeypatch):
    validate._precompiled_check.cache_clear()
    try:
        monkeypatch.setattr(validate, "schema_text", lambda: validate.read_text("schemas", "profile.schema.json") + " ")
        assert validate._precompiled_check() is None
    finally:
        validate._precompiled_check.cache_clear()


def test_the_generator_refuses_keywords_it_does_not_implement():
    with pytest.raises(precompile.SchemaNotSupported, match="patternProperties"):
        precompile.schema_checker_source(json.dumps({"type": "object", "patternProperties": {"^a": {}}}))
    with pytest.raises(precompile.SchemaNotSupported, match="references"):
        precompile.schema_checker_source(json.dumps({"$ref": "https://example.org/x"}))


def _both(schema, value):
    """(fastjsonschema's verdict through precompile.fast_schema, validate.validator_class()'s)."""
    import fastjsonschema

    try:
        precompile.fast_validator(schema)(value)
        fast = True
    except fastjsonschema.JsonSchemaValueException:
        fast = False
    return fast, validate.validator_class()(schema).is_valid(value)


@pytest.mark.parametrize("schema, values", [
    ({"enum": ["yes", "no", True, False]}, [True, False, 1, 0, 1.0, "yes", "true", None]),
    ({"enum": ["off", False]}, [False, 0, 0.0, "off", None, ""]),
    ({"const": True}, [True, 1, 1.0, "true"]),
    ({"const": 1}, [1, 1.0, True]),
    ({"uniqueItems": True}, [[1, True], [0, False], [1, 1.0], [[1], [True]], [{"a": 1}, {"a": True}],
                             [{"a": [0]}, {"a": [False]}], ["a", "a"], [None, False], [[], {}]]),
    ({"pattern": "^[a-z]+$"}, ["host", "host\n", "\nhost", "ho\nst", 5]),
    ({"pattern": "^a$|^b$"}, ["a", "b\n", "a\n"]),
    ({"type": "number"}, [1, 1.5, True, "1", None]),
])
def test_fastjsonschema_and_jsonschema_agree_on_the_known_differences(schema, values):
    """bool vs number in enum/const/uniqueItems, and a pattern's $ (end of the string in both)."""
    for value in values:
        fast, slow = _both({"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}, value)
        assert fast is slow, (schema, value)


def test_integral_floats_are_no_integers_and_go_to_jsonschema():
    data = minimal(uplinks=[{"name": "lan", "mtu": 1500.0}])
    check = validate._precompiled_check()
    from netharden import _profile_schema_check as generated

    assert generated.validate(copy.deepcopy(data))            # fastjsonschema alone: 1500.0 is an integer
    assert not validate.plain_without_integral_floats(data) and check(data) is False
    problems = validate.validate(Document("p.yaml", data, {}))
    assert [p.message for p in problems] == ["expected an integer, got the number 1500.0"]
    passthrough = minimal(docker={"daemons": [{"name": "docker", "settings": {"max-concurrent-uploads": 5.0}}]})
    assert check(passthrough) is True                         # valid where no integer is asked for (jsonschema's verdict)
    assert validate.plain_without_integral_floats(minimal(uplinks=[{"name": "lan", "mtu": 1500}]))
    assert not validate.plain_without_integral_floats({"a": ("tuple",)})
    assert not validate.plain_without_integral_floats([1e4])


def test_a_trailing_newline_fails_a_pattern_in_both_validators():
    data = minimal()
    data["metadata"]["name"] = "host-a\n"
    assert validate._precompiled_check()(data) is False
    assert not validate._validator().is_valid(data)
    assert validate.end_of_string("^a$|^(b)$") == "^a\\Z|^(b)\\Z" and validate.end_of_string("^a\\$") == "^a\\$"


def test_end_of_string_is_fastjsonschemas_own_rewrite():
    import fastjsonschema

    patterns = set()
    for name in ("profile.schema.json", "fleet.schema.json"):
        stack = [json.loads((ROOT / "schemas" / name).read_text())]
        while stack:
            node = stack.pop()
            if isinstance(node, dict):
                if isinstance(node.get("pattern"), str):
                    patterns.add(node["pattern"])
                stack.extend(node.values())
            elif isinstance(node, list):
                stack.extend(node)
    assert len(patterns) > 20
    namespace: dict = {}
    exec(fastjsonschema.compile_to_code({"anyOf": [{"pattern": p} for p in sorted(patterns)]}), namespace)
    assert {p: r.pattern for p, r in namespace["REGEX_PATTERNS"].items()} == {p: validate.end_of_string(p) for p in patterns}


def test_ref_siblings_are_checked_as_in_2020_12():
    """fastjsonschema ignores the siblings of $ref (draft-07); fast_schema writes the referenced
    schema in place of the $ref, beside them in an allOf."""
    import fastjsonschema

    schema = {"$defs": {"a": {"type": "string"}}, "properties": {"k": {"$ref": "#/$defs/a", "pattern": "^x$", "title": "t"}}}
    assert precompile.fast_schema(schema)["properties"]["k"] == {"title": "t", "allOf": [{"type": "string"}, {"pattern": "^x\\Z"}]}
    for value in ({"k": "x"}, {"k": "y"}, {"k": 1}, {"k": "x\n"}):
        assert _both(schema, value)[0] is _both(schema, value)[1], value
    recursive = {"$defs": {"n": {"type": "object", "properties": {"c": {"$ref": "#/$defs/n"}, "v": {"type": "integer"}}}},
                 "$ref": "#/$defs/n"}
    assert precompile.fast_schema(recursive)["allOf"][0]["properties"]["c"] == {"allOf": [{"$ref": "#/$defs/n"}]}
    for value in ({"c": {"c": {"v": 1}}}, {"c": {"c": {"v": "x"}}}, {"c": 1}):
        assert _both(recursive, value)[0] is _both(recursive, value)[1], value
    with pytest.raises(precompile.SchemaNotSupported, match="points at nothing"):
        precompile.fast_schema({"$ref": "#/$defs/missing"})
    data = load_file(ROOT / "tests" / "bad" / "150-container-sysctl-vm.yaml").data
    fastjsonschema.compile(json.loads(validate.schema_text()), use_default=False, use_formats=False)(copy.deepcopy(data))
    assert validate._precompiled_check()(data) is False and not validate._validator().is_valid(data)


def test_fast_schema_refuses_what_it_cannot_vouch_for():
    for schema, why in (({"$schema": "http://json-schema.org/draft-07/schema#"}, "only"),
                        ({"items": [{"type": "string"}]}, "items must be one schema"),
                        ({"properties": {"a": {"$id": "x"}}}, r"\$id below the root"),
                        ({"dependentRequired": {"a": ["b"]}}, "dependentRequired"),
                        ({"prefixItems": [{}]}, "prefixItems"),
                        ({"const": 1, "enum": [1]}, "const beside enum")):
        with pytest.raises(precompile.SchemaNotSupported, match=why):
            precompile.fast_schema(schema)
    assert precompile.fast_schema({"const": "a", "x-hint": "h"}) == {"enum": ["a"], "x-hint": "h"}


# ------------------------------------------------------------------ lite runtime
needs_lite = pytest.mark.skipif(templating._lite() is None and os.environ.get("CI") != "true",
                                reason="templates precompiled with another Jinja2")


def test_the_declared_jinja2_takes_the_lite_path():
    """pyproject's test extra pins the Jinja2 the templates were precompiled with; under CI
    that Jinja2 must take the lite path for every template (else the cold-start figures
    of docs/performance.md are not what users get)."""
    from netharden import _templates_compiled as compiled

    pyproject = (ROOT / "pyproject.toml").read_text()
    assert f'"jinja2=={compiled.JINJA2_VERSION}"' in pyproject, "pin the precompiled Jinja2 in the test extra"
    if templating._lite() is None:
        why = f"templates precompiled with Jinja2 {compiled.JINJA2_VERSION}, {templating.jinja2_version()} installed"
        if os.environ.get("CI") == "true":
            pytest.fail(why)
        pytest.skip(why)


def test_a_stale_template_module_is_not_used(monkeypatch):
    from netharden import _templates_compiled as compiled

    expected = templating.render("_header.j2", guards=("config",), why="w")
    source, factory = compiled.TEMPLATES["_header.j2"]
    monkeypatch.setitem(compiled.TEMPLATES, "_header.j2", (source + b"edited", factory))
    templating._lite.cache_clear()
    try:
        assert templating._lite() is None   # one stale template: every template takes jinja2
        assert templating.render("_header.j2", guards=("config",), why="w") == expected
    finally:
        monkeypatch.undo()
        templating._lite.cache_clear()
    assert templating._lite() is not None or templating.jinja2_version() != compiled.JINJA2_VERSION


def test_an_error_in_a_lite_render_is_raised_as_it_is(monkeypatch):
    import jinja2

    errors = (jinja2.UndefinedError, _jinja_lite.UndefinedError)
    with pytest.raises(errors, match="'why' is undefined"):
        templating.render("_header.j2", guards=())
    monkeypatch.setenv("NETHARDEN_PRECOMPILED", "0")
    clear_memos()
    with pytest.raises(jinja2.UndefinedError, match="'why' is undefined"):
        templating.render("_header.j2", guards=())
    monkeypatch.undo()
    clear_memos()


def test_a_template_with_blocks_is_not_lite():
    code = templating.environment().compile("{% block b %}x{% endblock %}", "t.j2", None, True, True)
    assert precompile._factory(code, "_t_x") is None


def test_the_lite_check_refuses_what_the_runtime_lacks():
    env = templating.environment()
    for text, why in (("{% for x in y %}{{ loop.index }}{% endfor %}", "LoopContext"),
                      ("{{ x | upper }}", "filter 'upper'"),
                      ("{% macro m() %}{% endmacro %}{{ m() }}", "Macro"),
                      ("{{ x is defined }}", "environment.tests"),
                      ("{{ x | map(attribute='name') | join(', ') }}", "passes attribute")):
        problems = precompile.lite_problems(env.compile(text, "t.j2", None, True, True))
        assert any(why in p for p in problems), (text, problems)
    assert precompile.lite_problems(env.compile("{{ x | map('sh') | join(' ') }}", "t.j2", None, True, True)) == []


# ------------------------------------------------------------------ lazy imports
def _imported(*args: str) -> set[str]:
    env = {k: v for k, v in os.environ.items() if k != "NETHARDEN_PRECOMPILED"}
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "netharden", *args], capture_output=True,
                          text=True, cwd=ROOT, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}


@pytest.mark.parametrize("args", [["--help"], ["schema"], ["validate", "examples/full-host.yaml"],
                                  ["render", "--help"]], ids=" ".join)
def test_commands_that_render_nothing_import_neither_jinja2_nor_jsonschema(args):
    found = _imported(*args)
    assert not {m for m in found if m.split(".")[0] in ("jinja2", "jsonschema")}


@needs_lite
def test_rendering_a_valid_profile_imports_neither_jinja2_nor_jsonschema(tmp_path):
    found = _imported("render", "examples/full-host.yaml", "--format", "tree", "--out", str(tmp_path / "out"))
    assert not {m for m in found if m.split(".")[0] in ("jinja2", "jsonschema")}
    assert {"netharden._jinja_lite", "netharden._templates_compiled", "netharden._profile_schema_check"} <= found
