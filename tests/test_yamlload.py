import pytest

from netharden.problems import ProfileError
from netharden.yamlload import MAX_NODES, load_text


def problems(text: str) -> list:
    with pytest.raises(ProfileError) as err:
        load_text(text, "p.yaml")
    return err.value.problems


def test_yaml_1_2_core_schema_keeps_words_as_strings():
    doc = load_text("a: yes\nb: off\nc: on\nd: no\ne: 2024-01-01\nf: true\ng: 0o17\nh: 017\ni: ~\n")
    assert doc.data == {"a": "yes", "b": "off", "c": "on", "d": "no", "e": "2024-01-01",
                        "f": True, "g": 15, "h": 17, "i": None}


def test_positions_of_values_and_keys_are_one_based():
    doc = load_text("top:\n  list:\n    - x\n    - {k: v}\n")
    assert doc.positions[("top", "list", 0)] == (3, 7)
    assert doc.positions[("top", "list", 1, "k")] == (4, 11)
    assert doc.key_positions[("top", "list")] == (2, 3)
    # a missing path falls back to its nearest ancestor
    assert doc.position(("top", "list", 1, "missing")) == (4, 7)


def test_duplicate_key_names_both_lines():
    (p,) = problems("a: 1\nb: 2\na: 3\n")
    assert (p.line, p.column, p.path) == (3, 1, ("a",))
    assert "first defined at line 1" in p.message


def test_every_duplicate_is_reported_at_once():
    assert len(problems("a: 1\na: 2\nb: {c: 1, c: 2}\n")) == 2


@pytest.mark.parametrize("text, needle", [
    ("- a\n", "is a list"),
    ("just a string\n", "is a string, expected a mapping"),
    ("", "empty"),
    ("a: 1\n---\nb: 2\n", "more than one YAML document"),
    ("a: [1\n", "YAML syntax error"),
    ("a:\n\tb: 1\n", "YAML syntax error"),
    ("a: !!binary aGk=\n", "unsupported YAML tag"),
    ("a: !!python/object:os.system {}\n", "unsupported YAML tag"),
    ("a: &x [*x]\n", "recursive YAML alias"),
    ("? [a, b]\n: 1\n", "mapping keys must be plain strings"),
])
def test_bad_documents(text, needle):
    found = problems(text)
    assert any(needle in p.message for p in found), [p.format() for p in found]
    assert all(p.line >= 1 and p.column >= 1 for p in found)


def test_alias_bomb_is_bounded_and_fast():
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x","x"]']
    for i in range(1, 9):
        prev = chr(ord("a") + i - 1)
        cur = chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 10) + "]")
    (p,) = problems("\n".join(lines) + "\n")
    assert f"more than {MAX_NODES} nodes" in p.message
    assert "alias" in p.hint


def test_size_limit():
    (p,) = problems("a: " + "x" * (1024 * 1024) + "\n")
    assert "over the limit" in p.message


def test_invalid_utf8_reports_its_line():
    with pytest.raises(ProfileError) as err:
        load_text(b"a: 1\nb: \xff\n", "p.yaml")
    (p,) = err.value.problems
    assert (p.line, p.column) == (2, 4)


def test_scalar_tags_are_the_resolvers():
    """yamlload._scalar_tag is BaseResolver.resolve of the core-schema resolver, for plain and
    quoted scalars of every first character the resolvers know, and others."""
    import yaml

    from netharden import yamlload

    resolver = yamlload._Core12Resolver()
    words = ["", "~", "null", "Null", "NULL", "nul", "true", "True", "TRUE", "tRue", "false", "no", "yes", "on",
             "0", "-1", "+2", "0o17", "0x1F", "017", "1.5", ".5", "-.inf", ".NaN", "1e3", "1_000", "10.0.0.1/24",
             "node-0001", "a", "ü", ".", "-", "+", "0o", "0x"]
    for word in words:
        for implicit in ((True, False), (False, True), (False, False)):
            assert yamlload._scalar_tag(word, implicit) == resolver.resolve(yaml.ScalarNode, word, implicit), (word, implicit)
    assert None not in yamlload._IMPLICIT   # no wildcard resolvers: _scalar_tag relies on it
