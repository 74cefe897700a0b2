"""Starting, finding and ending the local serving processes, by pid.

A pid alone is not an identity: after a process exits its pid can be given to
another. Every process byom records is therefore recorded as ``(pid, start)``
where ``start`` is the start time the kernel keeps in ``/proc/<pid>/stat``;
a process is "ours" only while both match. Zombies count as dead.

Every process started for a workspace home carries ``BYOM_SERVING_HOME`` in
its environment, so that ``home_processes()`` can find one that was started
but never recorded (a control plane killed between the two).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..home import open_private, touch_private

HOME_MARKER = "BYOM_SERVING_HOME"

# Starts argv in a new session and prints its pid, then exits: the started
# process is then nobody's child here, so it never lingers as our zombie.
_DETACH = (
    "import os, subprocess, sys\n"
    "log = open(sys.argv[1], 'ab')\n"
    "p = subprocess.Popen(sys.argv[2:], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,"
    " start_new_session=True, close_fds=True)\n"
    "print(p.pid)\n"
)


def free_port(avoid: Iterable[int] = ()) -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now, and not one of ``avoid``.

    The kernel may hand out a port again as soon as it is closed: ``avoid`` keeps a restarted
    instance off the port it died on (which the gateway may still mark as down) and off the
    ports of instances that are starting and have not bound theirs yet.
    """
    taken = set(avoid)
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in taken:
            return port
    raise OSError(f"No free port on 127.0.0.1 outside the {len(taken)} in use by byom.")


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError, OSError):
        return None
    # the command name (field 2) is in parentheses and may hold spaces
    return text[text.rfind(")") + 2 :].split()


def start_time(pid: int) -> int | None:
    """The kernel's start time of a process (clock ticks since boot), None if it is gone."""
    fields = _stat_fields(pid)
    if fields is None or fields[0] == "Z":
        return None
    return int(fields[19])


def alive(pid: int | None, start: int | None) -> bool:
    """True while the process that had this pid at this start time still runs."""
    if not pid:
        return False
    now = start_time(pid)
    return now is not None and (start is None or now == start)


@dataclass
class ProcessRef:
    pid: int
    start: int | None

    def alive(self) -> bool:
        return alive(self.pid, self.start)

    def to_dict(self) -> dict[str, int | None]:
        return {"pid": self.pid, "start": self.start}


class Child:
    """A process we watch: a Popen we started (reaped here) or an adopted pid."""

    def __init__(self, ref: ProcessRef, popen: subprocess.Popen[bytes] | None = None) -> None:
        self.ref = ref
        self.popen = popen

    @property
    def pid(self) -> int:
        return self.ref.pid

    def alive(self) -> bool:
        if self.popen is not None:
            return self.popen.poll() is None
        return self.ref.alive()

    def exit_code(self) -> int | None:
        return self.popen.returncode if self.popen is not None else None


def spawn(
    argv: Sequence[str], *, env: dict[str, str], log_path: Path, cwd: str | Path | None = None
) -> Child:
    """Start a child in its own session (a Ctrl-C to our terminal does not reach it)."""
    with open_private(log_path) as log:
        popen = subprocess.Popen(
            list(argv), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            env=env, cwd=cwd, start_new_session=True, close_fds=True,
        )
    return Child(ProcessRef(popen.pid, start_time(popen.pid)), popen)


def spawn_detached(argv: Sequence[str], *, env: dict[str, str], log_path: Path) -> ProcessRef:
    """Start a process that outlives us and is not our child."""
    touch_private(log_path)
    out = subprocess.run(
        [sys.executable, "-c", _DETACH, str(log_path), *argv],
        env=env, capture_output=True, text=True, timeout=30, check=True,
    )
    pid = int(out.stdout.strip())
    return ProcessRef(pid, start_time(pid))


def terminate(refs: Iterable[ProcessRef], *, grace_s: float = 10.0) -> None:
    """SIGTERM each still-running process, wait, then SIGKILL what is left."""
    pending = [r for r in refs if r.alive()]
    for ref in pending:
        _signal(ref.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while pending and time.monotonic() < deadline:
        time.sleep(0.05)
        pending = [r for r in pending if r.alive()]
    for ref in pending:
        _signal(ref.pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while pending and time.monotonic() < deadline:
        time.sleep(0.05)
        pending = [r for r in pending if r.alive()]


def kill_group(ref: ProcessRef) -> None:
    """SIGKILL the process group that a process started by ``spawn`` leads: its children (gunicorn's
    workers) too, also after the process itself has died.

    A pid that is still a group's id is never given to another process; so when the pid now names
    another process, the group is gone and nothing is sent.
    """
    now = start_time(ref.pid)
    if now is not None and ref.start is not None and now != ref.start:
        return
    try:
        os.killpg(ref.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _signal(pid: int, sig: signal.Signals) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def home_processes(home: Path) -> list[ProcessRef]:
    """Every running process started for this workspace home (found by its environment marker)."""
    marker = f"{HOME_MARKER}={Path(home).resolve()}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if marker in environ.split(b"\0"):
            start = start_time(int(entry.name))
            if start is not None:
                found.append(ProcessRef(int(entry.name), start))
    return found


def parent_pid(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return int(fields[1]) if fields else None
