"""Azure's exceptions → byom's, each with the next step a user can take."""

import pytest
from azure.ai.ml.exceptions import ValidationException
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
    ServiceRequestError,
)
from azure.identity import CredentialUnavailableError
from byom.core.azure.errors import azure_errors, translate
from byom.core.errors import AlreadyExists, AuthFailed, BackendError, Conflict, InvalidInput, NotFound


def http_error(status: int, message: str, cls: type = HttpResponseError) -> HttpResponseError:
    error = cls(message=message)
    error.status_code = status
    return error


@pytest.mark.parametrize(
    ("exc", "kind", "hint_has"),
    [
        (CredentialUnavailableError("DefaultAzureCredential failed to retrieve a token"), AuthFailed, "az login"),
        (http_error(401, "token expired", ClientAuthenticationError), AuthFailed, "az login"),
        (http_error(403, "The client does not have authorization to perform action"), AuthFailed,
         "AzureML Data Scientist"),
        (http_error(404, "Endpoint chat not found.", ResourceNotFoundError), NotFound, None),
        (http_error(409, "Endpoint name chat already exists in region westeurope.", ResourceExistsError),
         AlreadyExists, "unique per Azure region"),
        (http_error(400, "Not enough quota available for Standard_NC24 in SubscriptionId x."), BackendError, "quota"),
        (http_error(400, "Traffic must add up to 0 or 100."), InvalidInput, None),
        (ServiceRequestError("Failed to establish a new connection"), BackendError, "network"),
        (ValidationException(message="scoring script can't be empty", no_personal_data_message="x"),
         InvalidInput, None),
    ],
)
def test_each_azure_error_becomes_a_core_error_with_a_next_step(exc, kind, hint_has) -> None:
    error = translate(exc, "create endpoint 'chat'")
    assert type(error) is kind
    assert "create endpoint 'chat'" in error.message
    if hint_has:
        assert hint_has in error.hint


def arm_error(status: int, code: str, message: str) -> HttpResponseError:
    """What azure-core raises for an answer with ARM's error body (``{"error": {"code", "message"}}``)."""
    import json

    from azure.core.pipeline.transport import HttpResponse

    class Response(HttpResponse):
        def __init__(self) -> None:
            super().__init__(None, None)
            self.status_code, self.reason = status, ""
            self.headers = {"Content-Type": "application/json", "x-ms-error-code": code}
            self.content_type = "application/json"

        def body(self) -> bytes:
            error = {"code": code, "message": message, "details": [], "additionalInfo": []}
            return json.dumps({"error": error}).encode()

    cls = {404: ResourceNotFoundError, 409: ResourceExistsError}.get(status, HttpResponseError)
    return cls(response=Response())


NAME_TAKEN = ("There is already an endpoint with this name, Endpoint name needs to be unique within a region. "
              "Try some other name.")
CORE_QUOTA = ("Operation could not be completed as it results in exceeding approved standardDSv2Family Cores quota. "
              "Additional details - Deployment Model: Resource Manager, Location: westeurope, Current Limit: 10, "
              "Current Usage: 8, Additional Required: 4, (Minimum) New Limit Required: 12.")
THROTTLED = ("Number of 'write' requests for subscription '00000000-1111-2222-3333-444444444444' actor "
             "'11111111-2222-3333-4444-555555555555' exceeded. Please try again after '11' seconds after additional "
             "tokens are available. Refer to https://aka.ms/arm-throttling")


@pytest.mark.parametrize(
    ("what", "status", "code", "message", "kind", "hint_has", "hint_lacks"),
    [
        # a name taken in the region comes as a 400, and must not read as a bad input
        ("create endpoint 'chat'", 400, "UserError", NAME_TAKEN, AlreadyExists, "unique per Azure region", None),
        ("create endpoint 'chat'", 400, "UserError",
         "The specified endpoint name 'chat' is not available. Endpoint names must be unique within the region. "
         "Please choose a different name and try again.", AlreadyExists, "pick another name", None),
        # another clash is about what clashed: a model version is not an endpoint name
        ("register model clf:3", 409, "UserError",
         "Model clf:3 already exists and its modelUri cannot change: assets are immutable.",
         AlreadyExists, "--version", "region"),
        ("create environment scoring:2", 409, "UserError",
         "Environment scoring:2 already exists and its condaFile cannot change: assets are immutable.",
         AlreadyExists, "--version", "region"),
        ("set the traffic of endpoint 'chat'", 409, "Conflict",
         "Endpoint chat is in provisioning state Updating: a new operation cannot start until it ends.",
         Conflict, "still running", "region"),
        # quota first, under whatever status it comes
        ("create deployment 'blue' of endpoint 'chat'", 409, "OperationNotAllowed", CORE_QUOTA, BackendError,
         "Request more quota", None),
        ("create deployment 'blue' of endpoint 'chat'", 429, "TooManyRequests",
         "The request is exceeding quota limits for the subscription.", BackendError, "Request more quota", None),
        ("create deployment 'blue' of endpoint 'chat'", 400, "BadArgument",
         "Not enough quota available for Standard_NC24ads_A100_v4 in SubscriptionId x. Current usage/limit: 0/0.",
         BackendError, "Request more quota", None),
        ("list endpoints", 429, "SubscriptionRequestsThrottled", THROTTLED, BackendError, "wait a minute", None),
        # a wrong workspace, resource group or subscription names the place to check
        ("get model 'clf:1'", 404, "ParentResourceNotFound",
         "Can not perform requested operation on nested resource. Parent resource 'no-such-ws' not found.",
         NotFound, "resource group and workspace name", None),
        ("get model 'clf:1'", 404, "ResourceGroupNotFound", "Resource group 'nope' could not be found.",
         NotFound, "resource group and workspace name", None),
        ("get model 'clf:1'", 404, "UserError", "Could not find asset with name clf and version 1.",
         NotFound, None, None),
    ],
)
def test_the_message_decides_before_the_status_code(what, status, code, message, kind, hint_has, hint_lacks) -> None:
    error = translate(arm_error(status, code, message), what)
    assert type(error) is kind, error
    assert what in error.message
    if hint_has:
        assert hint_has in (error.hint or ""), error.hint
    else:
        assert error.hint is None
    if hint_lacks:
        assert hint_lacks not in error.hint


def test_the_boundary_leaves_other_exceptions_alone() -> None:
    with pytest.raises(KeyError), azure_errors("read"):
        raise KeyError("a bug, not an Azure failure")
    with pytest.raises(NotFound) as raised, azure_errors("get model 'x'"):
        raise http_error(404, "missing", ResourceNotFoundError)
    assert isinstance(raised.value.__cause__, ResourceNotFoundError)
