"""The profile reference in README.md, generated from schemas/profile.schema.json.

``python -m netharden.reference --write README.md`` rewrites the block between the
markers; a test fails when README.md and the schema disagree.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .resources import read_text

BEGIN = "<!-- BEGIN PROFILE REFERENCE (generated from schemas/profile.schema.json: make docs) -->"
END = "<!-- END PROFILE REFERENCE -->"


def _resolve(schema: dict, node: dict) -> dict:
    while "$ref" in node:
        ref = node["$ref"].split("/")[-1]
        merged = {**schema["$defs"][ref], **{k: v for k, v in node.items() if k != "$ref"}}
        node = merged
    return node


def _type(schema: dict, node: dict) -> str:
    if "enum" in node:
        return " \\| ".join(f"`{'false' if v is False else 'true' if v is True else v}`" for v in node["enum"])
    if "const" in node:
        return f"`{node['const']}`"
    t = node.get("type", "")
    inner = _resolve(schema, node["items"]) if isinstance(node.get("items"), dict) else {}
    what = (
        _type(schema, inner)
        if "enum" in inner
        else (inner.get("title") or ("mappings" if inner.get("type") == "object" else inner.get("type", "")))
    )
    if t == ["string", "array"]:
        return f"{what} or list of them"
    if isinstance(t, list):
        return " or ".join(t)
    if t == "array":
        return f"list of {what}"
    title = node.get("title")
    return title if t == "string" and title and title not in ("name", "description") else (t or "any")


def _rows(schema: dict, node: dict, prefix: str, required: set, out: list) -> None:
    for key, child in node.get("properties", {}).items():
        child = _resolve(schema, child)
        path = f"{prefix}.{key}" if prefix else key
        req = " (required)" if key in required else ""
        desc = child.get("description", "").replace("|", "\\|")
        out.append(f"| `{path}`{req} | {_type(schema, child)} | {desc} |")
        if child.get("type") == "object" and "properties" in child:
            _rows(schema, child, path, set(child.get("required", [])), out)
        items = child.get("items")
        if isinstance(items, dict) and items.get("type") == "object":
            _rows(schema, items, f"{path}[]", set(items.get("required", [])), out)
        extra = child.get("additionalProperties")
        if isinstance(extra, dict) and extra.get("type") == "object":
            _rows(schema, extra, f"{path}.NAME", set(extra.get("required", [])), out)


def markdown() -> str:
    schema = json.loads(read_text("schemas", "profile.schema.json"))
    rows = ["| key | type | description |", "|---|---|---|"]
    _rows(schema, schema, "", set(schema.get("required", [])), rows)
    return "\n".join([BEGIN, *rows, END])


def splice(text: str) -> str:
    start, end = text.index(BEGIN), text.index(END) + len(END)
    return text[:start] + markdown() + text[end:]


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--write":
        target = Path(sys.argv[2])
        target.write_text(splice(target.read_text(encoding="utf-8")), encoding="utf-8")
    else:
        print(markdown())
