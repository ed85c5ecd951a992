"""The docs a clone reads: README.md and docs/*.md.

Every example spec in docs/format.md loads (and its expectations hold), the op reference is the
op table's, every relative link resolves inside the repo, and docs/architecture.md names exactly
the modules that exist.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import gen_op_docs
import numpy as np
import pytest

import graphspec
from graphspec import expect
from graphspec.errors import SpecError
from graphspec.spec import parse_json

ROOT = Path(__file__).resolve().parent.parent
FORMAT = ROOT / "docs" / "format.md"
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

FENCE = re.compile(r"^```.*?^```[ \t]*$", re.S | re.M)
# a ```json block, and the marker comment on the line before it, if any
JSON_BLOCK = re.compile(r"(?:^<!-- (spec[^>]*?) -->\n)?^```json\n(.*?)^```[ \t]*$", re.S | re.M)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _json_blocks() -> list[tuple[str | None, str]]:
    return JSON_BLOCK.findall(FORMAT.read_text(encoding="utf-8"))


def test_op_reference_is_the_op_table():
    text = FORMAT.read_text(encoding="utf-8")
    assert gen_op_docs.current(text) is not None, "docs/format.md lost its op reference markers"
    assert gen_op_docs.current(text) == gen_op_docs.section(), (
        "docs/format.md's op reference is out of date: run .venv/bin/python tools/gen_op_docs.py")


def test_op_reference_names_every_op_and_attr():
    from graphspec.ops import OPS

    section = gen_op_docs.current(FORMAT.read_text(encoding="utf-8"))
    for name, op in OPS.items():
        assert f"| `{name}` |" in section
        for key, attr in op.attrs.items():
            assert f"| `{name}` | `{key}` |" in section
            assert attr.doc, f"op {name!r}: attr {key!r} has no doc (Attr(..., doc=...)) for docs/format.md"
            assert attr.kind in gen_op_docs.KINDS or attr.kind == "enum", (
                f"op {name!r}: attr kind {attr.kind!r} has no description in KINDS of tools/gen_op_docs.py")


def test_every_json_block_is_json():
    blocks = _json_blocks()
    assert len(blocks) >= 8
    for _, text in blocks:
        parse_json(text)  # duplicate keys are errors here too


def _id(text: str) -> str:
    """A test id: the example's name, else its first node."""
    doc = parse_json(text)
    return doc.get("name") or next(iter(doc.get("nodes", {})), "spec")


SPECS = [pytest.param(text, id=_id(text)) for marker, text in _json_blocks() if marker == "spec"]
ERRORS = [pytest.param(marker.partition(":")[2].strip(), text, id=_id(text))
          for marker, text in _json_blocks() if marker.startswith("spec error:")]


def test_the_examples_are_marked():
    assert len(SPECS) >= 7 and len(ERRORS) >= 1


@pytest.mark.parametrize("text", SPECS)
def test_example_spec_loads_and_its_expectations_hold(text):
    doc = parse_json(text)
    g = graphspec.load(doc, base=ROOT / "specs" / "lecture")  # the train example reads the lecture's data
    if "train" in doc:
        from graphspec import train

        log = train.train(g, epochs=2)
        assert len(log) == 2 and log[1].loss < log[0].loss
    if "expect" in doc:
        checks = expect.compare(g.evaluate(), g.spec.expect)
        assert checks and all(c.ok for c in checks), [c for c in checks if not c.ok]


@pytest.mark.parametrize(("message", "text"), ERRORS)
def test_example_error_is_the_error_it_shows(message, text):
    with pytest.raises(SpecError) as e:
        graphspec.load(parse_json(text))
    assert message in str(e.value)
    assert message in FORMAT.read_text(encoding="utf-8").replace(f"<!-- spec error: {message} -->", "")


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _links(path: Path) -> list[str]:
    text = FENCE.sub("", path.read_text(encoding="utf-8"))
    text = re.sub(r"`[^`\n]*`", "", text)  # links inside code are code
    return LINK.findall(text)


def _anchors(path: Path) -> set[str]:
    text = FENCE.sub("", path.read_text(encoding="utf-8"))
    return {_slug(h) for h in re.findall(r"^#+ (.*)$", text, re.M)}


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_relative_links_resolve_inside_the_repo(doc):
    for target in _links(doc):
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        file = (doc.parent / path).resolve() if path else doc
        assert file.is_relative_to(ROOT), f"{doc.name}: link {target!r} leaves the repo"
        assert file.exists(), f"{doc.name}: link {target!r}: no such file"
        if anchor and file.suffix == ".md":
            assert anchor in _anchors(file), f"{doc.name}: link {target!r}: no heading with that anchor"


def test_docs_have_links_to_check():
    assert len(_links(ROOT / "README.md")) >= 5 and len(_links(FORMAT)) >= 5


def _tracked() -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [ROOT / p for p in out.decode().split("\0") if p]


def test_no_tracked_file_points_outside_the_repo():
    outside = "../" + "shared"  # spelt in two parts, so this file does not hold it
    files = _tracked()
    assert ROOT / "README.md" in files
    bad = [str(p.relative_to(ROOT)) for p in files if p.is_file() and outside.encode() in p.read_bytes()]
    assert not bad, f"these files mention {outside}, which no clone has: {bad}"


def test_architecture_names_exactly_the_modules():
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    named = set(re.findall(r"(?<![\w/.])([\w/]+\.py)\b", text))
    pkg = ROOT / "graphspec"
    missing = sorted(p for p in named if not (pkg / p).is_file() and not (ROOT / p).is_file())
    assert not missing, f"docs/architecture.md names modules that do not exist: {missing}"
    modules = {p.relative_to(pkg).as_posix() for p in pkg.rglob("*.py")}
    unnamed = sorted(modules - named)
    assert not unnamed, f"docs/architecture.md does not name these modules of graphspec/: {unnamed}"


CSV_RULE = "docs/format.md's CSV item (between the csv-header markers) says so; if values.py changed the rule, update both"


@pytest.mark.parametrize(("text", "rows"), [
    ("x,y\n1,2\n3,4\n", [[1, 2], [3, 4]]),            # a header of names
    ('"x 1","y.2"\n1,2\n', [[1, 2]]),                  # names in quotes, with spaces and dots
    (" 1 , 2 \n3,4\n", [[1, 2], [3, 4]]),             # spaces around numbers
    ("nan,inf\n1,2\n", [[np.nan, np.inf], [1, 2]]),    # nan and inf are numbers
    ("\ufeff1,2\n3,4\n", [[1, 2], [3, 4]]),           # a byte order mark is dropped
    ("# note\n\n1,2\n", [[1, 2]]),                    # comments and blank lines are skipped
    ("1\n2\n3\n", [1, 2, 3]),                         # one column: 1-D
])
def test_csv_files_read_as_format_md_says(tmp_path, text, rows):
    from graphspec.values import read_file

    path = tmp_path / "data.csv"
    path.write_text(text, encoding="utf-8")
    np.testing.assert_array_equal(read_file(path, None, "x"), np.array(rows, dtype=float), err_msg=CSV_RULE)


@pytest.mark.parametrize(("text", "message"), [
    ("1;2\n3;4\n", "is neither a row of numbers nor a header of names"),
    ("x,y\n", "no rows of numbers"),
    ("", "no rows of numbers"),
    ("1,2,3\n4,5\n", "2 values, line 1 had 3"),
])
def test_csv_errors_are_the_ones_format_md_names(tmp_path, text, message):
    from graphspec.values import read_file

    path = tmp_path / "data.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SpecError) as e:
        read_file(path, None, "x")
    assert message in str(e.value), CSV_RULE


def test_csv_item_is_marked():
    text = FORMAT.read_text(encoding="utf-8")
    start, end = text.find("<!-- csv-header:"), text.find("<!-- /csv-header -->")
    assert 0 < start < end
    item = text[start:end]
    for words in ("'1;2' is neither a row of numbers nor a header of names", "header", "`#`", "without rows of numbers", "1-D"):
        assert words in " ".join(item.split()), words


def test_draw_colours_are_the_ones_documented():
    from graphspec.draw import CHECK_FILL, FILL, GRAD, LOCAL, VALUE

    text = (ROOT / "docs" / "drawing.md").read_text(encoding="utf-8")
    table = text[text.index("coloured by role"):text.index("## Big graphs")]
    assert len(FILL) == 5 and len(CHECK_FILL) == 5
    for colour in [*FILL.values(), *CHECK_FILL.values(), VALUE, GRAD, LOCAL]:
        assert f"`{colour}`" in table, colour
    assert "`.pdf`" in FORMAT.read_text(encoding="utf-8")[FORMAT.read_text(encoding="utf-8").index("**draw.**"):]


# graphspec.X.Y as the docs and examples write it
DOTTED = re.compile(r"\bgraphspec((?:\.[A-Za-z_]\w*)+)")
RESOLVE = """import functools, sys, graphspec
for n in sys.argv[1:]:
    try:
        functools.reduce(getattr, n.split("."), graphspec)
    except AttributeError as e:
        print(f"graphspec.{n}: {e}")"""


def test_every_dotted_name_resolves_after_import_graphspec():
    """A user copies `graphspec.testing.assert_gradients(...)` after `import graphspec` alone (as np.testing
    works after `import numpy`): each name resolves in a fresh interpreter, one per first name, so that no
    other name's import makes it resolve."""
    import sys

    sources = [*DOCS, *sorted((ROOT / "examples").rglob("*.py"))]
    names = {m.group(1)[1:] for p in sources for m in DOTTED.finditer(p.read_text(encoding="utf-8"))}
    names = {n for n in names if not n.endswith(".json")}  # graphspec.schema.json is a file
    assert {"testing.assert_gradients", "reading.limit_file_size", "inputs"} <= names
    firsts: dict[str, list[str]] = {}
    for n in sorted(names):
        firsts.setdefault(n.split(".")[0], []).append(n)
    bad = [subprocess.run([sys.executable, "-c", RESOLVE, *group], cwd=ROOT, capture_output=True, text=True,
                          check=True).stdout for group in firsts.values()]
    assert "".join(bad) == "", "the docs name these, which `import graphspec` alone does not give:\n" + "".join(bad)


def _section(text: str, start: str, end: str) -> str:
    i = text.index(start)
    return text[i:text.index(end, i + len(start))]


def _flag_in(flag: str, text: str) -> bool:
    return re.search(re.escape(flag) + r"(?![\w-])", text) is not None


def test_every_flag_of_each_commands_help_is_documented_for_that_command():
    """Each option of `python -m graphspec COMMAND --help` (one of its spellings) is in the docs where a user
    of that command reads: its own section (check: docs/gradcheck.md; train, draw, explain: docs/format.md's),
    or the Command line section's flags that name the command in their list (`--params FILE.npz` (run, ...))."""
    import argparse

    from graphspec.cli import _parser

    fmt, readme = FORMAT.read_text(encoding="utf-8"), (ROOT / "README.md").read_text(encoding="utf-8")
    general = _section(fmt, "## Command line", "### explain")
    shared: dict[str, set[str]] = {}  # `--params FILE.npz` (run, check): the flag and the commands it names
    for flag, cmds in re.findall(r"`(-[-\w]+)[^`]*` \(([a-z]+(?:, [a-z]+)*)\)", general):
        shared.setdefault(flag, set()).update(cmds.split(", "))
    outputs = _section(general, "**Outputs.**", "\n\n")  # -o and --force of the commands it names
    for flag in ("-o", "--force"):
        shared.setdefault(flag, set()).update(re.search(r"`-o FILE` \(([a-z, ]+)\)", outputs).group(1).split(", "))
    sections = {
        "check": (ROOT / "docs" / "gradcheck.md").read_text(encoding="utf-8"),
        "train": _section(fmt, "## Train", "## Functions"),
        "draw": _section(fmt, "### draw", "## Errors and strict types"),
        "explain": _section(fmt, "### explain", "**check -o report.html.**"),
    }
    sub = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert {"run", "check", "train", "draw", "explain", "validate", "ops", "schema"} <= set(sub.choices)
    missing = []
    for name, parser in sub.choices.items():
        where = sections.get(name, fmt + readme)
        for action in parser._actions:
            if not action.option_strings or isinstance(action, argparse._HelpAction):
                continue
            if not any(_flag_in(o, where) or name in shared.get(o, ()) for o in action.option_strings):
                missing.append(f"{name} {'/'.join(action.option_strings)}")
    assert not missing, f"flags of --help that the docs do not give for their command: {missing}"
