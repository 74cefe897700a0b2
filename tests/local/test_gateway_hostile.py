"""Hostile requests to the gateway's HTTP server, over raw sockets on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path

import pytest

from .gateway_server import exchange, read_response, running_gateway

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize("injected", [b"abc\rSet-Cookie: evil=1", b"abc\nSet-Cookie: evil=1", b"abc\x00def",
                                      b"abc\x1bdef"])
def test_a_control_character_in_a_header_value_is_refused_and_never_echoed(tmp_path: Path, injected: bytes) -> None:
    with running_gateway(tmp_path / "home") as gw, gw.connect() as sock:
        answer = exchange(sock, b"POST /endpoints/chat/score HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
                                b"x-ms-client-request-id: " + injected + b"\r\n\r\n{}")
    head = answer.partition(b"\r\n\r\n")[0]
    assert head.startswith(b"HTTP/1.1 400 "), answer
    # not a bare b"abc": a random x-request-id holds it now and then
    assert b"evil" not in head and b"Set-Cookie" not in head and b": abc" not in head, head
    assert b"x-ms-client-request-id" in answer.partition(b"\r\n\r\n")[2], "the error names the header"


def test_a_clean_client_request_id_is_still_echoed(tmp_path: Path) -> None:
    with running_gateway(tmp_path / "home") as gw, gw.connect() as sock:
        buffered = bytearray()
        sock.sendall(b"POST /endpoints/chat/score HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
                     b"x-ms-client-request-id: my-id-1\r\n\r\n{}")
        head, _ = read_response(sock, buffered)
    assert head.startswith(b"HTTP/1.1 404 ") and b"\r\nx-ms-client-request-id: my-id-1\r\n" in head


def test_a_header_name_that_is_not_a_token_is_refused(tmp_path: Path) -> None:
    with running_gateway(tmp_path / "home") as gw, gw.connect() as sock:
        answer = exchange(sock, b"GET /-/health HTTP/1.1\r\nHost: x\r\nBad\x01Name: 1\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400 "), answer


def test_a_head_answer_has_no_body_and_the_next_answer_on_the_connection_is_whole(tmp_path: Path) -> None:
    with running_gateway(tmp_path / "home") as gw, gw.connect() as sock:
        buffered = bytearray()
        sock.sendall(b"HEAD /-/health HTTP/1.1\r\nHost: x\r\n\r\n"
                     b"HEAD /endpoints/chat/score HTTP/1.1\r\nHost: x\r\n\r\n"
                     b"GET /-/health HTTP/1.1\r\nHost: x\r\n\r\n")
        first, _ = read_response(sock, buffered, head_only=True)
        second, _ = read_response(sock, buffered, head_only=True)
        third, body = read_response(sock, buffered)
    assert first.startswith(b"HTTP/1.1 200 ") and second.startswith(b"HTTP/1.1 405 "), (first, second)
    assert third.startswith(b"HTTP/1.1 200 "), third  # not the bodies of the HEAD answers
    assert body.startswith(b'{"ok": true')
