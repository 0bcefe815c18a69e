"""docs/errors.md stays true: every media code with errors.py's meaning and hint, the limit
variables, the exit codes, and the corpus outcome table that test_hostile_media.py checks."""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from forensics_core import errors
from forensics_core.errors import MEDIA_ERROR_CODES
from forensics_core.media import Limits

DOC = Path(__file__).resolve().parents[1] / "docs" / "errors.md"


def _cells(line: str) -> list[str]:
    """Cells of a Markdown table row; ``\\|`` is a literal pipe (GFM), not a separator."""
    inner = line.strip()
    assert inner.startswith("|") and inner.endswith("|"), line
    parts = re.split(r"(?<!\\)\|", inner[1:-1])
    return [p.strip().replace("\\|", "|") for p in parts]


def tables(text: str) -> list[list[dict[str, str]]]:
    """Every pipe table in ``text`` as a list of {header: cell} rows."""
    found, lines, i = [], text.splitlines(), 0
    while i < len(lines) - 1:
        if lines[i].lstrip().startswith("|") and re.fullmatch(r"\s*\|(\s*:?-{3,}:?\s*\|)+\s*", lines[i + 1]):
            header = _cells(lines[i])
            rows, i = [], i + 2
            while i < len(lines) and lines[i].lstrip().startswith("|"):
                cells = _cells(lines[i])
                assert len(cells) == len(header), f"row of {len(cells)} cells under {header}: {lines[i]!r}"
                rows.append(dict(zip(header, cells)))
                i += 1
            found.append(rows)
        else:
            i += 1
    return found


def table_with(text: str, *columns: str) -> list[dict[str, str]]:
    """The one table whose header is exactly ``columns``."""
    matches = [t for t in tables(text) if t and list(t[0]) == list(columns)]
    assert len(matches) == 1, f"expected one table with columns {columns}, found {len(matches)}"
    return matches[0]


def unquote(cell: str) -> str:
    return cell[1:-1] if len(cell) >= 2 and cell[0] == cell[-1] == "`" else cell


@pytest.fixture(scope="module")
def doc() -> str:
    return DOC.read_text(encoding="utf-8")


def test_every_media_code_is_documented_with_its_meaning_and_hint(doc):
    rows = table_with(doc, "code", "meaning", "hint")
    documented = {unquote(r["code"]): (r["meaning"], r["hint"]) for r in rows}
    assert len(documented) == len(rows), "a code is listed twice"
    assert set(documented) == set(MEDIA_ERROR_CODES)
    for code, (meaning, hint) in MEDIA_ERROR_CODES.items():
        assert documented[code] == (meaning, hint), code
    assert [unquote(r["code"]) for r in rows] == list(MEDIA_ERROR_CODES), "keep errors.py's order"


def test_every_media_code_is_mentioned(doc):
    for code in MEDIA_ERROR_CODES:
        assert f"`{code}`" in doc, code


def test_other_error_classes_have_their_codes_and_exit_codes(doc):
    rows = {unquote(r["class"]): r for r in table_with(doc, "class", "code", "exit code", "when")}
    for cls in (errors.WeightsError, errors.UnknownDetectorError, errors.InvalidOptionsError,
                errors.PluginLoadError, errors.DetectorNotLoadedError, errors.FaceModelError, errors.OutputLockedError,
                errors.ForensicsError):
        row = rows[cls.__name__]
        assert unquote(row["code"]) == cls.code, cls.__name__
        assert int(row["exit code"]) == cls.exit_code, cls.__name__
    assert int(rows["MediaProcessingError"]["exit code"]) == errors.MediaProcessingError.exit_code == errors.EXIT_MEDIA
    from forensics_core.registry import DuplicateDetectorError

    assert unquote(rows["DuplicateDetectorError"]["code"]) == DuplicateDetectorError.code


def test_exit_codes_match_the_cli(doc):
    rows = {int(r["code"]): r["meaning"] for r in table_with(doc, "code", "meaning") if r["code"].isdigit()}
    assert set(rows) == {errors.EXIT_OK, errors.EXIT_OTHER, errors.EXIT_USAGE, errors.EXIT_MEDIA, errors.EXIT_MODEL,
                         errors.EXIT_BUSY}
    assert "another" in rows[errors.EXIT_BUSY] and "scan" in rows[errors.EXIT_BUSY]
    assert "media" in rows[errors.EXIT_MEDIA] and "weights" in rows[errors.EXIT_MODEL] and "usage" in rows[errors.EXIT_USAGE]
    from forensics_core.cli import exit_code_for

    def row(code):
        return {"status": "error", "error": {"code": code}}

    assert exit_code_for([{"status": "ok"}, {"status": "abstained"}]) == errors.EXIT_OK
    assert exit_code_for([{"status": "ok"}, row("empty_file")]) == errors.EXIT_MEDIA
    assert exit_code_for([row("empty_file"), row("weights_error")]) == errors.EXIT_MODEL
    assert exit_code_for([row("internal_error")]) == errors.EXIT_OTHER
    assert exit_code_for([row("invalid_options")]) == errors.EXIT_USAGE  # a malformed limit variable, per file


def test_every_limit_variable_and_default_is_documented(doc):
    rows = {unquote(r["variable"]): r for r in table_with(doc, "variable", "`Limits` field", "default", "checked", "error")}
    variables = set(re.findall(r"``(FORENSICS_[A-Z_]+)``", Limits.__doc__ or ""))
    assert variables == {"FORENSICS_MAX_FILE_MB", "FORENSICS_MAX_DURATION_S", "FORENSICS_MAX_PIXELS", "FORENSICS_DECODE_TIMEOUT_S"}
    assert set(rows) == variables
    fields = {f.name: f.default for f in dataclasses.fields(Limits)}
    assert Limits.from_env({}) == Limits()  # unset variables keep the defaults
    for var, row in rows.items():
        field = re.match(r"`(\w+)`", row["`Limits` field"]).group(1)
        assert field in fields, var
        default = fields[field]
        numbers = [float(n.replace(" ", "")) for n in re.findall(r"\d[\d ]*(?:\.\d+)?", row["default"])]
        expected = default / 2**20 if field == "max_file_bytes" else default  # documented in MiB
        assert expected in numbers, f"{var}: default {default} not in {row['default']!r}"
        assert Limits.from_env({var: str(expected)}) == Limits()  # the documented unit is the variable's unit
        assert unquote(row["error"]) in MEDIA_ERROR_CODES


def test_corpus_table_matches_the_hostile_media_tests(doc):
    from media_corpus import CASES
    from test_hostile_media import LIPFD_OUTCOMES

    rows = table_with(doc, "case", "file", "LIPFD-V1 outcome")
    documented = {unquote(r["case"]): r["LIPFD-V1 outcome"].replace("`", "") for r in rows}
    assert set(documented) == set(CASES)
    assert documented == LIPFD_OUTCOMES


def test_issue_14_items_are_listed_with_tests_that_exist(doc):
    import ast

    rows = table_with(doc, "item", "input", "outcome", "test")
    items = [int(r["item"]) for r in rows]
    assert items == sorted(set(range(1, 18)) - {2, 3, 15}), "every item of issue 14 but the data-path ones, once, in order"
    tests = Path(__file__).resolve().parent
    for row in rows:
        module, _, name = unquote(row["test"]).partition("::")
        tree = ast.parse((tests / module).read_text(encoding="utf-8"))
        assert name in {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}, row["test"]


def test_abstain_codes_are_documented(doc):
    from forensics_core.detector import ABSTAIN_CODES

    rows = {unquote(r["`abstain_code`"]): r["`abstain_reason`"] for r in table_with(doc, "`abstain_code`", "`abstain_reason`", "when")}
    assert rows == ABSTAIN_CODES


def test_links_resolve(doc):
    for link in re.findall(r"\]\(([^)#:]+\.md)\)", doc):
        assert (DOC.parent / link).is_file(), link
