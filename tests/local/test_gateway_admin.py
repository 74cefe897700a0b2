"""The gateway's admin routes answer only callers holding the home's admin token: the control plane and library."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest
from byom.core.local.control_plane.gateway_supervisor import GatewaySupervisor
from byom.core.local.gateway import admin_token
from byom.core.local.gateway.http_server import Request, Response
from byom.core.local.processes import start_time
from byom.core.local.serving import LocalServing
from byom.core.local.serving_files import ServingFiles, write_json

from .gateway_server import read_response, running_gateway

pytestmark = pytest.mark.timeout(60)

ADMIN = [("POST", "/-/reload"), ("POST", "/-/flush"), ("GET", "/-/in-flight"),
         ("POST", "/%2D/reload"), ("POST", "/%2d/%72eload"), ("POST", "/-%2Freload"), ("POST", "/%2D%2F%66lush"),
         ("GET", "/%2D/in-flight?x=1")]


def ask(sock: socket.socket, method: str, path: str, extra: bytes = b"") -> bytes:
    sock.sendall(f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n".encode() + extra + b"\r\n")
    head, _ = read_response(sock, bytearray())
    return head


def test_admin_routes_refuse_callers_without_the_token_also_through_encoded_paths(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with running_gateway(home) as gw, gw.connect() as sock:
        token = admin_token.read_token(ServingFiles(home).run)
        assert token and len(token) >= 40
        for method, path in ADMIN:
            assert ask(sock, method, path).startswith(b"HTTP/1.1 401 "), path
            assert ask(sock, method, path, b"x-byom-admin-token: " + token[:-1].encode() + b"\r\n").startswith(
                b"HTTP/1.1 401 "), path
            assert ask(sock, method, path, f"X-Byom-Admin-Token: {token}\r\n".encode()).startswith(
                b"HTTP/1.1 200 "), path
        # decoded once: a doubly encoded path is no admin route at all
        assert ask(sock, "POST", "/%252D/reload").startswith(b"HTTP/1.1 404 ")
        for open_page in ("/-/health", "/metrics"):
            assert ask(sock, "GET", open_page).startswith(b"HTTP/1.1 200 "), open_page
    mode = stat.S_IMODE(os.stat(admin_token.token_path(ServingFiles(home).run)).st_mode)
    assert mode == 0o600, oct(mode)


def test_the_control_plane_and_the_library_reach_the_admin_routes(tmp_path: Path) -> None:
    files = ServingFiles(tmp_path / "home")
    with running_gateway(files.home) as gw:
        calls: list[str] = []
        for path, (method, page) in list(gw.gateway.admin.items()):
            async def counted(request: Request, page: object = page, path: str = path) -> Response:
                calls.append(path)
                return await page(request)  # type: ignore[operator, no-any-return] # the page it replaces

            gw.gateway.admin[path] = (method, counted)
        write_json(files.gateway, {"pid": os.getpid(), "start": start_time(os.getpid()), "port": gw.port})
        supervisor = GatewaySupervisor(files)
        supervisor.poke()
        assert supervisor.last_poke > 0, "the control plane's reload was refused"
        assert supervisor.in_flight(1234) == 0
        serving = LocalServing(files.home)
        serving._tell_gateway("/-/flush")
        serving._tell_gateway("/-/reload")
    assert calls == ["/-/reload", "/-/in-flight", "/-/flush", "/-/reload"]
