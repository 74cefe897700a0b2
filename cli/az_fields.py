"""az ml's keys beside byom's own in what ``show``, ``list``, ``create`` and ``update`` print.

Scripts written for az ml read ``id``, ``openapi_uri``, ``identity``,
``properties``, ``code_configuration``, ``creation_context`` and a text
``version`` (``az ml model show --query version`` prints ``"1"``). They are
added after byom's keys (so ``-o tsv`` columns stay where they were); only
``version`` changes type, to az ml's. On a local workspace the ARM-style ids
name a subscription of zeros and resource group ``byom-local``, so that
scripts splitting them find every part.
"""

from __future__ import annotations

from typing import Any

from byom.core.entities import Deployment, Endpoint, EnvironmentVersion, ModelVersion, WorkspaceInfo

LOCAL_SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
LOCAL_RESOURCE_GROUP = "byom-local"


def workspace_id(info: WorkspaceInfo) -> str:
    """The workspace's ARM id: Azure's own, or a local one of the same shape."""
    if info.kind == "azure" and info.location.startswith("/subscriptions/"):
        return info.location
    name = info.name.lstrip(".") or "byom"
    return (f"/subscriptions/{LOCAL_SUBSCRIPTION}/resourceGroups/{LOCAL_RESOURCE_GROUP}"
            f"/providers/Microsoft.MachineLearningServices/workspaces/{name}")


def resource_group(info: WorkspaceInfo) -> str:
    parts = workspace_id(info).split("/")
    return parts[4] if len(parts) > 4 else ""


def with_az_fields(result: Any, info: WorkspaceInfo) -> Any:
    """``result`` (an entity, or a list of them) as plain data with az ml's keys added; anything else as it is."""
    if isinstance(result, list):
        return [with_az_fields(item, info) for item in result]
    if isinstance(result, Endpoint):
        return _endpoint(result, info)
    if isinstance(result, Deployment):
        return _deployment(result, info)
    if isinstance(result, (ModelVersion, EnvironmentVersion)):
        return _asset(result, info)
    return result


def _endpoint(endpoint: Endpoint, info: WorkspaceInfo) -> dict[str, Any]:
    data = endpoint.to_dict()
    arm_id = f"{workspace_id(info)}/onlineEndpoints/{endpoint.name}"
    extra: dict[str, Any] = {
        "id": arm_id,
        "openapi_uri": endpoint.swagger_uri,
        "properties": {"azureml.onlineendpointid": arm_id, "createdBy": endpoint.created_by,
                       "createdAt": endpoint.created_at, "lastModifiedAt": endpoint.updated_at},
        "resourceGroup": resource_group(info),
    }
    if endpoint.identity is not None:
        data["identity"] = {"type": endpoint.identity.type, "user_assigned_identities": [
            {"resource_id": i} for i in endpoint.identity.user_assigned_identities]}
    elif info.kind != "azure":  # a local endpoint acts as nobody unless its file said whom
        data["identity"] = {"type": "none"}
    return {**data, **{k: v for k, v in extra.items() if k not in data}}


def _deployment(deployment: Deployment, info: WorkspaceInfo) -> dict[str, Any]:
    data = deployment.to_dict()
    extra: dict[str, Any] = {
        "id": f"{workspace_id(info)}/onlineEndpoints/{deployment.endpoint_name}/deployments/{deployment.name}",
        "code_configuration": ({"code": deployment.code_path, "scoring_script": deployment.scoring_script}
                               if deployment.code_path is not None else None),
        "properties": {},
        "resourceGroup": resource_group(info),
    }
    return {**data, **{k: v for k, v in extra.items() if k not in data}}


def _asset(asset: ModelVersion | EnvironmentVersion, info: WorkspaceInfo) -> dict[str, Any]:
    data = asset.to_dict()
    kind = "models" if isinstance(asset, ModelVersion) else "environments"
    data["version"] = str(asset.version)
    extra: dict[str, Any] = {
        "id": f"azureml:{workspace_id(info)}/{kind}/{asset.name}/versions/{asset.version}",
        "creation_context": {"created_at": asset.created_at, "created_by": asset.created_by,
                             "created_by_type": "User"},
        "properties": {},
        "resourceGroup": resource_group(info),
    }
    return {**data, **{k: v for k, v in extra.items() if k not in data}}
