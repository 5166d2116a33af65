"""Build-time generators of the two precompiled artefacts that keep the CLI fast.

``python -m netharden.precompile --write`` (``make precompile``, also run by ``make docs``)
regenerates both; ``--check`` exits 1 when either is stale. tests/test_speed_paths.py
fails when they are out of date and proves that they change no byte of any output.

1. ``netharden/_profile_schema_check.py``: fastjsonschema's generated code
   (``compile_to_code``, no defaults written into the data, no format checks, undetailed
   exceptions) for schemas/profile.schema.json as ``fast_schema`` writes it. Importing
   jsonschema (with referencing, attrs, rpds) and building its validator cost more than
   everything else ``netharden render`` does; valid profiles, the common case, now never
   import it. The checker only decides valid or not (``validate._precompiled_check``):
   when it says "not valid", ``validate.py`` runs jsonschema as before, so every message,
   position and order of a bad profile still comes from jsonschema. Its "valid" must
   never be looser than jsonschema's (Draft 2020-12 with ``validate.validator_class``):
   ``fast_schema`` accepts only keywords whose fastjsonschema code was read and means the
   same (``_KEYWORDS``; another keyword, ``$schema`` or a remote ``$ref`` makes generation
   fail), writes the schema a ``$ref`` points at in its place, in an ``allOf`` beside the
   ``$ref``'s siblings (2020-12 applies them, fastjsonschema's draft-07 code drops them),
   and writes each ``pattern`` with ``validate.end_of_string``, the ``$`` rule
   jsonschema's pattern keyword uses too.
   ``enum``/``const``/``uniqueItems`` tell ``1`` from ``true`` in both. What remains is
   fastjsonschema's ``integer``, which 1500.0 satisfies: ``_precompiled_check`` takes
   its verdict only for data without an integral float (and of plain types), and asks
   jsonschema otherwise. The module holds the exact schema text it was generated from; at
   run time a difference (someone edited the schema and did not regenerate) makes
   validate.py ignore it and use jsonschema alone: correct, slower. (The exact text, not a
   digest: hashlib's OpenSSL start-up costs more than comparing the text.)

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

Both artefacts are committed, so a fresh checkout is fast without a build step
(fastjsonschema is a runtime dependency for the exception class the generated code
imports). Generation is deterministic (sorted keys, no timestamps), so regenerating an
unchanged source with the same Jinja2 and fastjsonschema rewrites identical bytes.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
SCHEMA_MODULE = _PACKAGE / "_profile_schema_check.py"
TEMPLATES_MODULE = _PACKAGE / "_templates_compiled.py"

# Keywords that assert nothing (annotations), ignored by fastjsonschema as by jsonschema.
# "format" is here because validate._validator() has no format checker (use_formats=False).
_ANNOTATIONS = {
    "description",
    "title",
    "$comment",
    "examples",
    "default",
    "deprecated",
    "readOnly",
    "writeOnly",
    "format",
    "$schema",
    "$id",
    "$defs",
}
# The keywords whose fastjsonschema code (generator of draft 2019-09, the one it picks for
# a 2020-12 $schema) was read and found to mean what jsonschema's Draft 2020-12 means,
# given what fast_schema and validate.plain_without_integral_floats do (see the module
# docstring). Anything else makes generation fail: fastjsonschema ignores keywords it
# does not know (prefixItems, unevaluatedProperties, dependentRequired ...), which would
# loosen the fast verdict silently.
_KEYWORDS = {
    "type",
    "$ref",
    "properties",
    "additionalProperties",
    "required",
    "propertyNames",
    "minProperties",
    "maxProperties",
    "items",
    "minItems",
    "maxItems",
    "uniqueItems",
    "enum",
    "const",
    "pattern",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "allOf",
    "anyOf",
    "oneOf",
    "not",
    "if",
    "then",
    "else",
}
_ONE_SCHEMA = {"items", "additionalProperties", "propertyNames", "not", "if", "then", "else"}
_SCHEMA_LISTS = {"allOf", "anyOf", "oneOf"}
_SCHEMA_MAPS = {"properties", "$defs"}
_DRAFT = "https://json-schema.org/draft/2020-12/schema"
# no defaults written into the data, no format assertions, exceptions without the schema
# and value in them (a verdict is all that is read; detailed exceptions copy the whole
# subschema into the code of every raise)
_FAST_OPTIONS = {"use_default": False, "use_formats": False, "detailed_exceptions": False}


class SchemaNotSupported(ValueError):
    """The schema uses something the fastjsonschema checker is not known to read as jsonschema does."""


def fast_schema(schema: dict) -> dict:
    """``schema`` (Draft 2020-12) written so that fastjsonschema reads it as jsonschema does.

    - ``$ref``: the schema it points at is written in its place (unless it contains the
      reference), as ``allOf: [{that schema}, {siblings}]``: in 2020-12 the sibling
      assertions of a ``$ref`` apply too, fastjsonschema (draft-07 rules) ignores them.
    - ``pattern``: ``validate.end_of_string`` (the rewrite fastjsonschema makes itself,
      done here so that both validators visibly use one function).
    - ``const: v`` becomes ``enum: [v]``: fastjsonschema generates the same test for both,
      and 2.22 fails to generate const without detailed exceptions (``_FAST_OPTIONS``).
    - Refused (``SchemaNotSupported``): a keyword outside ``_KEYWORDS`` (``x-`` extensions
      and annotations aside), another ``$schema``, a ``$ref`` that is not local or points
      at nothing, ``$id`` below the root, ``items`` as a list.
    """
    from .validate import end_of_string

    if isinstance(schema, dict) and schema.get("$schema", _DRAFT) != _DRAFT:
        raise SchemaNotSupported(f"$schema {schema['$schema']!r}: only {_DRAFT} is supported")

    def target(ref: str, where: str):
        node = schema
        for part in ref[2:].split("/") if ref != "#" else ():
            part = part.replace("~1", "/").replace("~0", "~")
            try:
                node = node[int(part) if isinstance(node, list) else part]
            except (KeyError, IndexError, ValueError, TypeError):
                raise SchemaNotSupported(f"{where}: {ref!r} points at nothing") from None
        return node

    def walk(node, path: str, inside: tuple = ()):
        if isinstance(node, bool):
            return node
        if not isinstance(node, dict):
            raise SchemaNotSupported(f"{path or '/'}: a schema must be an object or a boolean")
        out = {}
        for key, value in node.items():
            where = f"{path}/{key}"
            if key.startswith("x-") or (key in _ANNOTATIONS and key not in _SCHEMA_MAPS):
                if key == "$id" and path:
                    raise SchemaNotSupported(f"{where}: $id below the root changes reference resolution")
                out[key] = value
            elif key not in _KEYWORDS and key not in _SCHEMA_MAPS:
                raise SchemaNotSupported(
                    f"{path or '/'}: keyword {key!r} is not known to mean the same in fastjsonschema"
                )
            elif key in _SCHEMA_MAPS:
                out[key] = {k: walk(v, f"{where}/{k}", inside) for k, v in value.items()}
            elif key in _SCHEMA_LISTS:
                out[key] = [walk(v, f"{where}/{i}", inside) for i, v in enumerate(value)]
            elif key in _ONE_SCHEMA:
                if key == "items" and not isinstance(value, (dict, bool)):
                    raise SchemaNotSupported(f"{where}: items must be one schema (a list is the older tuple form)")
                out[key] = walk(value, where, inside)
            elif key == "pattern":
                out[key] = end_of_string(value)
            elif key == "const":  # the same test in fastjsonschema, whose const cannot raise undetailed
                if "enum" in node:
                    raise SchemaNotSupported(f"{where}: const beside enum")
                out["enum"] = [value]
            elif key == "$ref":
                if not isinstance(value, str) or not (value == "#" or value.startswith("#/")):
                    raise SchemaNotSupported(f"{where}: only local references are supported, not {value!r}")
                out[key] = value
            else:
                out[key] = value
        if "$ref" not in out:
            return out
        ref = out["$ref"]
        siblings = {k: v for k, v in out.items() if k in _KEYWORDS and k != "$ref"}
        rest = {k: v for k, v in out.items() if k not in siblings and k != "$ref"}
        # inlined (a reference to a schema that contains it stays a $ref): fastjsonschema's
        # call of a referenced function builds its error path with str.format(**locals())
        # even when no error is raised, which cost more than all the checks
        referred = {"$ref": ref} if ref in inside else walk(target(ref, path), ref[1:], inside + (ref,))
        return {**rest, "allOf": [referred, siblings] if siblings else [referred]}

    return walk(schema, "")


def fast_validator(schema: dict):
    """``fastjsonschema.compile`` of ``fast_schema(schema)``: raises on invalid data."""
    import fastjsonschema

    return fastjsonschema.compile(fast_schema(schema), **_FAST_OPTIONS)


def schema_checker_source(schema_text: str) -> str:
    """The text of netharden/_profile_schema_check.py for ``schema_text``."""
    import fastjsonschema

    prepared = fast_schema(json.loads(schema_text))
    code = fastjsonschema.compile_to_code(prepared, **_FAST_OPTIONS)
    entry = fastjsonschema.compile(prepared, **_FAST_OPTIONS).__name__
    if f"\ndef {entry}(data, " not in code:  # pragma: no cover - a fastjsonschema that names things otherwise
        raise SchemaNotSupported(f"fastjsonschema's code has no function {entry}")
    for line, local in _LOCAL_IMPORTS.items():  # what its imports give, without importing them
        if f"\n{line}\n" not in code:  # pragma: no cover - a fastjsonschema that writes its imports otherwise
            raise SchemaNotSupported(f"fastjsonschema's code has no line {line!r}")
        code = code.replace(f"\n{line}\n", f"\n{local}\n", 1)
    head = (
        '"""Generated by `python -m netharden.precompile --write` from schemas/profile.schema.json: do not edit.\n\n'
        "fastjsonschema's code (``compile_to_code``) for the schema as ``precompile.fast_schema`` writes it.\n"
        "``validate(data)`` raises JsonSchemaValueException when the data are not valid; validate.py's\n"
        "``_precompiled_check`` calls it behind its guard (netharden/precompile.py says how and why).\n"
        '"""\n'
    )
    return head + f"SCHEMA = {schema_text!r}\n\n" + code.rstrip("\n") + f"\n\n\nvalidate = {entry}\n"


# The generated code's imports, and what replaces them: its exception class defined in
# the module (a render then imports no fastjsonschema), and a Decimal no data is an
# instance of (the readers make dict, list, str, int, float, bool and None only; the
# guard in validate._precompiled_check sends anything else to jsonschema).
_LOCAL_IMPORTS = {
    "from decimal import Decimal": "class Decimal:  # no data is a Decimal (precompile._LOCAL_IMPORTS)\n    pass",
    "from fastjsonschema import JsonSchemaValueException, JsonSchemaValuesException": "class JsonSchemaValueException(ValueError):  # fastjsonschema's, as raised without details\n    pass\n\n\n"
    "JsonSchemaValuesException = JsonSchemaValueException",
}


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
        if (
            isinstance(node, ast.Subscript)
            and isinstance(node.value, ast.Attribute)
            and isinstance(node.value.value, ast.Name)
            and node.value.value.id == "environment"
            and node.value.attr == "filters"
        ):
            key = node.slice
            if not (isinstance(key, ast.Constant) and key.value in filters):
                problems.append(f"uses the filter {ast.unparse(key)}")
        if isinstance(node, ast.Call) and any(k.arg in ("attribute", "default") for k in node.keywords):
            problems.append(f"passes {', '.join(str(k.arg) for k in node.keywords)} to a filter")
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node is not first:
            if node.id in imported and node.id not in lite.RUNTIME_NAMES:
                problems.append(f"uses {node.id}")
            if (
                node.id in ("environment", "template")
                and isinstance(node.ctx, ast.Load)
                and id(node) not in attribute_values
            ):
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
    if shape != ["ImportFrom", "Assign", "FunctionDef", "Assign", "Assign"]:
        return None
    function, blocks = body[2], body[3]
    assert isinstance(function, ast.FunctionDef) and isinstance(blocks, ast.Assign)
    if function.name != "root" or not (isinstance(blocks.value, ast.Dict) and not blocks.value.keys):
        return None  # blocks = {}: no {% block %}
    root = ast.get_source_segment(code, function) or ""
    nested = (
        f"def {fname}(environment):\n"
        + "".join(f"    {line}\n" if line else "\n" for line in root.split("\n"))
        + "    return root\n"
    )
    factory = ast.parse(nested).body[0]
    assert isinstance(factory, ast.FunctionDef)
    if ast.dump(factory.body[0]) != ast.dump(function):  # e.g. a multi-line string literal would have changed
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
    return (
        '"""Generated by `python -m netharden.precompile --write`: do not edit.\n\n'
        "Jinja2's compiled code of every template under templates/ (``Environment.compile(raw=True,\n"
        "defer_init=True)``, what ``compile_templates`` writes for ``ModuleLoader``), each ``root``\n"
        "wrapped in a function of the environment, run by netharden/_jinja_lite.py.\n"
        '"""\n'
        f"from netharden._jinja_lite import {', '.join(names)}\n\n"
        f"JINJA2_VERSION = {jinja2_version()!r}\n"
        f"OPTIONS = {dict(sorted(COMPILE_OPTIONS.items()))!r}\n"
        + "".join(functions)
        + "\n\n# template name -> (the bytes of its source file, factory of its root function or None)\n"
        + "TEMPLATES = {\n"
        + "".join(entries)
        + "}\n"
    )


def expected() -> dict[Path, str]:
    """Every generated file and the text it must have."""
    from .resources import read_text

    return {
        SCHEMA_MODULE: schema_checker_source(read_text("schemas", "profile.schema.json")),
        TEMPLATES_MODULE: templates_module_source(),
    }


def stale() -> list[str]:
    """Generated files that differ from what the sources give (or are missing)."""
    return [
        str(p.relative_to(_PACKAGE.parent))
        for p, text in sorted(expected().items())
        if not p.is_file() or p.read_text(encoding="utf-8") != text
    ]


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
