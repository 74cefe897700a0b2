"""az's ``--set``/``--add``/``--remove``/``--force-string``, with the meaning az ml gives them.

On ``create`` (and on any verb given ``-f FILE``), ``--set PATH=VALUE`` is
azure-ai-ml's ``params_override``: each pair is written into the YAML before
the file is read, so the SDK checks it as it checks the file's own fields
(:func:`params_override`). Several pairs may follow one ``--set``.

On ``update`` they are the Azure CLI's generic update over the resource as
``show`` prints it in YAML terms (:func:`apply_generic_update`), applied in
the order given:

- ``--set PATH=VALUE``: the value is read as JSON where it parses
  (``2`` a number, ``true`` a boolean, ``{"a": 1}`` an object), else kept as
  text; ``--force-string`` keeps every value as text. The last part of the
  path may be a new key of a mapping; the parts before it must exist.
- ``--add PATH VALUE...``: append to the list at PATH (created when
  missing); consecutive ``KEY=VALUE`` values make one object, others are
  JSON (or text).
- ``--remove PATH``: delete the key; ``--remove PATH INDEX``: delete that
  element of the list at PATH.

``PATH`` is dotted (``request_settings.request_timeout_ms``) and may index a
list (``items[0].name``).
"""

from __future__ import annotations

import argparse
import copy
import json
import re
from collections.abc import Sequence
from typing import Any

from byom.core.errors import InvalidInput

Op = tuple[str, list[str]]
_INDEX = re.compile(r"^(?P<key>[^\[\]]*)((?:\[-?\d+\])*)$")


class _Ordered(argparse.Action):
    """Records ``--set``/``--add``/``--remove`` in command-line order in ``namespace.generic_ops``."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: str | Sequence[Any] | None, option_string: str | None = None) -> None:
        items = [str(v) for v in (values if isinstance(values, list) else [values])]
        ops: list[Op] = list(getattr(namespace, "generic_ops", None) or [])
        ops.append((self.dest, items))
        namespace.generic_ops = ops
        setattr(namespace, self.dest, [*(getattr(namespace, self.dest, None) or []), items])


def truthy(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("1", "t", "true", "y", "yes"):
        return True
    if lowered in ("0", "f", "false", "n", "no"):
        return False
    raise argparse.ArgumentTypeError(f"{text!r} is not true or false")


def add_set_argument(parser: argparse.ArgumentParser) -> None:
    """``--set`` on create: az ml's params_override."""
    parser.set_defaults(generic_ops=[])
    parser.add_argument("--set", nargs="+", action=_Ordered, metavar="PATH=VALUE",
                        help="Set a field of the YAML before it is read (az ml's params_override), "
                             "e.g. --set instance_count=2 environment_variables.MODE=fast.")


def add_update_arguments(parser: argparse.ArgumentParser) -> None:
    """``--set``/``--add``/``--remove``/``--force-string`` on update: the Azure CLI's generic update."""
    parser.set_defaults(generic_ops=[])
    parser.add_argument("--set", nargs="+", action=_Ordered, metavar="PATH=VALUE",
                        help="Set a field, e.g. --set instance_count=2 tags.team=nlp (values are read as JSON "
                             "where they parse).")
    parser.add_argument("--add", nargs="+", action=_Ordered, metavar="PATH VALUE",
                        help="Append to the list at PATH: --add PATH KEY=VALUE [KEY=VALUE ...] or a JSON value.")
    parser.add_argument("--remove", nargs="+", action=_Ordered, metavar="PATH [INDEX]",
                        help="Remove a field (--remove tags.team) or a list element (--remove PATH INDEX).")
    parser.add_argument("--force-string", nargs="?", const=True, default=False, type=truthy,
                        metavar="BOOL", help="With --set and --add, keep values as text instead of reading JSON.")


def _pairs(items: list[str], flag: str) -> list[tuple[str, str]]:
    out = []
    for item in items:
        path, sep, value = item.partition("=")
        if not sep or not path:
            raise InvalidInput(f"{flag} {item!r} is not PATH=VALUE (for example {flag} instance_count=2).")
        out.append((path, value))
    return out


def params_override(ops: list[Op] | None) -> list[dict[str, Any]]:
    """``--set`` pairs as azure-ai-ml's ``params_override`` (values as text: the schema reads them)."""
    overrides: list[dict[str, Any]] = []
    for flag, items in ops or []:
        if flag != "set":
            raise InvalidInput(f"--{flag} changes what exists: use it with update, not create.")
        overrides += [{path: value} for path, value in _pairs(items, "--set")]
    return overrides


def _value(text: str, force_string: bool) -> Any:
    if force_string:
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def _steps(path: str, flag: str) -> list[str | int]:
    """'a.b[0].c' → ['a', 'b', 0, 'c']."""
    steps: list[str | int] = []
    for part in path.split("."):
        match = _INDEX.match(part)
        if not part or match is None:
            raise InvalidInput(f"{flag} {path!r}: not a path like request_settings.request_timeout_ms or items[0].")
        if match.group("key"):
            steps.append(match.group("key"))
        steps += [int(i) for i in re.findall(r"\[(-?\d+)\]", part)]
    if not steps:
        raise InvalidInput(f"{flag} {path!r}: the path is empty.")
    return steps


def _walk(doc: Any, steps: list[str | int], path: str, flag: str) -> Any:
    node = doc
    for i, step in enumerate(steps):
        where = path if i == 0 else ".".join(str(s) for s in steps[:i])
        if isinstance(step, int):
            if not isinstance(node, list) or not -len(node) <= step < len(node):
                raise InvalidInput(f"{flag} {path!r}: {where!r} has no element [{step}].")
            node = node[step]
        else:
            if not isinstance(node, dict) or step not in node:
                options = ", ".join(sorted(map(str, node))) if isinstance(node, dict) else "none"
                raise InvalidInput(f"{flag} {path!r}: no field {step!r}"
                                   f"{' in ' + repr(where) if i else ''} (there are: {options}).")
            node = node[step]
    return node


def _set(doc: dict[str, Any], path: str, value: Any) -> None:
    steps = _steps(path, "--set")
    parent = _walk(doc, steps[:-1], path, "--set")
    last = steps[-1]
    if isinstance(last, int):
        if not isinstance(parent, list) or not -len(parent) <= last < len(parent):
            raise InvalidInput(f"--set {path!r}: there is no element [{last}] to set.")
        parent[last] = value
    elif isinstance(parent, dict):
        parent[last] = value
    else:
        raise InvalidInput(f"--set {path!r}: {'.'.join(map(str, steps[:-1]))!r} holds no fields.")


def _add(doc: dict[str, Any], items: list[str], force_string: bool) -> None:
    if len(items) < 2:
        raise InvalidInput("--add needs a path and at least one value: --add PATH KEY=VALUE or --add PATH VALUE.")
    path, values = items[0], items[1:]
    steps = _steps(path, "--add")
    parent = _walk(doc, steps[:-1], path, "--add")
    last = steps[-1]
    if isinstance(parent, dict) and isinstance(last, str) and parent.get(last) is None:
        parent[last] = []
    target = _walk(doc, steps, path, "--add")
    if not isinstance(target, list):
        raise InvalidInput(f"--add {path!r}: it is not a list; change a field with --set {path}.NAME=VALUE.")
    entry: dict[str, Any] = {}
    for value in values:
        key, sep, text = value.partition("=")
        if sep and key:
            entry[key] = _value(text, force_string)  # consecutive KEY=VALUE make one object
            continue
        if entry:
            target.append(entry)
            entry = {}
        target.append(_value(value, force_string))
    if entry:
        target.append(entry)


def _remove(doc: dict[str, Any], items: list[str]) -> None:
    if len(items) > 2:
        raise InvalidInput(f"--remove {' '.join(items)!r}: give a path, or a path and a list index.")
    path = items[0]
    steps = _steps(path, "--remove")
    if len(items) == 2:
        target = _walk(doc, steps, path, "--remove")
        try:
            index = int(items[1])
        except ValueError:
            raise InvalidInput(f"--remove {path} {items[1]!r}: the index is a whole number.") from None
        if not isinstance(target, list) or not -len(target) <= index < len(target):
            raise InvalidInput(f"--remove {path} {index}: {path!r} has no element [{index}].")
        target.pop(index)
        return
    parent = _walk(doc, steps[:-1], path, "--remove")
    _walk(doc, steps, path, "--remove")  # names what is missing
    last = steps[-1]
    if isinstance(parent, list) and isinstance(last, int):
        parent.pop(last)
    elif isinstance(parent, dict):
        del parent[last]


def apply_generic_update(doc: dict[str, Any], ops: list[Op] | None, force_string: bool = False) -> dict[str, Any]:
    """A copy of ``doc`` with az's ``--set``/``--add``/``--remove`` applied in order."""
    out: dict[str, Any] = copy.deepcopy(doc)  # a YAML file's fields may hold dates, which JSON has not
    for flag, items in ops or []:
        if flag == "set":
            for path, text in _pairs(items, "--set"):
                _set(out, path, _value(text, force_string))
        elif flag == "add":
            _add(out, items, force_string)
        else:
            _remove(out, items)
    return out


def text_map(value: Any, field: str) -> dict[str, str]:
    """A mapping of text values (tags, environment variables) after an update: JSON scalars as az sends them."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidInput(f"{field} is a JSON object of names to values, not {json.dumps(value)}: "
                           f"write {field}='{{\"NAME\": \"VALUE\"}}' or set one with --set {field}.NAME=VALUE.")
    out = {}
    for key, item in value.items():
        if isinstance(item, (dict, list)):
            raise InvalidInput(f"{field}.{key} is text, not {json.dumps(item)}: pass --force-string to keep it as "
                               "it is written.")
        out[str(key)] = json.dumps(item) if isinstance(item, bool) or item is None else str(item)
    return out
