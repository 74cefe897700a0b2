"""A fake clock and fake model-server processes for the control plane's state machines."""

from __future__ import annotations

from dataclasses import dataclass, field

from byom.core.local.control_plane.instances import Instance
from byom.core.local.processes import ProcessRef


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class FakeProcess:
    pid: int
    running: bool = True
    code: int | None = None

    @property
    def ref(self) -> ProcessRef:
        return ProcessRef(self.pid, 1)

    def alive(self) -> bool:
        return self.running

    def exit_code(self) -> int | None:
        return self.code

    def exit(self, code: int | None) -> None:
        self.running, self.code = False, code


@dataclass
class Answered:
    ok: bool

    def done(self) -> bool:
        return True

    def result(self) -> bool:
        return self.ok


@dataclass
class FakeRuntime:
    healthy: bool = True  # what probes answer
    start_error: Exception | None = None
    tail: str = "Traceback: init() raised ValueError"
    idle: bool = False  # what the gateway says of a draining instance
    exits_on_term: bool = True
    processes: list[FakeProcess] = field(default_factory=list)
    killed: list[int] = field(default_factory=list)
    termed: list[int] = field(default_factory=list)
    logged: list[str] = field(default_factory=list)
    next_port: int = 9000
    timeouts: dict[int, int] = field(default_factory=dict)  # what the gateway says: requests answered 408, by port
    gateway_answers: bool = True  # False: the gateway does not say how many

    def start(self, inst: Instance, avoid_ports: set[int]) -> tuple[int, FakeProcess]:
        if self.start_error is not None:
            raise self.start_error
        while self.next_port in avoid_ports:
            self.next_port += 1
        proc = FakeProcess(100 + len(self.processes))
        self.processes.append(proc)
        return self.next_port, proc

    def probe(self, port: int, timeout_s: float) -> Answered:
        return Answered(self.healthy)

    def kill_group(self, proc: FakeProcess) -> None:
        self.killed.append(proc.pid)
        proc.exit(None)

    def terminate(self, proc: FakeProcess) -> None:
        self.termed.append(proc.pid)
        if self.exits_on_term:
            proc.exit(0)

    def log_tail(self, inst: Instance) -> str:
        return self.tail

    def log_line(self, inst: Instance, line: str) -> None:
        self.logged.append(line)

    def timed_out(self, port: int) -> int | None:
        return self.timeouts.get(port, 0) if self.gateway_answers else None

    def drained(self, port: int, since: float) -> bool:
        return self.idle
