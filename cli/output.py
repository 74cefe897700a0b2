"""Output of the ``byom`` CLI the way az prints it: -o json|jsonc|tsv|table|yaml and --query."""

from __future__ import annotations

import argparse
import dataclasses
import enum
import json
import sys
from typing import Any

import jmespath
import yaml
from byom.core.errors import InvalidInput
from byom.core.progress import Progress

FORMATS = ("json", "jsonc", "tsv", "table", "yaml", "yamlc", "none")


def add_output_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--output", choices=FORMATS, default="json", help="Output format (default json).")
    parser.add_argument("--query", help="JMESPath query applied to the result, as in az.")
    # az's global flags, so that scripts written for az ml run unchanged
    parser.add_argument("--only-show-errors", action="store_true", help="No progress lines, only errors.")
    parser.add_argument("--verbose", action="store_true", help="Log what byom does to stderr.")
    parser.add_argument("--debug", action="store_true", help="Log everything, HTTP calls to Azure included.")


def to_plain(value: Any) -> Any:
    """Entities (and lists of them) → JSON-able data."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_plain(value.to_dict() if hasattr(value, "to_dict") else dataclasses.asdict(value))
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if isinstance(value, enum.Enum):  # a StrEnum state: YAML's safe dumper knows only plain str
        return value.value
    return value


def compile_query(query: str) -> Any:
    """Check a --query before anything runs, so a typo never follows a change."""
    try:
        return jmespath.compile(query)
    except jmespath.exceptions.JMESPathError as exc:
        reason = str(exc).strip().splitlines()[0].rstrip(":")
        raise InvalidInput(f"Invalid --query {query!r}: {reason}.") from None


def apply_query(data: Any, query: str | None) -> Any:
    if not query:
        return data
    try:
        return compile_query(query).search(data)
    except jmespath.exceptions.JMESPathError as exc:
        raise InvalidInput(f"--query {query!r} does not fit the result: {str(exc).splitlines()[0]}.") from None


def _scalar(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _field(value: Any) -> str:
    """A scalar as one tsv field: a tab or line break inside it would split the row, so it is escaped."""
    return _scalar(value).replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _tsv(data: Any) -> str:
    rows = data if isinstance(data, list) else [data]
    lines = []
    for row in rows:
        if isinstance(row, dict):
            # as az does: scalar values of the object, nested objects left out
            lines.append("\t".join(_field(v) for v in row.values() if not isinstance(v, (dict, list))))
        elif isinstance(row, list):
            lines.append("\t".join(_field(v) for v in row))
        else:
            lines.append(_field(row))
    return "\n".join(lines)


TABLE_CELL_CHARS = 60


def _cell(value: Any) -> str:
    text = " ".join(_scalar(value).split())  # one line per row
    return text if len(text) <= TABLE_CELL_CHARS else text[: TABLE_CELL_CHARS - 1] + "…"


def _table(data: Any) -> str:
    rows = data if isinstance(data, list) else [data]
    if not rows:
        return ""
    if not all(isinstance(r, dict) for r in rows):
        return "\n".join(_scalar(r) for r in rows)
    columns: list[str] = []
    for row in rows:
        for key, value in row.items():
            if key not in columns and not isinstance(value, (dict, list)):
                columns.append(key)
    # a text of several lines (a conda file, a log) has no place in a table: --query or -o json shows it
    columns = [c for c in columns if not any("\n" in _scalar(row.get(c)) for row in rows)]
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    titles = [c.replace("_", " ").title() for c in columns]
    widths = [max(len(t), *(len(r[i]) for r in cells)) for i, t in enumerate(titles)]
    out = ["  ".join(t.ljust(w) for t, w in zip(titles, widths, strict=True)).rstrip(),
           "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(out)


def render(result: Any, output: str = "json", query: str | None = None) -> str:
    data = apply_query(to_plain(result), query)
    if output == "none" or (data is None and output != "json"):
        return ""
    if output in ("json", "jsonc"):
        return json.dumps(data, indent=2, ensure_ascii=False)
    if output in ("yaml", "yamlc"):  # az colours yamlc on a terminal; the text is the same
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True).rstrip()
    if output == "tsv":
        return _tsv(data)
    return _table(data)


def emit(result: Any, args: argparse.Namespace) -> None:
    text = render(result, getattr(args, "output", "json"), getattr(args, "query", None))
    if text:
        sys.stdout.write(text + "\n")


def progress_for(args: argparse.Namespace) -> Progress:
    """The progress callback a command reports to: quiet with ``-o none`` or ``--only-show-errors``."""
    return stderr_progress(getattr(args, "output", "json") == "none" or getattr(args, "only_show_errors", False))


def stderr_progress(quiet: bool = False) -> Progress:
    """A progress callback that writes one line per step to stderr (stdout stays parseable)."""
    last: list[str] = [""]

    def report(message: str, fraction: float | None = None) -> None:
        if quiet:
            return
        pct = f"{fraction * 100:3.0f}% " if fraction is not None else "     "
        line = f"{pct}{message}"
        if line != last[0]:
            sys.stderr.write(line + "\n")
            sys.stderr.flush()
            last[0] = line

    return report


def parse_key_values(items: list[str] | None, what: str) -> dict[str, str]:
    """['a=1', 'b=2'] (or ['a=1 b=2']) → {'a': '1', 'b': '2'}."""
    out: dict[str, str] = {}
    for item in items or []:
        for part in item.split():
            if "=" not in part:
                raise InvalidInput(f"{what} {part!r} is not KEY=VALUE.")
            key, value = part.split("=", 1)
            if not key:
                raise InvalidInput(f"{what} {part!r} has an empty key.")
            out[key] = value
    return out
