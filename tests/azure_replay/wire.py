"""The wire under the replay: a requests adapter instead of sockets.

azure-core's real ``RequestsTransport`` runs on a ``requests.Session`` whose
``https://`` adapter hands each prepared request to the fake service and
turns its answer into a ``requests.Response``. Everything above the socket
(azure-core policies, the SDK's serializers and pollers, azure-storage-blob)
is the real code.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict


@dataclass
class Call:
    """One request as the service saw it."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""

    @property
    def path(self) -> str:
        return urlsplit(self.url).path


@dataclass
class Reply:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


Handler = Callable[[Call], Reply]


class ReplayAdapter(BaseAdapter):
    def __init__(self, handler: Handler) -> None:
        super().__init__()
        self.handler = handler

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):
        body = request.body
        if body is None:
            data = b""
        elif isinstance(body, str):
            data = body.encode("utf-8")
        elif isinstance(body, bytes | bytearray):
            data = bytes(body)
        else:  # a file-like or an iterator of chunks (blob uploads)
            data = body.read() if hasattr(body, "read") else b"".join(body)
        reply = self.handler(Call(request.method, request.url, dict(request.headers), data))
        response = requests.Response()
        response.status_code = reply.status
        response.reason = _REASONS.get(reply.status, "")
        response.headers = CaseInsensitiveDict({"Content-Length": str(len(reply.body)), **reply.headers})
        response.raw = io.BytesIO(reply.body)
        response.url = request.url
        response.request = request
        response.encoding = "utf-8"
        return response

    def close(self) -> None:
        pass


def replay_transport(handler: Handler):
    """An azure-core ``RequestsTransport`` whose requests reach ``handler``."""
    from azure.core.pipeline.transport import RequestsTransport

    session = requests.Session()
    session.trust_env = False
    adapter = ReplayAdapter(handler)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return RequestsTransport(session=session, session_owner=False)


_REASONS = {200: "OK", 201: "Created", 202: "Accepted", 204: "No Content", 206: "Partial Content",
            400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 409: "Conflict",
            424: "Failed Dependency", 500: "Internal Server Error"}
