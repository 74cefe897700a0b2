"""The one place where Azure's errors become byom's (see core/errors.py).

``azure_errors(what)`` wraps every call the Azure workspace makes into the
SDK; ``translate(exc, what)`` does the mapping, each with a next step. What
the service's message says is read before its status code, because Azure
sends one failure under several codes (a quota under 400, 409 or 429; a name
taken in the region under 400 or 409)::

    azure.core.exceptions / azure.ai.ml.exceptions      byom
    ClientAuthenticationError (no credential, expired)  AuthFailed     az login
    HttpResponseError 401                               AuthFailed     az login
    HttpResponseError 403                               AuthFailed     the role to ask for
    any status, the message names a quota               BackendError   request quota
    any status, an endpoint name taken in the region    AlreadyExists  pick another name
    ResourceNotFoundError, 404                          NotFound       (the workspace's names,
                                                                        when it is what is missing)
    ResourceExistsError, 409 "already exists"           AlreadyExists  by what exists: a new version, ...
    ResourceExistsError, 409                            Conflict       wait for the running operation
    HttpResponseError 429                               BackendError   wait and try again
    HttpResponseError 400                               InvalidInput
    ServiceRequestError (no connection)                 BackendError   network
    ValidationException (the SDK refused the input)     InvalidInput
    any other HttpResponseError / MlException           BackendError
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from ..errors import AlreadyExists, AuthFailed, BackendError, ByomError, Conflict, InvalidInput, NotFound

SIGN_IN = ("Sign in with 'az login' (or set AZURE_CLIENT_ID, AZURE_TENANT_ID and AZURE_CLIENT_SECRET "
           "for a service principal), then try again.")
ROLE = ("Ask the workspace's owner for the 'AzureML Data Scientist' role on it "
        "(endpoints and deployments need it; reading needs 'Reader').")
QUOTA = ("Request more quota for this VM family in the workspace's region "
         "(Azure portal > Machine Learning > Quota), or pick a smaller instance_type or instance_count.")
NETWORK = "Check the network connection (and any proxy or private endpoint) to Azure, then try again."
NAME_TAKEN = ("Endpoint names are unique per Azure region, across every subscription: pick another name "
              "(for example with your team or project in it).")
NEW_VERSION = ("Versions of models and environments cannot change once registered: leave out --version "
               "to get the next one, or pick another.")
BUSY = ("Another operation on it is still running: wait until its provisioning state is Succeeded or Failed "
        "('byom online-endpoint show' / 'byom online-deployment show'), then try again.")
THROTTLED = ("Azure Resource Manager is throttling requests to this subscription: wait a minute "
             "(the message says how long), then try again.")
NO_WORKSPACE = ("Check the subscription, resource group and workspace name ('az ml workspace list -g GROUP' "
                "lists a group's workspaces), or download config.json again from the workspace's page in "
                "Azure ML studio.")

_QUOTA = re.compile(r"\bquota\b", re.IGNORECASE)
# "There is already an endpoint with this name, Endpoint name needs to be unique within a region." (online)
# "The specified endpoint name 'x' is not available. Endpoint names must be unique within the region." (batch)
_NAME_TAKEN = re.compile(r"unique within (a|the) region|already an endpoint with this name", re.IGNORECASE)
_WORKSPACE_MISSING = {"ParentResourceNotFound", "ResourceGroupNotFound", "SubscriptionNotFound"}
_SUBJECTS = re.compile(r"\b(deployment|endpoint|model|environment)s?\b", re.IGNORECASE)


def _service_message(exc: Exception) -> str:
    error = getattr(exc, "error", None)
    message = getattr(error, "message", None) or getattr(exc, "message", None) or str(exc)
    return " ".join(str(message).split())[:500]


def _service_code(exc: Exception) -> str:
    return str(getattr(getattr(exc, "error", None), "code", None) or "")


def _subject(what: str, message: str) -> str:
    """What the failed call was about: 'deployment', 'endpoint', 'model', 'environment' or ''."""
    found = _SUBJECTS.search(what) or _SUBJECTS.search(message)
    return found.group(1).lower() if found else ""


def _already_exists_hint(subject: str) -> str | None:
    if subject in ("model", "environment"):
        return NEW_VERSION
    if subject == "endpoint":
        return NAME_TAKEN
    return None


def translate(exc: Exception, what: str) -> ByomError:
    """The byom error for an exception raised while doing ``what`` (e.g. "get endpoint 'chat'")."""
    from azure.ai.ml.exceptions import MlException, ValidationException
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ResourceExistsError,
        ResourceNotFoundError,
        ServiceRequestError,
    )

    if isinstance(exc, ByomError):
        return exc
    message = _service_message(exc)
    status = getattr(exc, "status_code", None)
    from_service = isinstance(exc, HttpResponseError)
    if isinstance(exc, ClientAuthenticationError) and status not in (403,):
        return AuthFailed(f"Azure refused the credentials while trying to {what}: {message}", hint=SIGN_IN)
    if status == 401:
        return AuthFailed(f"Azure refused the credentials while trying to {what}: {message}", hint=SIGN_IN)
    if status == 403:
        return AuthFailed(f"Not allowed to {what}: {message}", hint=ROLE)
    # what the message says first: the same failure comes under several status codes
    if from_service and _QUOTA.search(message):
        return BackendError(f"Could not {what}: not enough quota ({message}).", hint=QUOTA)
    if from_service and _NAME_TAKEN.search(message):
        return AlreadyExists(f"Could not {what}: {message}", hint=NAME_TAKEN)
    if isinstance(exc, ResourceNotFoundError) or status == 404:
        hint = NO_WORKSPACE if _service_code(exc) in _WORKSPACE_MISSING else None
        return NotFound(f"Could not {what}: Azure ML says it does not exist ({message}).", hint=hint)
    if isinstance(exc, ResourceExistsError) or status == 409:
        subject = _subject(what, message)
        if "already exists" in message.lower() or "taken" in message.lower():
            return AlreadyExists(f"Could not {what}: {message}", hint=_already_exists_hint(subject))
        return Conflict(f"Could not {what}: {message}",
                        hint=BUSY if subject in ("endpoint", "deployment") else None)
    if status == 429:
        return BackendError(f"Azure is throttling requests, so could not {what}: {message}", hint=THROTTLED)
    if status == 400:
        return InvalidInput(f"Azure ML refused to {what}: {message}")
    if isinstance(exc, ServiceRequestError):
        return BackendError(f"Could not reach Azure to {what}: {message}", hint=NETWORK)
    if isinstance(exc, ValidationException):
        return InvalidInput(f"Could not {what}: {message}")
    if isinstance(exc, HttpResponseError | MlException):
        return BackendError(f"Azure ML failed to {what}: {message}")
    return BackendError(f"Could not {what}: {type(exc).__name__}: {message}")


@contextmanager
def azure_errors(what: str) -> Iterator[None]:
    try:
        yield
    except ByomError:
        raise
    except Exception as exc:
        from azure.ai.ml.exceptions import MlException
        from azure.core.exceptions import AzureError

        if isinstance(exc, AzureError | MlException):
            raise translate(exc, what) from exc
        raise
