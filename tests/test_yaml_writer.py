"""netharden/emitters/_yaml.py, the one YAML writer of cloud-config, Butane and coreos-cloud-config:
every escape, every choice between the forms, and random text read back unchanged by PyYAML's
pure-Python and libyaml loaders (YAML 1.1) and netharden's YAML 1.2 core-schema reader (libyaml
events, go-yaml v3's typing). The emitters' own tests check the formats around these forms."""
from __future__ import annotations

import base64
import json

import pytest
import yaml
from hypothesis import given, settings, strategies as st

import netharden
from netharden import yamlload
from netharden.emitters._yaml import block, block_ok, block_or_quoted, comment, comment_text, quoted, scalar
from netharden.plan_model import File, Plan

LOADERS = [yaml.SafeLoader] + ([yaml.CSafeLoader] if hasattr(yaml, "CSafeLoader") else [])


def read_all(document: str) -> object:
    """``document`` read by every reader; all must agree."""
    docs = [yaml.load(document, Loader=loader) for loader in LOADERS]
    docs.append(yamlload.load_text(document.encode("utf-8"), "t.yaml").data)
    assert all(d == docs[0] for d in docs), docs
    return docs[0]


def read_value(value: str, indent: int = 2) -> object:
    """``value`` written after a key whose block content is indented by ``indent``: at the top level,
    in a mapping in a sequence, nested deeper, and followed by another key."""
    key = " " * (indent - 2)
    lead = "s:\n- a: 1\n" if indent == 4 else "".join(f"{' ' * c}l{c}:\n" for c in range(0, indent - 2, 2))
    doc = read_all(f"{lead}{key}k: {value}\n{key}z: end\n")
    while "k" not in doc:
        doc = next(iter(doc.values()))
        doc = doc[0] if isinstance(doc, list) else doc
    assert doc["z"] == "end"
    return doc["k"]


# --- the escape table ----------------------------------------------------------------------

@pytest.mark.parametrize("char,escaped", [
    ('"', '\\"'), ("\\", "\\\\"), ("\t", "\\t"), ("\n", "\\n"), ("\r", "\\r"),
    ("\x00", "\\u0000"), ("\x07", "\\u0007"), ("\x08", "\\u0008"), ("\x0b", "\\u000b"), ("\x1b", "\\u001b"),
    ("\x1f", "\\u001f"), ("\x7f", "\\u007f"), ("\x80", "\\u0080"), ("\x85", "\\u0085"), ("\x9f", "\\u009f"),
    ("\u2028", "\\u2028"), ("\u2029", "\\u2029"), ("\ufeff", "\\ufeff"), ("\ufffe", "\\ufffe"),
    ("\uffff", "\\uffff"),
])
def test_every_escape(char, escaped):
    assert quoted(f"a{char}b") == f'"a{escaped}b"'
    assert read_value(quoted(f"a{char}b")) == f"a{char}b"
    assert json.loads(quoted(f"a{char}b")) == f"a{char}b"


def test_a_surrogate_is_escaped():
    assert quoted("\ud800") == '"\\ud800"'


@pytest.mark.parametrize("char", [" ", "~", "'", "#", ":", "\xa0", "é", "\u2027", "\u202a", "\ud7ff", "\ue000",
                                  "\ufefe", "\uff00", "\ufffd", "\U00010000", "😀", "\U0010ffff"])
def test_printable_characters_stay_as_they_are(char):
    assert quoted(f"a{char}b") == f'"a{char}b"'
    assert read_value(quoted(f"a{char}b")) == f"a{char}b"
    assert json.loads(quoted(f"a{char}b")) == f"a{char}b"


# --- scalar: plain word, single-quoted, double-quoted ----------------------------------------

@pytest.mark.parametrize("text,written", [
    ("ln", "ln"), ("-sfn", "-sfn"), ("/dev/null", "/dev/null"), ("a.b@c+d-e_f/9", "a.b@c+d-e_f/9"),
    ("yes", "'yes'"), ("No", "'No'"), ("ON", "'ON'"), ("off", "'off'"), ("True", "'True'"), ("false", "'false'"),
    ("null", "'null'"), ("NULL", "'NULL'"), ("y", "'y'"), ("N", "'N'"),
    ("", "''"), ("0644", "'0644'"), ("1.5", "'1.5'"), ("-1", "'-1'"), ("-", "'-'"), ("--x", "'--x'"),
    (".inf", "'.inf'"), ("~", "'~'"), ("a b", "'a b'"), ("root:root", "'root:root'"), ("x,y", "'x,y'"),
    ("[a]", "'[a]'"), ("#x", "'#x'"), ("it's", "'it''s'"), ("ü", "'ü'"), ("🚀", "'🚀'"),
    ("a\tb", '"a\\tb"'), ("a\nb", '"a\\nb"'), ("a\rb", '"a\\rb"'), ("\x85", '"\\u0085"'), ("\ufeff", '"\\ufeff"'),
    ("it's\t", "\"it's\\t\""), ("\x00", '"\\u0000"'),
])
def test_scalar_forms(text, written):
    assert scalar(text) == written
    assert read_value(written) == text
    assert read_all(f"f: [{written}, x]\n") == {"f": [text, "x"]}


# --- literal blocks --------------------------------------------------------------------------

@pytest.mark.parametrize("text,ok", [
    ("a\n", True), ("a", True), ("a\n\n", True), ("a\n\n\n", True), ("a\n\tb\n", True), ("\tstart\n", True),
    ("\n\na\n", True), ("\n\tb", True), ("ü 🚀\n", True), ("a\n\nb\n", True), ("#x\n---\n...\n|\n", True),
    ("", False), ("\n", False), ("\n\n", False),
    ("a \n", False), ("a\t\n", False), ("a ", False), ("a\t", False), ("a\n \nb\n", False), ("a\n\t\nb\n", False),
    (" a\n", False), ("\n a\n", False), ("\n\n  a", False),
    ("a\r\n", False), ("a\rb\n", False), ("a\x85b\n", False), ("a\u2028b\n", False), ("a\u2029b\n", False),
    ("\ufeffa\n", False), ("a\ufeff\n", False), ("a\x00\n", False), ("a\x1b\n", False), ("a\x7f\n", False),
    ("a\x9b\n", False), ("a\ufffe\n", False),
])
def test_block_ok_rules(text, ok):
    assert block_ok(text) is ok
    assert block_or_quoted(text, 2) == (block(text, 2) if ok else quoted(text))
    assert read_value(block_or_quoted(text, 2)) == text


@pytest.mark.parametrize("text,indent,written", [
    ("a\n", 2, "|\n  a"),
    ("a", 4, "|-\n    a"),
    ("a\n\n", 2, "|+\n  a\n"),
    ("a\n\n\n", 6, "|+\n      a\n\n"),
    ("a\n\nb\n", 2, "|\n  a\n\n  b"),
    ("\n\nmid\n", 2, "|\n\n\n  mid"),
    ("x\n\ty\n", 2, "|\n  x\n  \ty"),
    ("\tx\n", 2, "|2\n  \tx"),
    ("\n\tx", 4, "|2-\n\n    \tx"),
    ("\tx\n\n", 8, "|2+\n        \tx\n"),
])
def test_block_bytes(text, indent, written):
    assert block(text, indent) == written
    assert read_value(written, indent) == text


def test_a_tab_first_needs_the_indentation_indicator():
    """The reason for ``|2``: libyaml (and go-yaml, its port) refuse the plain ``|`` form."""
    plain = "k: |\n  \tx\n"
    assert yaml.load(plain, Loader=yaml.SafeLoader) == {"k": "\tx\n"}
    if yaml.CSafeLoader in LOADERS:
        with pytest.raises(yaml.YAMLError, match="tab character where an indentation space is expected"):
            yaml.load(plain, Loader=yaml.CSafeLoader)


def test_a_leading_space_would_not_read_back_without_an_indicator():
    """The reason for refusing it: the spaces join the detected indentation."""
    assert read_all("k: |\n\n   a\n") == {"k": "\na\n"}


# --- comments --------------------------------------------------------------------------------

@pytest.mark.parametrize("text,line", [
    ("plain text: 100% \"ok\" #1", "# plain text: 100% \"ok\" #1"), ("tab\there", "# tab\there"),
    ("ü 🚀", "# ü 🚀"), ("trailing  \t", '# "trailing  \\t"'), ("x ", '# "x "'), ("", "#"),
    ("a\nb", '# "a\\nb"'), ("a\rb", '# "a\\rb"'), ("bell\a", '# "bell\\u0007"'), ("nel\x85", '# "nel\\u0085"'),
    ("ls\u2028", '# "ls\\u2028"'), ("ps\u2029", '# "ps\\u2029"'), ("bom\ufeff", '# "bom\\ufeff"'),
    ("c1\x9b", '# "c1\\u009b"'), ("a\nb\t", '# "a\\nb\\t"'),
])
def test_comment_lines(text, line):
    assert comment(text) == line
    assert comment_text(text) == line[2:]
    assert read_all(f"k: 1\n{line}\nz: 2\n") == {"k": 1, "z": 2}


# --- any text --------------------------------------------------------------------------------

AWKWARD = st.sampled_from(list("ab #:-|>'\"\\%&*!?,[]{}\t\n\r \x00\x07\x1b\x7f\x85\x9b\xa0é☃😀")
                          + ["\u2028", "\u2029", "\ufeff", "\ufffe", "---", "...", "- ", ": ", "\r\n", "  ", "\n\n",
                             "\n ", "\n\t", "yes", "0644", "~"])
TEXT = st.lists(AWKWARD, max_size=24).map("".join) | st.text(max_size=40)


@settings(max_examples=500, deadline=None)
@given(TEXT, st.sampled_from([2, 4, 6, 8, 12]))
def test_any_text_reads_back(text, indent):
    assert read_value(quoted(text)) == text
    assert json.loads(quoted(text)) == text
    assert "\n" not in quoted(text)
    assert read_value(scalar(text)) == text
    assert read_all(f"f: [{scalar(text)}, x]\n") == {"f": [text, "x"]}
    assert read_value(block_or_quoted(text, indent), indent) == text
    if block_ok(text):
        written = block(text, indent)
        assert all(line == line.rstrip(" \t") for line in written.split("\n"))
    assert read_all(f"k: 1\n{comment(text)}\n") == {"k": 1}
    assert "\n" not in comment(text) and comment(text) == comment(text).rstrip(" \t")


# --- through the emitters --------------------------------------------------------------------

def _contents(fmt: str, doc: dict) -> list[str]:
    """The file and unit contents in a parsed cloud-config, Butane or coreos-cloud-config document."""
    if fmt == "butane":
        files, units = doc["storage"]["files"], doc["systemd"]["units"]
        return [f["contents"]["inline"] for f in files] + [u["contents"] for u in units]
    files = [base64.b64decode(f["content"]).decode() if f.get("encoding") else f["content"] for f in doc["write_files"]]
    return files + [u["content"] for u in doc.get("coreos", {}).get("units", [])]


@pytest.mark.parametrize("fmt", ["cloud-config", "butane", "coreos-cloud-config"])
@pytest.mark.parametrize("content", ["\tfirst\n", "\n\tx\n", "\n a\n", "\n\n", "x\n\n\n", "a \nb\n", "c1\x9b\n"])
def test_the_emitters_keep_every_content(fmt, content):
    """Among them what the emitters' own writers got wrong: coreos wrote "\\n a\\n" as a block that reads
    back as "\\na\\n", and coreos and cloud-config wrote blocks with a tab first that libyaml refuses."""
    plan = Plan("h", 252, files=[File("/etc/x", content), File("/etc/systemd/system/x.service", content)])
    text = netharden.emit(plan, fmt).decode("utf-8")
    assert [_contents(fmt, yaml.load(text, Loader=loader)) for loader in LOADERS] == [[content] * 2] * len(LOADERS)
