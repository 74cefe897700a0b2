"""The one place where Azure's errors become byom's (see core/errors.py).

``azure_errors(what)`` wraps every call the Azure workspace makes into the
SDK; ``translate(exc, what)`` does the mapping, each with a next step::

    azure.core.exceptions / azure.ai.ml.exceptions      byom
    ClientAuthenticationError (no credential, expired)  AuthFailed    az login
    HttpResponseError 401                               AuthFailed    az login
    HttpResponseError 403                               AuthFailed    the role to ask for
    ResourceNotFoundError, 404                          NotFound
    ResourceExistsError, 409                            AlreadyExists / Conflict
    HttpResponseError 400 naming a quota                BackendError  request quota
    HttpResponseError 400                               InvalidInput
    ServiceRequestError (no connection)                 BackendError  network
    ValidationException (the SDK refused the input)     InvalidInput
    any other HttpResponseError / MlException           BackendError
"""

from __future__ import annotations

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


def _service_message(exc: Exception) -> str:
    error = getattr(exc, "error", None)
    message = getattr(error, "message", None) or getattr(exc, "message", None) or str(exc)
    return " ".join(str(message).split())[:500]


def translate(exc: Exception, what: str) -> ByomError:
    """The byom error for an exception raised while doing ``what`` (e.g. "get endpoint 'chat'")."""
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ResourceExistsError,
        ResourceNotFoundError,
        ServiceRequestError,
    )

    try:
        from azure.ai.ml.exceptions import MlException, ValidationException
    except ImportError:  # pragma: no cover - azure-ai-ml is a dependency
        MlException = ValidationException = ()  # type: ignore[assignment,misc]

    if isinstance(exc, ByomError):
        return exc
    message = _service_message(exc)
    status = getattr(exc, "status_code", None)
    if isinstance(exc, ClientAuthenticationError) and status not in (403,):
        return AuthFailed(f"Azure refused the credentials while trying to {what}: {message}", hint=SIGN_IN)
    if isinstance(exc, ResourceNotFoundError) or status == 404:
        return NotFound(f"Could not {what}: Azure ML says it does not exist ({message}).")
    if isinstance(exc, ResourceExistsError) or status == 409:
        if "already exists" in message.lower() or "taken" in message.lower():
            return AlreadyExists(f"Could not {what}: {message}",
                                 hint="Endpoint names are unique per Azure region: choose another name.")
        return Conflict(f"Could not {what}: {message}")
    if status == 401:
        return AuthFailed(f"Azure refused the credentials while trying to {what}: {message}", hint=SIGN_IN)
    if status == 403:
        return AuthFailed(f"Not allowed to {what}: {message}", hint=ROLE)
    if isinstance(exc, HttpResponseError) and "quota" in message.lower():
        return BackendError(f"Could not {what}: not enough quota ({message}).", hint=QUOTA)
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
        from azure.core.exceptions import AzureError

        try:
            from azure.ai.ml.exceptions import MlException
        except ImportError:  # pragma: no cover
            MlException = AzureError  # type: ignore[assignment,misc]
        if isinstance(exc, AzureError | MlException):
            raise translate(exc, what) from exc
        raise
