"""The workspace's storage account, as much of the Blob REST API as the SDK uses.

Put Blob, Get Blob (ranged), Get Blob Properties, Set Blob Metadata and List
Blobs (XML), with shared-key or SAS authorization required on each request.
The default datastore's container exists from the start; the service makes
a container per pending upload (code snapshots) with ``new_container``.
"""

from __future__ import annotations

import hashlib
import re
import threading
import uuid
from dataclasses import dataclass, field
from email.utils import formatdate
from urllib.parse import parse_qs, unquote, urlsplit
from xml.sax.saxutils import escape

from .wire import Call, Reply

ACCOUNT = "byomreplaystore"
CONTAINER = "azureml-blobstore-00000000-0000-0000-0000-000000000000"
ACCOUNT_KEY = "cmVwbGF5LWtleS1ub3QtYS1zZWNyZXQtcmVwbGF5LWtleS1ub3QtYS1zZWNyZXQ="  # base64, as listSecrets gives
HOST = f"{ACCOUNT}.blob.core.windows.net"


@dataclass
class Blob:
    data: bytes
    metadata: dict[str, str] = field(default_factory=dict)
    etag: str = ""
    modified: str = ""


class BlobAccount:
    def __init__(self) -> None:
        self.containers: dict[str, dict[str, Blob]] = {CONTAINER: {}}
        self._lock = threading.Lock()

    def new_container(self) -> str:
        name = f"pending-{uuid.uuid4().hex[:12]}"
        with self._lock:
            self.containers[name] = {}
        return name

    def put(self, name: str, data: bytes, container: str = CONTAINER) -> None:
        """A blob written by something other than byom (a training job, azcopy)."""
        blob = Blob(data)
        self._stamp(blob)
        with self._lock:
            self.containers.setdefault(container, {})[name] = blob

    def files_under(self, prefix: str, container: str = CONTAINER) -> dict[str, bytes]:
        with self._lock:
            blobs = self.containers.get(container, {})
            return {name: b.data for name, b in blobs.items() if name.startswith(prefix)}

    def handle(self, call: Call) -> Reply:
        parts = urlsplit(call.url)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        if "Authorization" not in call.headers and "sig" not in query:
            return _error(403, "NoAuthenticationInformation", "Server failed to authenticate the request.")
        container, _, name = unquote(parts.path.lstrip("/")).partition("/")
        with self._lock:
            self.blobs = self.containers.get(container)
            if self.blobs is None:
                return _error(404, "ContainerNotFound", "The specified container does not exist.")
            if not name and query.get("comp") == "list":
                return self._list(container, query.get("prefix", ""))
            if call.method == "PUT" and query.get("comp") == "metadata":
                blob = self.blobs.get(name)
                if blob is None:
                    return _error(404, "BlobNotFound", "The specified blob does not exist.")
                blob.metadata = _metadata(call.headers)
                return Reply(200, self._stamp(blob))
            if call.method == "PUT" and not query.get("comp"):
                if call.headers.get("x-ms-blob-type") != "BlockBlob":
                    return _error(400, "InvalidHeaderValue", "x-ms-blob-type must be BlockBlob.")
                if call.headers.get("If-None-Match") == "*" and name in self.blobs:
                    return _error(409, "BlobAlreadyExists", "The specified blob already exists.")
                blob = Blob(call.body, _metadata(call.headers))
                self.blobs[name] = blob
                return Reply(201, {**self._stamp(blob), "Content-MD5": "", "x-ms-request-server-encrypted": "true"})
            blob = self.blobs.get(name)
            if call.method == "HEAD":
                if blob is None:
                    return Reply(404, {"x-ms-error-code": "BlobNotFound"})
                return Reply(200, {**self._properties(blob), "Content-Length": str(len(blob.data))})
            if call.method == "GET":
                if blob is None:
                    return _error(404, "BlobNotFound", "The specified blob does not exist.")
                return self._download(blob, call.headers.get("x-ms-range") or call.headers.get("Range"))
        return _error(400, "UnsupportedHttpVerb", f"{call.method} {parts.path} is not part of this replay.")

    def _stamp(self, blob: Blob) -> dict[str, str]:
        digest = hashlib.sha1(blob.data + repr(sorted(blob.metadata.items())).encode()).hexdigest()
        blob.etag = '"0x' + digest[:15].upper() + '"'
        blob.modified = formatdate(usegmt=True)
        return {"ETag": blob.etag, "Last-Modified": blob.modified, "x-ms-version": "2025-01-05"}

    def _properties(self, blob: Blob) -> dict[str, str]:
        headers = {"ETag": blob.etag, "Last-Modified": blob.modified, "x-ms-blob-type": "BlockBlob",
                   "Content-Type": "application/octet-stream", "x-ms-creation-time": blob.modified,
                   "x-ms-version": "2025-01-05"}
        headers.update({f"x-ms-meta-{k}": v for k, v in blob.metadata.items()})
        return headers

    def _download(self, blob: Blob, range_header: str | None) -> Reply:
        size = len(blob.data)
        match = re.match(r"bytes=(\d+)-(\d*)", range_header or "")
        if not match or size == 0:
            return Reply(200, self._properties(blob), blob.data)
        start = int(match.group(1))
        end = min(int(match.group(2)) if match.group(2) else size - 1, size - 1)
        headers = {**self._properties(blob), "Content-Range": f"bytes {start}-{end}/{size}"}
        return Reply(206, headers, blob.data[start : end + 1])

    def _list(self, container: str, prefix: str) -> Reply:
        items = []
        for name in sorted(n for n in self.blobs if n.startswith(prefix)):
            blob = self.blobs[name]
            meta = "".join(f"<{k}>{escape(v)}</{k}>" for k, v in blob.metadata.items())
            items.append(
                f"<Blob><Name>{escape(name)}</Name><Properties><Creation-Time>{blob.modified}</Creation-Time>"
                f"<Last-Modified>{blob.modified}</Last-Modified><Etag>{escape(blob.etag)}</Etag>"
                f"<Content-Length>{len(blob.data)}</Content-Length>"
                f"<Content-Type>application/octet-stream</Content-Type><BlobType>BlockBlob</BlobType>"
                f"</Properties><Metadata>{meta}</Metadata></Blob>"
            )
        xml = (
            '<?xml version="1.0" encoding="utf-8"?>'
            f'<EnumerationResults ServiceEndpoint="https://{HOST}/" ContainerName="{container}">'
            f"<Prefix>{escape(prefix)}</Prefix><Blobs>{''.join(items)}</Blobs><NextMarker /></EnumerationResults>"
        )
        return Reply(200, {"Content-Type": "application/xml", "x-ms-version": "2025-01-05"}, xml.encode())


def _metadata(headers: dict[str, str]) -> dict[str, str]:
    return {k[len("x-ms-meta-"):]: v for k, v in headers.items() if k.lower().startswith("x-ms-meta-")}


def _error(status: int, code: str, message: str) -> Reply:
    body = f'<?xml version="1.0" encoding="utf-8"?><Error><Code>{code}</Code><Message>{message}</Message></Error>'
    return Reply(status, {"x-ms-error-code": code, "Content-Type": "application/xml"}, body.encode())
