"""A deployment's outcome, written to its document in one place.

Two writers report how a change of a deployment ended: the waiter of
``create_or_update_deployment`` / ``scale_deployment`` (what its Serving
observed) and the local control plane (what it carried out, also for a
change nobody waits for). Both go through :func:`record_outcome`, so both
obey one rule: the change the outcome belongs to is named by the document's
``updated_at`` (its *token*); a deleted document, or one changed again since,
is left to the newer change.
"""

from __future__ import annotations

from typing import Any

from .entities import AuditRecord, ProvisioningState, utcnow
from .store import Txn

REASON_AUDITED_CHARS = 500


def deployment_key(endpoint_name: str, deployment_name: str) -> str:
    """A deployment document's name in the store."""
    return f"{endpoint_name}/{deployment_name.lower()}"


def record_outcome(txn: Txn, endpoint_name: str, deployment_name: str, token: str | None, state: str, reason: str,
                   actor: str | None) -> dict[str, Any] | None:
    """Write ``state`` and ``reason`` to the deployment's document if it still holds the change ``token`` names.

    Returns the document as it now stands, or None when it was deleted or changed again since (the
    newer change decides). A state that ends a change (Succeeded, Failed) leaves an audit record
    by ``actor`` the first time it is written; with no actor the caller audits it (the Workspace
    does, for the change it waited for).
    """
    key = deployment_key(endpoint_name, deployment_name)
    doc = txn.get("deployment", key)
    if doc is None or doc.get("updated_at") != token:
        return None
    if (doc.get("provisioning_state"), doc.get("state_reason")) == (state, reason):
        return doc
    doc["provisioning_state"], doc["state_reason"] = str(state), reason
    txn.put("deployment", key, 0, doc)
    if actor is not None and state in (ProvisioningState.SUCCEEDED, ProvisioningState.FAILED):
        txn.audit(AuditRecord(at=utcnow(), actor=actor, action="deployment.state",
                              target=f"deployment/{endpoint_name}/{doc['name']}",
                              after={"provisioning_state": str(state), "reason": reason[-REASON_AUDITED_CHARS:]}))
    return doc


def record_note(txn: Txn, endpoint_name: str, deployment_name: str, token: str | None, reason: str) -> None:
    """Say what a deployment waits for (``state_reason``), leaving its state as it is; same rule as above."""
    key = deployment_key(endpoint_name, deployment_name)
    doc = txn.get("deployment", key)
    if doc is None or doc.get("updated_at") != token or doc.get("state_reason") == reason:
        return
    doc["state_reason"] = reason
    txn.put("deployment", key, 0, doc)
