"""Consumer keys: made here, kept only as their sha256, matched in constant time.

A key is 32 random bytes (``secrets.token_urlsafe``) behind the prefix
``byomc-``, so a leaked one is recognisable as byom's. A key that random
needs no slow hash: sha256 of it cannot be turned back, and the stored hash
is compared with ``hmac.compare_digest`` against every consumer of the
endpoint, whatever the first comparison gives.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable

PREFIX = "byomc-"
STORED = "key_sha256"  # the field of a consumer's stored document that holds the hash of its key


def new_key() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def key_sha256(key: str) -> str:
    """The hex sha256 of a key, as the store keeps it."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def presented_key(authorization: str | None) -> str | None:
    """The key of ``Authorization: Bearer <key>`` (the scheme in any case), or None."""
    if not authorization:
        return None
    scheme, _, given = authorization.strip().partition(" ")
    given = given.strip()
    return given if scheme.lower() == "bearer" and given else None


def matching(authorization: str | None, hashes: Iterable[tuple[str, bytes]]) -> str | None:
    """The name of the consumer whose key ``authorization`` carries (``hashes``: name and raw sha256), or None."""
    given = presented_key(authorization)
    if given is None:
        return None
    digest = hashlib.sha256(given.encode("utf-8", "replace")).digest()
    found = None
    for name, wanted in hashes:
        if hmac.compare_digest(digest, wanted) and found is None:
            found = name
    return found
