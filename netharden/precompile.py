"""Build-time generators of the two precompiled artefacts that keep the CLI fast.

``python -m netharden.precompile --write`` (``make precompile``, also run by ``make docs``)
regenerates both; ``--check`` exits 1 when either is stale. tests/test_speed_paths.py
fails when they are out of date and proves that they change no byte of any output.

1. ``netharden/_profile_schema_check.py``: ``is_valid(data) -> bool`` for
   schemas/profile.schema.json, plain Python generated from the schema. Importing
   jsonschema (with referencing, attrs, rpds) and building its validator cost more than
   everything else ``netharden render`` does; valid profiles, the common case, now never
   import it. The checker only decides valid or not: when it says "not valid",
   ``validate.py`` runs jsonschema as before, so every message, position and order of a
   bad profile still comes from jsonschema. The checker implements exactly the keywords
   the schema uses, with jsonschema's semantics (type checks as ``validate._validator``
   defines them: an integral float is not an ``integer``; ``enum``/``const``/
   ``uniqueItems`` with jsonschema's ``equal``, where ``1`` and ``true`` differ; ``pattern``
   with ``re.search`` of ``validate.end_of_string``; ``if``/``then``; local ``$ref``). A
   keyword it does not know makes generation fail, so a schema change cannot silently
   loosen it. It holds the exact
   schema text it was generated from; at run time a difference (someone edited the schema
   and did not regenerate) makes validate.py ignore it and use jsonschema alone: correct,
   slower. (The exact text, not a digest: hashlib's OpenSSL start-up alone costs ~3 ms.)

2. ``netharden/_templates_compiled.py``: every template under templates/, compiled by
   Jinja2 itself (``Environment.compile(source, raw=True, defer_init=True)``, the code
   ``compile_templates`` writes for ``jinja2.ModuleLoader``), each ``root`` function
   wrapped in a factory of the environment so that all templates live in one module (one
   import instead of ~23), run by ``netharden/_jinja_lite.py`` without importing jinja2.
   The module records the Jinja2 version, the options that change generated code, and
   each template's exact source bytes. ``templating.py`` uses a template's code only when
   all three match and ``lite_problems`` found nothing the lite runtime lacks; otherwise
   jinja2 compiles it from source (again: correct, slower). Importing jinja2 and parsing
   and compiling the templates took about a third of a cold render.

Both artefacts are committed: runtime dependencies stay jinja2, pyyaml and jsonschema,
and a fresh checkout is fast without a build step. Generation is deterministic (sorted
keys, no timestamps), so regenerating an unchanged source rewrites identical bytes.
"""
from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
SCHEMA_MODULE = _PACKAGE / "_profile_schema_check.py"
TEMPLATES_MODULE = _PACKAGE / "_templates_compiled.py"

# Keywords that assert nothing (annotations): ignored by the generated checker, as by
# jsonschema. "format" is here because validate._validator() has no format checker.
_ANNOTATIONS = {"description", "title", "$comment", "examples", "default", "deprecated", "readOnly", "writeOnly",
                "format", "$schema", "$id", "$defs", "then", "else"}
_ASSERTIONS = {"type", "$ref", "properties", "additionalProperties", "required", "propertyNames", "minProperties",
               "maxProperties", "items", "minItems", "maxItems", "uniqueItems", "enum", "const", "pattern",
               "minLength", "maxLength", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "allOf",
               "anyOf", "oneOf", "not", "if"}
_TYPE_TESTS = {
    "object": "isinstance(x, dict)",
    "array": "isinstance(x, list)",
    "string": "isinstance(x, str)",
    "integer": "(isinstance(x, int) and not isinstance(x, bool))",  # validate._validator's integer
    "number": "(isinstance(x, (int, float)) and not isinstance(x, bool))",
    "boolean": "isinstance(x, bool)",
    "null": "x is None",
}
_GUARD = {"object": _TYPE_TESTS["object"], "array": _TYPE_TESTS["array"], "string": _TYPE_TESTS["string"],
          "number": _TYPE_TESTS["number"]}

_PRELUDE = '''
import re as _re

_search = _re.search  # re caches compiled patterns; only the patterns a profile reaches get compiled


def _unbool(v):
    return ("bool", v) if isinstance(v, bool) else v


def _equal(a, b):
    """jsonschema._utils.equal: 1 and true differ, 1 and 1.0 do not."""
    if a is b:
        return True
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_equal(i, j) for i, j in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return len(a) == len(b) and all(k in b and _equal(v, b[k]) for k, v in a.items())
    return _unbool(a) == _unbool(b)


def _unique(items):
    """jsonschema's uniqueItems: no two items equal under _equal."""
    if all(isinstance(i, str) for i in items):
        return len(set(items)) == len(items)
    for n, a in enumerate(items):
        for b in items[n + 1:]:
            if _equal(a, b):
                return False
    return True
'''


class SchemaNotSupported(ValueError):
    """The schema uses something the generated checker does not implement."""


class _SchemaCompiler:
    def __init__(self, schema: dict):
        self.schema = schema
        self.defs = schema.get("$defs", {})
        self.functions: list[str] = []
        self.names: dict[str, str] = {}  # "#/$defs/x" or node path -> function name
        self.counter = 0
        self.constants: dict[str, str] = {}  # literal -> module-level name (built once, at import)

    def const(self, value) -> str:
        if isinstance(value, frozenset):
            literal = f"frozenset({tuple(sorted(value))!r})"  # sorted: the text must not depend on hash order
        else:
            literal = repr(value)
        if literal not in self.constants:
            self.constants[literal] = f"_C{len(self.constants) + 1}"
        return self.constants[literal]

    def ref(self, ref: str) -> str:
        prefix = "#/$defs/"
        if not ref.startswith(prefix) or ref[len(prefix):] not in self.defs:
            raise SchemaNotSupported(f"only local #/$defs/ references are supported, not {ref!r}")
        if ref not in self.names:
            name = "_def_" + "".join(c if c.isalnum() else "_" for c in ref[len(prefix):])
            self.names[ref] = name
            self.function(self.defs[ref[len(prefix):]], f"$defs/{ref[len(prefix):]}", name)
        return self.names[ref]

    def node(self, node, path: str) -> str:
        """Name of the function that checks ``node`` (emitted on first use)."""
        if node is True:
            return "_true"
        if node is False:
            return "_false"
        self.counter += 1
        return self.function(node, path, f"_s{self.counter}")

    def function(self, node, path: str, name: str) -> str:
        from .validate import end_of_string

        if not isinstance(node, dict):
            raise SchemaNotSupported(f"{path}: a schema must be an object or a boolean")
        for key in node:
            if key not in _ASSERTIONS and key not in _ANNOTATIONS and not key.startswith("x-"):
                raise SchemaNotSupported(f"{path}: keyword {key!r} is not implemented by the generated checker")
        if "$id" in node and path:
            raise SchemaNotSupported(f"{path}: $id below the root changes reference resolution")
        slot = len(self.functions)
        self.functions.append("")  # reserve the place: definitions come out in a stable order
        lines = [f"def {name}(x):  # {path or '/'}"]
        body: list[str] = []
        add = body.append
        typed = None  # the instance's type once the "type" keyword has returned on anything else
        if "type" in node:
            types = node["type"] if isinstance(node["type"], list) else [node["type"]]
            add(f"if not ({' or '.join(_TYPE_TESTS[t] for t in types)}):\n    return False")
            if len(types) == 1:
                typed = "number" if types[0] == "integer" else types[0]
        if "enum" in node:
            values = node["enum"]
            if all(isinstance(v, str) for v in values):
                add(f"if not (isinstance(x, str) and x in {self.const(frozenset(values))}):\n    return False")
            else:
                add(f"if not any(_equal(x, v) for v in {self.const(tuple(values))}):\n    return False")
        if "const" in node:
            add(f"if not _equal(x, {node['const']!r}):\n    return False")
        if "$ref" in node:
            add(f"if not {self.ref(node['$ref'])}(x):\n    return False")
        for key in ("allOf",):
            for i, sub in enumerate(node.get(key, ())):
                add(f"if not {self.node(sub, f'{path}/{key}/{i}')}(x):\n    return False")
        if "anyOf" in node:
            subs = [self.node(sub, f"{path}/anyOf/{i}") for i, sub in enumerate(node["anyOf"])]
            add(f"if not ({' or '.join(f'{s}(x)' for s in subs)}):\n    return False")
        if "oneOf" in node:
            subs = [self.node(sub, f"{path}/oneOf/{i}") for i, sub in enumerate(node["oneOf"])]
            add(f"if sum(1 for f in ({', '.join(subs)},) if f(x)) != 1:\n    return False")
        if "not" in node:
            add(f"if {self.node(node['not'], f'{path}/not')}(x):\n    return False")
        if "if" in node:
            test = self.node(node["if"], f"{path}/if")
            then = self.node(node["then"], f"{path}/then") if "then" in node else None
            other = self.node(node["else"], f"{path}/else") if "else" in node else None
            if then and other:
                add(f"if {test}(x):\n    if not {then}(x):\n        return False\nelif not {other}(x):\n    return False")
            elif then:
                add(f"if {test}(x) and not {then}(x):\n    return False")
            elif other:
                add(f"if not {test}(x) and not {other}(x):\n    return False")
        # string keywords
        string = []
        if "pattern" in node:
            string.append(f"if not _search({end_of_string(node['pattern'])!r}, x):\n    return False")
        if "minLength" in node:
            string.append(f"if len(x) < {node['minLength']!r}:\n    return False")
        if "maxLength" in node:
            string.append(f"if len(x) > {node['maxLength']!r}:\n    return False")
        self.guarded(body, "string", string, typed)
        # number keywords
        number = []
        for key, op in (("minimum", "<"), ("maximum", ">"), ("exclusiveMinimum", "<="), ("exclusiveMaximum", ">=")):
            if key in node:
                number.append(f"if x {op} {node[key]!r}:\n    return False")
        self.guarded(body, "number", number, typed)
        # array keywords
        array = []
        if "minItems" in node:
            array.append(f"if len(x) < {node['minItems']!r}:\n    return False")
        if "maxItems" in node:
            array.append(f"if len(x) > {node['maxItems']!r}:\n    return False")
        if node.get("uniqueItems") is True:
            array.append("if not _unique(x):\n    return False")
        if "items" in node:
            items = self.node(node["items"], f"{path}/items")
            array.append(f"for v in x:\n    if not {items}(v):\n        return False")
        self.guarded(body, "array", array, typed)
        # object keywords
        obj = []
        if "required" in node:
            obj.append(f"for k in {self.const(tuple(node['required']))}:\n    if k not in x:\n        return False")
        if "minProperties" in node:
            obj.append(f"if len(x) < {node['minProperties']!r}:\n    return False")
        if "maxProperties" in node:
            obj.append(f"if len(x) > {node['maxProperties']!r}:\n    return False")
        props = node.get("properties", {})
        for key in sorted(props):
            check = self.node(props[key], f"{path}/properties/{key}")
            if check != "_true":
                obj.append(f"if {key!r} in x and not {check}(x[{key!r}]):\n    return False")
        if "additionalProperties" in node:
            extra = node["additionalProperties"]
            known = self.const(frozenset(props))
            if extra is False:
                obj.append(f"for k in x:\n    if k not in {known}:\n        return False")
            elif extra is not True:
                check = self.node(extra, f"{path}/additionalProperties")
                obj.append(f"for k, v in x.items():\n    if k not in {known} and not {check}(v):\n        return False")
        if "propertyNames" in node:
            check = self.node(node["propertyNames"], f"{path}/propertyNames")
            obj.append(f"for k in x:\n    if not {check}(k):\n        return False")
        self.guarded(body, "object", obj, typed)
        body.append("return True")
        for stmt in body:
            lines += ["    " + line for line in stmt.splitlines()]
        self.functions[slot] = "\n".join(lines)
        return name

    @staticmethod
    def guarded(body: list[str], kind: str, stmts: list[str], typed: str | None) -> None:
        """Keywords of one instance type apply only to instances of that type (as in jsonschema)."""
        if stmts and kind == typed:  # "type" already returned False on anything else
            body.extend(stmts)
        elif stmts:
            inner = "\n".join("    " + line for stmt in stmts for line in stmt.splitlines())
            body.append(f"if {_GUARD[kind]}:\n{inner}")


def schema_checker_source(schema_text: str) -> str:
    """The text of netharden/_profile_schema_check.py for ``schema_text``."""
    schema = json.loads(schema_text)
    compiler = _SchemaCompiler(schema)
    root = compiler.node(schema, "")
    head = ('"""Generated by `python -m netharden.precompile --write` from schemas/profile.schema.json: do not edit.\n\n'
            "``is_valid(data)`` is True exactly when jsonschema (Draft 2020-12, with validate._validator()'s\n"
            "integer type) finds no error; netharden/precompile.py says how and why.\n"
            '"""\n')
    parts = [head, f"SCHEMA = {schema_text!r}\n", _PRELUDE, "\ndef _true(x):\n    return True\n",
             "\ndef _false(x):\n    return False\n"]
    parts.append("\n" + "".join(f"{name} = {literal}\n" for literal, name in compiler.constants.items()))
    parts += ["\n\n" + fn + "\n" for fn in compiler.functions]
    parts.append(f"\n\nis_valid = {root}\n")
    return "".join(parts)


def lite_problems(code: str) -> list[str]:
    """Why the compiled ``code`` of a template cannot run on ``_jinja_lite`` (empty: it can)."""
    import ast

    from . import _jinja_lite as lite
    from .templating import FILTERS

    tree = ast.parse(code)
    first = tree.body[0] if tree.body else None
    if not (isinstance(first, ast.ImportFrom) and first.module == "jinja2.runtime"):
        return ["the module does not start with 'from jinja2.runtime import ...'"]
    imported = {a.asname or a.name for a in first.names}
    problems = [f"imports {n} from jinja2.runtime" for n in sorted(imported) if not hasattr(lite, n)]
    allowed = {"environment": lite.ENVIRONMENT_ATTRS, "context": lite.CONTEXT_ATTRS, "template": lite.TEMPLATE_ATTRS}
    filters = set(FILTERS) | lite.BUILTIN_FILTERS
    attribute_values = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in allowed:
            attribute_values.add(id(node.value))
            if node.attr not in allowed[node.value.id]:
                problems.append(f"uses {node.value.id}.{node.attr}")
        if (isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute)
                and isinstance(node.value.value, ast.Name) and node.value.value.id == "environment"
                and node.value.attr == "filters"):
            key = node.slice
            if not (isinstance(key, ast.Constant) and key.value in filters):
                problems.append(f"uses the filter {ast.unparse(key)}")
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node is not first:
            if node.id in imported and node.id not in lite.RUNTIME_NAMES:
                problems.append(f"uses {node.id}")
            if node.id in ("environment", "template") and isinstance(node.ctx, ast.Load) and id(node) not in attribute_values:
                problems.append(f"uses {node.id} other than through a known attribute")
    return sorted(set(problems))


def template_sources() -> dict[str, bytes]:
    """{template name: raw bytes} of every template under templates/."""
    from .resources import root

    base = root("templates")
    return {p.relative_to(base).as_posix(): p.read_bytes() for p in sorted(base.rglob("*.j2"))}


def _factory(code: str, fname: str) -> str | None:
    """``code``'s ``root`` function as ``def fname(environment): ... return root`` (the
    environment a closure, not a module global), or None when the module has another layout
    than name/root/blocks={}/debug_info or re-indenting would change the function."""
    import ast

    tree = ast.parse(code)
    body = tree.body
    shape = [type(n).__name__ for n in body]
    if shape != ["ImportFrom", "Assign", "FunctionDef", "Assign", "Assign"] or body[2].name != "root":
        return None
    if not (isinstance(body[3].value, ast.Dict) and not body[3].value.keys):  # blocks = {}: no {% block %}
        return None
    root = ast.get_source_segment(code, body[2])
    nested = f"def {fname}(environment):\n" + "".join(f"    {line}\n" if line else "\n" for line in root.split("\n")) \
        + "    return root\n"
    inner = ast.parse(nested).body[0].body[0]
    if ast.dump(inner) != ast.dump(body[2]):  # e.g. a multi-line string literal would have changed
        return None
    return nested


def templates_module_source() -> str:
    """The text of netharden/_templates_compiled.py for the current templates and Jinja2."""
    from . import _jinja_lite
    from .templating import COMPILE_OPTIONS, environment, jinja2_version

    env = environment()
    entries, functions = [], []
    for name, raw in template_sources().items():
        source, filename, _ = env.loader.get_source(env, name)
        # the call Environment.compile_templates makes for ModuleLoader modules (raw, defer_init)
        code = env.compile(source, name, filename, True, True)
        fname = "_t_" + hashlib.sha1(name.encode("utf-8")).hexdigest()[:12]
        why_not = lite_problems(code)
        nested = None if why_not else _factory(code, fname)
        if nested is None and not why_not:
            why_not = ["the compiled module has an unexpected layout"]
        if why_not:
            entries.append(f"    {name!r}: ({raw!r}, None),  # not lite: {'; '.join(why_not)}\n")
        else:
            entries.append(f"    {name!r}: ({raw!r}, {fname}),\n")
            functions.append(f"\n\n# {name}\n{nested}")
    names = sorted(_jinja_lite.RUNTIME_NAMES)
    return ('"""Generated by `python -m netharden.precompile --write`: do not edit.\n\n'
            "Jinja2's compiled code of every template under templates/ (``Environment.compile(raw=True,\n"
            "defer_init=True)``, what ``compile_templates`` writes for ``ModuleLoader``), each ``root``\n"
            "wrapped in a function of the environment, run by netharden/_jinja_lite.py.\n"
            '"""\n'
            f"from netharden._jinja_lite import {', '.join(names)}\n\n"
            f"JINJA2_VERSION = {jinja2_version()!r}\n"
            f"OPTIONS = {dict(sorted(COMPILE_OPTIONS.items()))!r}\n"
            + "".join(functions)
            + "\n\n# template name -> (the bytes of its source file, factory of its root function or None)\n"
            + "TEMPLATES = {\n" + "".join(entries) + "}\n")


def expected() -> dict[Path, str]:
    """Every generated file and the text it must have."""
    from .resources import read_text

    return {SCHEMA_MODULE: schema_checker_source(read_text("schemas", "profile.schema.json")),
            TEMPLATES_MODULE: templates_module_source()}


def stale() -> list[str]:
    """Generated files that differ from what the sources give (or are missing)."""
    return [str(p.relative_to(_PACKAGE.parent)) for p, text in sorted(expected().items())
            if not p.is_file() or p.read_text(encoding="utf-8") != text]


def write() -> list[str]:
    """Regenerate everything; returns the files that changed."""
    changed = []
    for path, text in expected().items():
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            changed.append(str(path.relative_to(_PACKAGE.parent)))
    return changed


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args == ["--check"]:
        bad = stale()
        for name in bad:
            print(f"stale: {name}", file=sys.stderr)
        if bad:
            print("run 'make precompile' (python -m netharden.precompile --write)", file=sys.stderr)
        return 1 if bad else 0
    if args == ["--write"]:
        for name in write():
            print(f"regenerated {name}")
        return 0
    print("usage: python -m netharden.precompile --write | --check", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
