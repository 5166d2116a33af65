import json

import jsonschema

from netharden.reference import markdown
from netharden.validate import schema_text
from helpers import ROOT

SCHEMA = json.loads(schema_text())


def walk(node, path="$"):
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            yield from walk(value, f"{path}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from walk(value, f"{path}/{i}")


def test_schema_is_valid_draft_2020_12_with_an_id():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema" and SCHEMA["$id"]


def test_every_object_with_properties_is_closed():
    for path, node in walk(SCHEMA):
        if "properties" in node and path.rsplit("/", 1)[-1] != "properties":
            # x-passthrough: typed known keys, every other key passed through (daemon.json settings)
            assert node.get("additionalProperties") is (True if node.get("x-passthrough") else False), path


def test_every_property_has_a_description():
    for path, node in walk(SCHEMA):
        if path.endswith("/properties"):
            for key, prop in node.items():
                assert prop.get("description"), f"{path}/{key}"


def test_readme_reference_matches_the_schema():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert markdown() in readme, "README.md profile reference is stale: run 'make docs'"


def test_cli_schema_prints_the_schema_file(capsys):
    from netharden.cli import main

    assert main(["schema"]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads((ROOT / "schemas" / "profile.schema.json").read_text())


def test_every_template_directory_ships_in_the_wheel():
    # pyproject maps templates/ into the package; a concern's directory missing there
    # would work in a checkout and fail in an installed wheel
    import tomllib

    from helpers import ROOT

    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    dirs = {p.name for p in (ROOT / "templates").iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert {f"netharden.templates.{d}" for d in dirs} <= set(cfg["packages"])
    assert {f"netharden.templates.{d}" for d in dirs} <= set(cfg["package-data"])


def test_every_python_package_ships_in_the_wheel():
    """A package missing from pyproject's list works in a checkout (and an editable install)
    and is absent from the wheel."""
    import tomllib

    from helpers import ROOT

    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "netharden").rglob("__init__.py")}
    assert found <= set(cfg["packages"]), sorted(found - set(cfg["packages"]))
