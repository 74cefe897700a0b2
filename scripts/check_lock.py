"""Does requirements.txt still lock what pyproject.toml asks for?

    python scripts/check_lock.py            exit 1, saying what to run, when they disagree
    python scripts/check_lock.py --digest   print the digest of the lock's inputs
    python scripts/check_lock.py --inputs   print the extra requirements, then '--', then the excludes

The lock records the digest of the inputs it was made from (its 'inputs-sha256'
line); any change to the dependencies, the dev extras, requires-python or
[tool.byom.lock] changes the digest. Every requirement must also be pinned in
the lock at a version it admits, so a hand edit of either file is caught too.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements.txt"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


def inputs() -> dict:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    extra = project.get("tool", {}).get("byom", {}).get("lock", {})
    return {
        "requires-python": project["project"]["requires-python"],
        "dependencies": project["project"]["dependencies"],
        "dev": project["project"]["optional-dependencies"]["dev"],
        "extra-requirements": extra.get("extra-requirements", []),
        "excludes": extra.get("excludes", []),
    }


def digest() -> str:
    return hashlib.sha256(json.dumps(inputs(), sort_keys=True).encode()).hexdigest()


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def problems() -> list[str]:
    if not LOCK.exists():
        return ["requirements.txt is missing"]
    text = LOCK.read_text(encoding="utf-8")
    found = re.search(r"^# inputs-sha256: (\w+)", text, re.M)
    if not found or found.group(1) != digest():
        return ["pyproject.toml's requirements changed since requirements.txt was made"]
    from packaging.requirements import Requirement  # in the venv; --digest needs only the standard library

    pins = {canonical(m.group(1)): m.group(2) for m in map(PIN.match, text.splitlines()) if m}
    wanted = inputs()
    out = []
    for line in wanted["dependencies"] + wanted["dev"] + wanted["extra-requirements"]:
        req = Requirement(line)
        pinned = pins.get(canonical(req.name))
        if pinned is None:
            out.append(f"{req.name} is required but not in requirements.txt")
        elif not req.specifier.contains(pinned, prereleases=True):
            out.append(f"{req.name}=={pinned} in requirements.txt does not satisfy '{line}'")
    return out


def main(argv: list[str]) -> int:
    if argv == ["--digest"]:
        print(digest())
        return 0
    if argv == ["--inputs"]:
        print("\n".join(inputs()["extra-requirements"] + ["--"] + inputs()["excludes"]))
        return 0
    found = problems()
    for problem in found:
        print(f"ERROR: {problem}: run 'make lock' and commit requirements.txt", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
