"""Reading pip's output during a build: progress, and why an install failed.

pip prints one ``Collecting NAME`` (or ``Processing FILE``) line per package
it resolves, then ``Installing collected packages: a, b, ...``. The total is
unknown until resolution ends, so collecting moves the bar towards 60 %
without reaching it; installing is 70 %.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ...environments import requirement_name

_COLLECTING = re.compile(r"^(?:Collecting|Processing) (\S+)")
_INSTALLING = re.compile(r"^Installing collected packages: (.+)$")
_NO_MATCH = re.compile(r"No matching distribution found for (\S+)")
_NO_VERSION = re.compile(r"Could not find a version that satisfies the requirement (\S+) \(from versions: (.*)\)")
_CONFLICT = re.compile(r"Cannot install (.+?) because these package versions have conflicting dependencies")
_BUILD_FAILED = re.compile(r"(?:Failed building wheel for|Failed to build) (.+?)\s*$")
_INVALID = re.compile(r"Invalid requirement: '([^']*)'")


@dataclass
class PipProgress:
    collected: list[str] = field(default_factory=list)
    installing: int = 0

    def feed(self, line: str) -> tuple[str, float] | None:
        """Read one line of pip's output; a progress step when it marks one."""
        text = line.strip()
        match = _COLLECTING.match(text)
        if match:
            self.collected.append(_package_of(match.group(1)))
            n = len(self.collected)
            return f"Resolving packages: {n} so far ({self.collected[-1]})", 0.1 + 0.5 * n / (n + 20)
        match = _INSTALLING.match(text)
        if match:
            self.installing = len(match.group(1).split(","))
            return f"Installing {self.installing} packages", 0.7
        return None


def _package_of(token: str) -> str:
    """A name from pip's 'Collecting numpy==2.3.1' or 'Processing /x/joblib-1.6.0-py3-none-any.whl'."""
    if "/" in token or token.endswith((".whl", ".tar.gz", ".zip")):
        token = token.rsplit("/", 1)[-1].split("-", 1)[0]
    return requirement_name(token) or token


def _shorten_versions(line: str) -> str:
    def last_five(match: re.Match[str]) -> str:
        versions = match.group(1).split(", ")
        return "(from versions: " + (", ".join(["...", *versions[-5:]]) if len(versions) > 5 else match.group(1)) + ")"

    return re.sub(r"\(from versions: ([^)]*)\)", last_five, line)


def _conflict_causes(text: list[str]) -> str:
    """pip's 'The conflict is caused by:' lines, joined."""
    try:
        start = text.index("The conflict is caused by:") + 1
    except ValueError:
        return ""
    causes = []
    for line in text[start:]:
        if not line.startswith("    "):
            break
        causes.append(line.strip())
    return "; ".join(causes)


_IGNORED_PYTHON = re.compile(r"Ignored the following versions that require a different python version: (.*)")


def _other_python(text: str, requirement: str) -> str | None:
    """The Requires-Python of the pinned version when pip skipped it for this interpreter, else None."""
    match = _IGNORED_PYTHON.search(text)
    pinned = requirement.partition("==")[2].strip()
    if match is None or not pinned:
        return None
    for entry in match.group(1).split(";"):  # "1.5.1 Requires-Python >=3.8,<3.11; 1.5.0 Requires-Python ..."
        version, _, needs = entry.strip().partition(" Requires-Python ")
        if version == pinned:
            return needs.strip()
    return None


def failure_reason(lines: list[str], collected: list[str]) -> str:
    """One sentence naming the package pip failed on, and the last lines pip wrote about it."""
    text = [line.rstrip() for line in lines if line.strip()]
    errors = [line for line in text if line.startswith(("ERROR:", "error:", "×", "╰─>"))]
    joined = "\n".join(text)
    if (match := _NO_VERSION.search(joined)) is not None:
        requirement, versions = match.group(1), match.group(2).strip()
        if versions == "none":
            head = (f"No package named {requirement_name(requirement) or requirement!r} was found on the "
                    f"package index (requirement {requirement}): check the name; a conda-only package "
                    f"(a system library) has no PyPI equivalent and should be left out.")
        elif (needs := _other_python(joined, requirement)) is not None:
            head = (f"{requirement} exists but requires Python {needs}, not the Python this environment is "
                    f"built with: pin a version of {requirement_name(requirement) or requirement} for it, or "
                    f"change the spec's python.")
        else:
            recent = ", ".join(v.strip() for v in versions.split(",")[-5:])
            head = (f"No version of {requirement_name(requirement) or requirement} matches {requirement} "
                    f"(latest versions: {recent}): change the pin.")
    elif (match := _NO_MATCH.search(joined)) is not None:
        head = f"No distribution of {match.group(1)} could be installed: check its name and version."
    elif (match := _CONFLICT.search(joined)) is not None:
        causes = _conflict_causes(text)
        head = f"The pins of {match.group(1)} conflict: loosen one of them." + (f" ({causes})" if causes else "")
    elif (match := _INVALID.search(joined)) is not None:
        head = f"pip cannot read the requirement {match.group(1)!r}: write it as name, name==1.2 or name>=1.2."
    elif (match := _BUILD_FAILED.search(joined)) is not None:
        head = f"Building {match.group(1)} from source failed: pin a version that has a wheel for this Python."
    elif collected:
        head = f"pip failed while installing {collected[-1]}."
    else:
        head = "pip failed before it installed any package."
    tail = [_shorten_versions(line) for line in (errors or text)[-6:]]
    return head + ("\npip said:\n" + "\n".join(tail) if tail else "")
