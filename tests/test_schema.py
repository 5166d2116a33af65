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
            assert node.get("additionalProperties") is False, path


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
