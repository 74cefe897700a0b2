"""How long invoke keeps an endpoint's scoring URI and credential."""

from __future__ import annotations

from byom.core.entities import Endpoint, EndpointKeys, EndpointToken
from byom.core.scoring_targets import KEEP_S, TOKEN_MARGIN_S, ScoringTargets


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_keys_are_kept_a_while_and_tokens_until_their_refresh() -> None:
    clock, reads = Clock(), []
    targets = ScoringTargets(clock=clock)

    def read_keys() -> tuple[Endpoint, EndpointKeys]:
        reads.append("keys")
        return Endpoint(name="e", scoring_uri="http://x/score"), EndpointKeys("k1", "k2")

    first = targets.get("e", read_keys)
    assert (first.authorization, first.cached) == ("Bearer k1", False)
    clock.now += KEEP_S - 1
    assert targets.get("e", read_keys).cached and reads == ["keys"]
    clock.now += 2
    assert not targets.get("e", read_keys).cached and reads == ["keys", "keys"]
    targets.forget("e")
    assert not targets.get("e", read_keys).cached

    def read_token() -> tuple[Endpoint, EndpointToken]:
        return Endpoint(name="t"), EndpointToken("tok", expires_at=clock.now + 200)

    token = targets.get("t", read_token)
    assert token.authorization == "Bearer tok" and token.until == clock.now + 200 - TOKEN_MARGIN_S
    soon = EndpointToken("tok", expires_at=clock.now + 600, refresh_after=clock.now + 30)
    refresh = ScoringTargets(clock=clock).get("t", lambda: (Endpoint(name="t"), soon))
    assert refresh.until == clock.now + 30
    unknown = ScoringTargets(clock=clock).get("t", lambda: (Endpoint(name="t"), EndpointToken("tok")))
    assert unknown.until == clock.now, "a token of unknown lifetime is read again every time"
