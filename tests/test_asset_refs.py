"""How deployments name a model or environment version: every form az ml prints or accepts."""

import pytest
from byom.core.asset_refs import parse_asset_ref
from byom.core.errors import InvalidInput

ARM = "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/ws"


@pytest.mark.parametrize(("ref", "expected"), [
    ("clf:3", ("clf", "3")),
    ("azureml:clf:3", ("clf", "3")),
    ("clf@latest", ("clf", "latest")),
    ("azureml:clf@latest", ("clf", "latest")),
    ("clf", ("clf", "latest")),
    (f"azureml:{ARM}/models/clf/versions/3", ("clf", "3")),  # az ml model show --query id
    (f"{ARM}/models/clf/versions/3", ("clf", "3")),
    ("azureml://subscriptions/0000/resourcegroups/rg/workspaces/ws/models/clf/versions/3", ("clf", "3")),
])
def test_model_references(ref: str, expected: tuple[str, str]) -> None:
    assert parse_asset_ref(ref, "model") == expected


def test_an_environment_id_names_that_environment() -> None:
    assert parse_asset_ref(f"azureml:{ARM}/environments/sk/versions/2", "environment") == ("sk", "2")


def test_an_id_of_the_other_kind_is_refused() -> None:
    with pytest.raises(InvalidInput, match="is the id of environments/sk, not of a model"):
        parse_asset_ref(f"azureml:{ARM}/environments/sk/versions/2", "model")


def test_registry_assets_are_refused_with_what_to_do() -> None:
    with pytest.raises(InvalidInput, match="registry") as refused:
        parse_asset_ref("azureml://registries/azureml/models/gpt2/versions/1", "model")
    assert "Register the model in this workspace" in refused.value.hint


def test_nothing_is_refused() -> None:
    with pytest.raises(InvalidInput, match="No model given"):
        parse_asset_ref("  ", "model")
