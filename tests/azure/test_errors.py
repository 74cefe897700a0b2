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

from core.azure.errors import azure_errors, translate
from core.errors import AlreadyExists, AuthFailed, BackendError, InvalidInput, NotFound


def http_error(status: int, message: str, cls: type = HttpResponseError) -> HttpResponseError:
    error = cls(message=message)
    error.status_code = status
    return error


@pytest.mark.parametrize(
    ("exc", "kind", "hint_has"),
    [
        (CredentialUnavailableError("DefaultAzureCredential failed to retrieve a token"), AuthFailed, "az login"),
        (http_error(401, "token expired", ClientAuthenticationError), AuthFailed, "az login"),
        (http_error(403, "The client does not have authorization to perform action"), AuthFailed, "AzureML Data Scientist"),
        (http_error(404, "Endpoint chat not found.", ResourceNotFoundError), NotFound, None),
        (http_error(409, "Endpoint name chat already exists in region westeurope.", ResourceExistsError),
         AlreadyExists, "unique per Azure region"),
        (http_error(400, "Not enough quota available for Standard_NC24 in SubscriptionId x."), BackendError, "quota"),
        (http_error(400, "Traffic must add up to 0 or 100."), InvalidInput, None),
        (ServiceRequestError("Failed to establish a new connection"), BackendError, "network"),
        (ValidationException(message="scoring script can't be empty", no_personal_data_message="x"), InvalidInput, None),
    ],
)
def test_each_azure_error_becomes_a_core_error_with_a_next_step(exc, kind, hint_has) -> None:
    error = translate(exc, "create endpoint 'chat'")
    assert type(error) is kind
    assert "create endpoint 'chat'" in error.message
    if hint_has:
        assert hint_has in error.hint


def test_the_boundary_leaves_other_exceptions_alone() -> None:
    with pytest.raises(KeyError), azure_errors("read"):
        raise KeyError("a bug, not an Azure failure")
    with pytest.raises(NotFound) as raised, azure_errors("get model 'x'"):
        raise http_error(404, "missing", ResourceNotFoundError)
    assert isinstance(raised.value.__cause__, ResourceNotFoundError)
