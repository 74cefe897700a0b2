"""A small stateful fake of one Azure ML workspace, reached through ``wire``.

It answers three hosts the way Azure does:

* ``management.azure.com``: the Microsoft.MachineLearningServices ARM
  resources byom uses (workspace, datastores, models, environments, codes,
  online endpoints and deployments, keys, logs) with the response shapes of
  the REST specification's examples, and long-running operations through
  ``Azure-AsyncOperation`` status resources;
* the default datastore's blob account (``storage.BlobContainer``);
* each endpoint's scoring host, which routes by traffic and the
  ``azureml-model-deployment`` header and runs the deployment's uploaded
  scoring script (its ``init()`` and ``run()``) in this process.

Long-running operations finish on the status read after ``polls`` reads, as
a quick service would; with ``hold = True`` they stay InProgress, however
often azure-core's poller thread reads them, until ``run_pending()`` lets
them finish: a test of ``wait=False`` sees the state Azure reports while it
works, whatever the threads do. ``fail_next(method, path_regex, status,
code, message)`` answers the next matching request with Azure's error shape
(quota, names taken, throttling), and a subscription, resource group or
workspace other than this one is answered 404 as ARM answers it.

Requests are checked as the service checks them: the api-version each
operation is served under, required body fields, traffic rules, references to
assets that must exist. A refused request is answered with Azure's error
shape and kept in ``refused`` (a 404 is an answer, not a refusal); a request
no route knows is kept in ``unrouted``. ``calls`` holds everything received, for tests that check what
was sent.
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
import types
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

from .storage import ACCOUNT, ACCOUNT_KEY, CONTAINER, HOST, BlobAccount
from .wire import Call, Reply

SUBSCRIPTION = "00000000-1111-2222-3333-444444444444"
RESOURCE_GROUP = "test-rg"
WORKSPACE = "my-aml-workspace"
LOCATION = "westeurope"
ARM = "management.azure.com"
PROVIDER = "/providers/Microsoft.MachineLearningServices"
REGISTRY_ID = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}/providers" \
    "/Microsoft.ContainerRegistry/registries/replayacr"
WORKSPACE_ID = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}{PROVIDER}/workspaces/{WORKSPACE}"
STORAGE_ID = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}/providers/Microsoft.Storage" \
    "/storageAccounts/"
OPERATIONS = f"/subscriptions/{SUBSCRIPTION}{PROVIDER}/locations/{LOCATION}"
AAD_TOKEN = "replay-token"  # what the replay's credential (sdk.ReplayCredential) issues
SCORING_HOST = re.compile(rf"^(?P<endpoint>[a-z0-9-]+)\.{LOCATION}\.inference\.ml\.azure\.com$")

# api-version each operation family is served under: the versions azure-ai-ml
# 1.35.2 sends. A call under another version (another client, a raw request)
# is refused, as the service refuses versions it does not know.
API_VERSIONS = {
    "workspace": {"2024-10-01-preview"},
    "datastores": {"2024-10-01-preview"},
    "models": {"2023-08-01-preview"},
    "environments": {"2023-04-01-preview"},
    "codes": {"2023-04-01"},
    "onlineEndpoints": {"2022-02-01-preview", "2023-04-01-preview"},  # the deployment client reads endpoints too
    "deployments": {"2023-04-01-preview", "2022-02-01-preview"},  # the endpoint client lists them too
}

ASSET_KINDS = ("models", "environments", "codes")
CURATED_ENVIRONMENTS = ("sklearn-1.5", "minimal-py311-inference")  # what the replay's registry azureml holds
ASSET_TYPES = {
    "models": "Microsoft.MachineLearningServices/workspaces/models/versions",
    "environments": "Microsoft.MachineLearningServices/workspaces/environments/versions",
    "codes": "Microsoft.MachineLearningServices/workspaces/codes/versions",
}
ENDPOINT_TYPE = "Microsoft.MachineLearningServices/workspaces/onlineEndpoints"
DEPLOYMENT_TYPE = "Microsoft.MachineLearningServices/workspaces/onlineEndpoints/deployments"


class Refused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass
class Operation:
    """A long-running operation: InProgress for ``polls`` status reads, then done."""

    id: str
    finish: Any  # callable returning None, or an error message that makes it Failed
    polls: int = 1
    status: str = "InProgress"
    error: str = ""


@dataclass
class Failure:
    """An error answer waiting for the next request that matches."""

    method: str
    path: re.Pattern[str]
    status: int
    code: str
    message: str


@dataclass
class RunningScript:
    module: types.ModuleType
    deployment: str


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _system_data(by: str = "tester@contoso.com", created: str | None = None) -> dict[str, str]:
    at = created or _now()
    return {"createdAt": at, "createdBy": by, "createdByType": "User",
            "lastModifiedAt": _now(), "lastModifiedBy": by, "lastModifiedByType": "User"}


class FakeAzureML:
    def __init__(self, seed: int = 0) -> None:
        self.calls: list[Call] = []
        self.refused: list[str] = []
        self.unrouted: list[str] = []
        self.storage = BlobAccount()
        self.assets: dict[str, dict[str, dict[str, dict[str, Any]]]] = {k: {} for k in ASSET_KINDS}
        self.endpoints: dict[str, dict[str, Any]] = {}
        self.deployments: dict[tuple[str, str], dict[str, Any]] = {}
        self.keys: dict[str, dict[str, str]] = {}
        self.tokens: dict[str, list[str]] = {}  # the AMLToken tokens issued, per endpoint
        self.operations: dict[str, Operation] = {}
        self.scripts: dict[tuple[str, str], RunningScript] = {}
        self.logs: dict[tuple[str, str], list[str]] = {}
        self.scored: list[tuple[str, str, bool]] = []  # (endpoint, deployment, mirrored)
        self.fail_next_deployment: str | None = None
        self.no_quota_for: set[str] = set()  # instance types the subscription has no quota for
        self.hold = False  # True: operations stay InProgress until run_pending()
        self.failures: list[Failure] = []
        self._random = random.Random(seed)
        self._lock = threading.RLock()
        self._script_lock = threading.Lock()

    # ------------------------------------------------------------ dispatch

    def __call__(self, call: Call) -> Reply:
        with self._lock:
            self.calls.append(call)
        try:
            if call.host == ARM:
                with self._lock:
                    return self._arm(call)
            if call.host == HOST:
                return self.storage.handle(call)
            match = SCORING_HOST.match(call.host)
            if match:
                return self._score(match.group("endpoint"), call)
            raise LookupError
        except Refused as exc:
            if exc.status != 404:  # asking for what does not exist is an answer, not a wrong call
                self.refused.append(f"{call.method} {call.path}: {exc.message}")
            return _json(exc.status, {"error": {"code": exc.code, "message": exc.message}},
                         {"x-ms-error-code": exc.code})
        except LookupError:
            self.unrouted.append(f"{call.method} {call.url}")
            return _json(404, {"error": {"code": "NoRoute", "message": f"No route for {call.method} {call.path}."}})

    def run_pending(self) -> None:
        """Let time pass on the service side: every running operation finishes, polled or not."""
        with self._lock:
            for op in self.operations.values():
                if op.status == "InProgress":
                    error = op.finish()
                    op.status, op.error = ("Failed", error) if error else ("Succeeded", "")

    def pending(self) -> list[str]:
        """Ids of the operations still InProgress."""
        with self._lock:
            return [op.id for op in self.operations.values() if op.status == "InProgress"]

    def fail_next(self, method: str, path_pattern: str, status: int, code: str, message: str) -> None:
        """Answer the next ``method`` request whose path matches the regex with this error, once."""
        with self._lock:
            self.failures.append(Failure(method, re.compile(path_pattern), status, code, message))

    def sent(self, method: str, path_pattern: str) -> list[Call]:
        """Calls whose method matches and whose path matches the regex."""
        return [c for c in self.calls if c.method == method and re.search(path_pattern, c.path)]

    # ----------------------------------------------------------------- ARM

    def _arm(self, call: Call) -> Reply:
        query = {k: v[0] for k, v in parse_qs(urlsplit(call.url).query).items()}
        if not call.headers.get("Authorization", "").startswith("Bearer "):
            raise Refused(401, "AuthenticationFailed", "Authentication failed: the Authorization header is missing.")
        path = call.path
        for failure in self.failures:
            if failure.method == call.method and failure.path.search(path):
                self.failures.remove(failure)
                raise Refused(failure.status, failure.code, failure.message)
        op = re.fullmatch(rf"{OPERATIONS}/mfeOperationsStatus/([\w-]+)", path)
        if op:
            return self._operation_status(op.group(1))
        result = re.fullmatch(rf"{OPERATIONS}/mfeOperationResults/([\w-]+)", path)
        if result:
            if result.group(1) not in self.operations:
                raise Refused(404, "NotFound", f"Operation {result.group(1)} does not exist.")
            return Reply(204)
        if not path.lower().startswith(WORKSPACE_ID.lower()):
            _elsewhere(path)
        rest = path[len(WORKSPACE_ID):]
        body = json.loads(call.body) if call.body else None
        family = _family(rest)
        allowed = API_VERSIONS.get(family, set())
        if allowed is not None and query.get("api-version") not in allowed:
            raise Refused(400, "InvalidApiVersionParameter",
                          f"The api-version '{query.get('api-version')}' is not served for {family} here "
                          f"(expected one of {sorted(allowed)}).")
        for pattern, handler in self._routes():
            match = re.fullmatch(pattern, rest)
            if match and call.method in handler:
                return handler[call.method](*match.groups(), body=body, query=query)
        raise LookupError

    def _routes(self) -> list[tuple[str, dict[str, Any]]]:
        kinds = "|".join(ASSET_KINDS)
        return [
            (r"", {"GET": self._workspace}),
            (r"/datastores", {"GET": self._datastores}),
            (r"/datastores/workspaceblobstore", {"GET": self._datastore}),
            (r"/datastores/workspaceblobstore/listSecrets", {"POST": self._datastore_secrets}),
            (rf"/({kinds})", {"GET": self._list_containers}),
            (rf"/({kinds})/([^/]+)", {"GET": self._get_container}),
            (rf"/({kinds})/([^/]+)/versions", {"GET": self._list_versions}),
            (rf"/({kinds})/([^/]+)/versions/([^/]+)",
             {"GET": self._get_version, "PUT": self._put_version, "DELETE": self._delete_version}),
            (r"/codes/([^/]+)/versions/([^/]+)/startPendingUpload", {"POST": self._start_pending_upload}),
            (r"/onlineEndpoints", {"GET": self._list_endpoints}),
            (r"/onlineEndpoints/([^/]+)",
             {"GET": self._get_endpoint, "PUT": self._put_endpoint, "DELETE": self._delete_endpoint}),
            (r"/onlineEndpoints/([^/]+)/listKeys", {"POST": self._list_keys}),
            (r"/onlineEndpoints/([^/]+)/token", {"POST": self._get_token}),
            (r"/onlineEndpoints/([^/]+)/regenerateKeys", {"POST": self._regenerate_keys}),
            (r"/onlineEndpoints/([^/]+)/deployments", {"GET": self._list_deployments}),
            (r"/onlineEndpoints/([^/]+)/deployments/([^/]+)",
             {"GET": self._get_deployment, "PUT": self._put_deployment, "DELETE": self._delete_deployment}),
            (r"/onlineEndpoints/([^/]+)/deployments/([^/]+)/getLogs", {"POST": self._get_logs}),
        ]

    # ---------------------------------------------------- long-running ops

    def _start(self, finish: Any, status: int, body: Any = None, polls: int = 1) -> Reply:
        op = Operation(id=str(uuid.uuid4()), finish=finish, polls=polls)
        self.operations[op.id] = op
        url = f"https://{ARM}/subscriptions/{SUBSCRIPTION}{PROVIDER}/locations/{LOCATION}/mfeOperationsStatus/{op.id}?api-version=2023-04-01-preview"
        headers = {"Azure-AsyncOperation": url, "retry-after-ms": "1"}
        if status == 202:
            headers["Location"] = url.replace("mfeOperationsStatus", "mfeOperationResults")
        return _json(status, body, headers) if body is not None else Reply(status, headers)

    def _operation_status(self, op_id: str) -> Reply:
        op = self.operations.get(op_id)
        if op is None:
            raise Refused(404, "NotFound", f"Operation {op_id} does not exist.")
        if op.status == "InProgress" and not self.hold:
            if op.polls > 0:
                op.polls -= 1
            else:
                error = op.finish()
                op.status, op.error = ("Failed", error) if error else ("Succeeded", "")
        body: dict[str, Any] = {"id": op.id, "name": op.id, "status": op.status, "startTime": _now()}
        if op.status == "Failed":
            body["error"] = {"code": "DeploymentFailed", "message": op.error}
        # a held operation is polled less often: the poller thread must not spin while a test looks
        return _json(200, body, {"retry-after-ms": "20" if self.hold else "1"})

    # ---------------------------------------------------- workspace, data

    def _workspace(self, body: Any, query: dict) -> Reply:
        return _json(200, {
            "id": WORKSPACE_ID, "name": WORKSPACE, "type": "Microsoft.MachineLearningServices/workspaces",
            "location": LOCATION, "kind": "Default", "tags": {},
            "identity": {"type": "SystemAssigned", "principalId": str(uuid.UUID(int=1)),
                         "tenantId": str(uuid.UUID(int=2))},
            "sku": {"name": "Basic", "tier": "Basic"},
            "properties": {"friendlyName": WORKSPACE, "discoveryUrl": f"https://{LOCATION}.api.azureml.ms/discovery",
                           "workspaceId": str(uuid.UUID(int=3)), "provisioningState": "Succeeded",
                           "containerRegistry": REGISTRY_ID,
                           "storageAccount": STORAGE_ID + ACCOUNT},
            "systemData": _system_data(),
        })

    def _datastore_doc(self) -> dict[str, Any]:
        return {
            "id": f"{WORKSPACE_ID}/datastores/workspaceblobstore", "name": "workspaceblobstore",
            "type": "Microsoft.MachineLearningServices/workspaces/datastores",
            "properties": {"datastoreType": "AzureBlob", "accountName": ACCOUNT, "containerName": CONTAINER,
                           "endpoint": "core.windows.net", "protocol": "https", "isDefault": True,
                           "credentials": {"credentialsType": "AccountKey"}, "tags": {}, "properties": {}},
            "systemData": _system_data(),
        }

    def _datastores(self, body: Any, query: dict) -> Reply:
        return _json(200, {"value": [self._datastore_doc()]})

    def _datastore(self, body: Any, query: dict) -> Reply:
        return _json(200, self._datastore_doc())

    def _datastore_secrets(self, body: Any, query: dict) -> Reply:
        return _json(200, {"secretsType": "AccountKey", "key": ACCOUNT_KEY})

    # ------------------------------------------------------------- assets

    def _versions(self, kind: str, name: str) -> dict[str, dict[str, Any]]:
        versions = self.assets[kind].get(name)
        if versions is None:
            raise Refused(404, "UserError", f"Could not find asset with name {name} ({kind}).")
        return versions

    def _container_doc(self, kind: str, name: str) -> dict[str, Any]:
        versions = self.assets[kind][name]
        numeric = [int(v) for v in versions if v.isdigit()]
        return {
            "id": f"{WORKSPACE_ID}/{kind}/{name}", "name": name,
            "type": ASSET_TYPES[kind].rsplit("/", 1)[0],
            "properties": {"description": None, "tags": {}, "properties": {},
                           "isArchived": all(v["properties"].get("isArchived") for v in versions.values()),
                           "latestVersion": str(max(numeric)) if numeric else None,
                           "nextVersion": str(max(numeric, default=0) + 1)},
            "systemData": _system_data(),
        }

    def _list_containers(self, kind: str, body: Any, query: dict) -> Reply:
        view = query.get("listViewType", "ActiveOnly")
        docs = [self._container_doc(kind, n) for n in sorted(self.assets[kind]) if self.assets[kind][n]]
        docs = [d for d in docs if _in_view(d["properties"]["isArchived"], view)]
        return _json(200, {"value": docs})

    def _get_container(self, kind: str, name: str, body: Any, query: dict) -> Reply:
        self._versions(kind, name)
        return _json(200, self._container_doc(kind, name))

    def _list_versions(self, kind: str, name: str, body: Any, query: dict) -> Reply:
        versions = self.assets[kind].get(name, {})
        view = query.get("listViewType", "ActiveOnly")
        docs = [d for d in versions.values() if _in_view(d["properties"].get("isArchived", False), view)]
        if "hash" in query:  # code snapshots are looked up by content hash before an upload
            docs = [d for d in docs if (d["properties"].get("properties") or {}).get("hash_sha256") == query["hash"]]
        docs.sort(key=lambda d: d["systemData"]["createdAt"], reverse="desc" in query.get("$orderBy", "desc"))
        if "$top" in query:
            docs = docs[: int(query["$top"])]
        return _json(200, {"value": docs})

    def _get_version(self, kind: str, name: str, version: str, body: Any, query: dict) -> Reply:
        doc = self._versions(kind, name).get(version)
        if doc is None:
            raise Refused(404, "UserError", f"Could not find asset with name {name} and version {version}.")
        return _json(200, doc)

    def _put_version(self, kind: str, name: str, version: str, body: Any, query: dict) -> Reply:
        props = (body or {}).get("properties")
        if not isinstance(props, dict):
            raise Refused(400, "BadRequest", "The request body needs 'properties'.")
        immutable = {"models": ("modelUri", "modelType"), "environments": ("image", "condaFile", "build"),
                     "codes": ("codeUri",)}[kind]
        if kind == "models":
            self._check_uri(props.get("modelUri"), "modelUri")
        elif kind == "codes":
            self._check_uri(props.get("codeUri"), "codeUri")
        else:
            if bool(props.get("image")) == bool(props.get("build")):
                raise Refused(400, "UserError", "An environment needs an image or a build context, not both.")
            if props.get("build"):
                self._check_uri(props["build"].get("contextUri"), "build.contextUri")
            if props.get("condaFile"):
                try:
                    conda = yaml.safe_load(props["condaFile"])
                except yaml.YAMLError as exc:
                    raise Refused(400, "UserError", f"condaFile is not YAML: {exc}") from None
                if not isinstance(conda, dict) or not conda.get("dependencies"):
                    raise Refused(400, "UserError", "condaFile needs a dependencies list.")
        versions = self.assets[kind].setdefault(name, {})
        existing = versions.get(version)
        if existing is not None:
            for field_name in immutable:
                if existing["properties"].get(field_name) != props.get(field_name):
                    raise Refused(409, "UserError",
                                  f"{kind[:-1].capitalize()} {name}:{version} already exists and its "
                                  f"{field_name} cannot change: assets are immutable.")
        doc = {
            "id": f"{WORKSPACE_ID}/{kind}/{name}/versions/{version}", "name": version, "type": ASSET_TYPES[kind],
            "properties": {**props, **({"flavors": props.get("flavors") or {}} if kind == "models" else {}),
                           "isAnonymous": bool(props.get("isAnonymous")),
                           "isArchived": bool(props.get("isArchived")), "provisioningState": "Succeeded"},
            "systemData": _system_data(created=existing["systemData"]["createdAt"] if existing else None),
        }
        versions[version] = doc
        return _json(200 if existing else 201, doc)

    def _delete_version(self, kind: str, name: str, version: str, body: Any, query: dict) -> Reply:
        versions = self._versions(kind, name)
        if versions.pop(version, None) is None:
            return Reply(204)
        if not versions:
            del self.assets[kind][name]
        return Reply(200)

    def _start_pending_upload(self, name: str, version: str, body: Any, query: dict) -> Reply:
        if (body or {}).get("pendingUploadType") != "TemporaryBlobReference":
            raise Refused(400, "BadArgument", "pendingUploadType must be TemporaryBlobReference.")
        container = self.storage.new_container()
        blob_uri = f"https://{HOST}/{container}"
        return _json(200, {
            "blobReferenceForConsumption": {
                "blobUri": blob_uri,
                "storageAccountArmId": STORAGE_ID + ACCOUNT,
                "credential": {"credentialType": "SAS", "sasUri": f"{blob_uri}?sv=2025-01-05&sr=c&sp=racwl&sig=replay"},
            },
            "pendingUploadId": str(uuid.uuid4()), "pendingUploadType": "TemporaryBlobReference",
        })

    def _blob_location(self, uri: Any) -> tuple[str, str]:
        """(container, blob prefix) of an asset URI: a datastore path or a blob URL in the account."""
        datastore = f"azureml://subscriptions/{SUBSCRIPTION}/resourcegroups/{RESOURCE_GROUP}/workspaces/{WORKSPACE}/datastores/workspaceblobstore/paths/"
        if isinstance(uri, str) and uri.startswith(datastore):
            return CONTAINER, uri[len(datastore):].rstrip("/")
        job = re.fullmatch(r"azureml://jobs/([^/]+)/outputs/artifacts/paths/(.*)", str(uri))
        if job:  # a job's outputs: the run's artifact folder in the default container
            return CONTAINER, f"ExperimentRun/dcid.{job.group(1)}/{job.group(2)}".rstrip("/")
        if isinstance(uri, str) and uri.startswith(f"https://{HOST}/"):
            container, _, prefix = uri[len(f"https://{HOST}/"):].partition("/")
            return container, prefix.rstrip("/")
        raise Refused(400, "UserError", f"The asset URI {uri!r} is not in the workspace's storage account.")

    def _check_uri(self, uri: Any, what: str) -> None:
        container, prefix = self._blob_location(uri)
        if not self.storage.files_under(prefix, container):
            raise Refused(400, "UserError", f"{what} {uri} points at no uploaded files.")

    def _asset_by_id(self, arm_id: Any, kind: str) -> dict[str, Any]:
        curated = re.fullmatch(rf"azureml://registries/azureml/{kind}/([^/]+)/(?:versions|labels)/[^/]+", str(arm_id))
        if curated:  # Microsoft's registry: what it holds is not this workspace's to check
            if curated.group(1) not in CURATED_ENVIRONMENTS:
                raise Refused(404, "UserError", f"The {kind[:-1]} {arm_id!r} does not exist in registry azureml.")
            return {"name": curated.group(1)}
        match = re.fullmatch(rf"(?:azureml:)?{re.escape(WORKSPACE_ID)}/{kind}/([^/]+)/versions/([^/]+)",
                             str(arm_id), flags=re.IGNORECASE)
        doc = match and self.assets[kind].get(match.group(1), {}).get(match.group(2))
        if not doc:
            raise Refused(400, "UserError", f"The {kind[:-1]} {arm_id!r} does not exist in this workspace.")
        return doc

    # ---------------------------------------------------------- endpoints

    def _endpoint(self, name: str) -> dict[str, Any]:
        doc = self.endpoints.get(name.lower())
        if doc is None:
            raise Refused(404, "UserError", f"Endpoint {name} not found.")
        return doc

    def _list_endpoints(self, body: Any, query: dict) -> Reply:
        return _json(200, {"value": [self.endpoints[n] for n in sorted(self.endpoints)]})

    def _get_endpoint(self, name: str, body: Any, query: dict) -> Reply:
        return _json(200, self._endpoint(name))

    def _check_traffic(self, endpoint: str, props: dict[str, Any]) -> None:
        names = {d for (e, d) in self.deployments if e == endpoint.lower()}
        traffic, mirror = props.get("traffic") or {}, props.get("mirrorTraffic") or {}
        for split in (traffic, mirror):
            for dep, pct in split.items():
                if dep.lower() not in names:
                    raise Refused(400, "BadArgument", f"Traffic names deployment {dep}, which does not exist.")
                if not isinstance(pct, int) or not 0 <= pct <= 100:
                    raise Refused(400, "BadArgument", f"Traffic for {dep} must be an integer from 0 to 100.")
        if sum(traffic.values()) not in (0, 100):
            raise Refused(400, "BadArgument", "Traffic must add up to 0 or 100.")
        live_mirror = {d: p for d, p in mirror.items() if p > 0}
        if len(live_mirror) > 1 or any(p > 50 for p in live_mirror.values()):
            raise Refused(400, "BadArgument", "Mirror traffic goes to one deployment, at most 50 %.")
        if any(traffic.get(d, 0) > 0 for d in live_mirror):
            raise Refused(400, "BadArgument", "A deployment with live traffic cannot receive mirror traffic.")

    def _put_endpoint(self, name: str, body: Any, query: dict) -> Reply:
        body = body or {}
        props = body.get("properties") or {}
        if not body.get("location"):
            raise Refused(400, "BadRequest", "'location' is required.")
        if props.get("authMode") not in ("Key", "AMLToken", "AADToken"):
            raise Refused(400, "BadRequest", f"authMode {props.get('authMode')!r} is not valid.")
        key = name.lower()
        existing = self.endpoints.get(key)
        self._check_traffic(name, props)
        doc = {
            "id": f"{WORKSPACE_ID}/onlineEndpoints/{name}", "name": name, "type": ENDPOINT_TYPE,
            "location": body["location"], "kind": body.get("kind"), "tags": body.get("tags") or {},
            "identity": {**(body.get("identity") or {"type": "SystemAssigned"}),
                         "principalId": str(uuid.UUID(int=5)), "tenantId": str(uuid.UUID(int=2))},
            "properties": {
                "description": props.get("description"), "properties": props.get("properties") or {},
                "authMode": props["authMode"], "traffic": props.get("traffic") or {},
                "publicNetworkAccess": props.get("publicNetworkAccess") or "Enabled",
                "mirrorTraffic": props.get("mirrorTraffic") or {},
                "scoringUri": f"https://{key}.{LOCATION}.inference.ml.azure.com/score",
                "swaggerUri": f"https://{key}.{LOCATION}.inference.ml.azure.com/swagger.json",
                "provisioningState": "Updating" if existing else "Creating",
            },
            "systemData": _system_data(created=existing["systemData"]["createdAt"] if existing else None),
        }
        self.endpoints[key] = doc
        self.keys.setdefault(key, {"primaryKey": _new_key(), "secondaryKey": _new_key()})

        def finish() -> None:
            doc["properties"]["provisioningState"] = "Succeeded"

        return self._start(finish, 200 if existing else 201, doc)

    def _delete_endpoint(self, name: str, body: Any, query: dict) -> Reply:
        key = name.lower()
        self._endpoint(name)["properties"]["provisioningState"] = "Deleting"

        def finish() -> None:
            self.endpoints.pop(key, None)
            self.keys.pop(key, None)
            for dep_key in [k for k in self.deployments if k[0] == key]:
                del self.deployments[dep_key]
                self.scripts.pop(dep_key, None)

        return self._start(finish, 202)

    def _list_keys(self, name: str, body: Any, query: dict) -> Reply:
        mode = self._endpoint(name)["properties"]["authMode"]
        if mode != "Key":
            raise Refused(400, "BadArgument", f"Endpoint {name} uses {mode} authentication: it has no keys.")
        return _json(200, dict(self.keys[name.lower()]))

    def _get_token(self, name: str, body: Any, query: dict) -> Reply:
        mode = self._endpoint(name)["properties"]["authMode"]
        if mode != "AMLToken":
            raise Refused(400, "BadArgument", f"Endpoint {name} uses {mode} authentication: it issues no token.")
        token = _new_key()
        self.tokens.setdefault(name.lower(), []).append(token)
        now = int(time.time())
        return _json(200, {"accessToken": token, "expiryTimeUtc": now + 3600, "refreshAfterTimeUtc": now + 1800,
                           "tokenType": "Bearer"})

    def _regenerate_keys(self, name: str, body: Any, query: dict) -> Reply:
        self._endpoint(name)
        key_type = (body or {}).get("keyType")
        if key_type not in ("Primary", "Secondary"):
            raise Refused(400, "BadArgument", f"keyType must be Primary or Secondary, got {key_type!r}.")

        current = self.keys[name.lower()][f"{key_type.lower()}Key"]
        wanted = (body or {}).get("keyValue")

        # azure-ai-ml sends the key's current value as keyValue; the service issues a new key then
        # (that is what `az ml online-endpoint regenerate-keys` does), and sets a different value as given.
        def finish() -> None:
            self.keys[name.lower()][f"{key_type.lower()}Key"] = wanted if wanted and wanted != current else _new_key()

        return self._start(finish, 202)

    # -------------------------------------------------------- deployments

    def _deployment(self, endpoint: str, name: str) -> dict[str, Any]:
        self._endpoint(endpoint)
        doc = self.deployments.get((endpoint.lower(), name.lower()))
        if doc is None:
            raise Refused(404, "UserError", f"Deployment {name} not found under endpoint {endpoint}.")
        return doc

    def _list_deployments(self, endpoint: str, body: Any, query: dict) -> Reply:
        self._endpoint(endpoint)
        docs = [d for (e, _), d in sorted(self.deployments.items()) if e == endpoint.lower()]
        return _json(200, {"value": docs})

    def _get_deployment(self, endpoint: str, name: str, body: Any, query: dict) -> Reply:
        return _json(200, self._deployment(endpoint, name))

    def _put_deployment(self, endpoint: str, name: str, body: Any, query: dict) -> Reply:
        body = body or {}
        props = body.get("properties") or {}
        self._endpoint(endpoint)
        if props.get("endpointComputeType") != "Managed":
            raise Refused(400, "BadArgument", "endpointComputeType must be Managed on a managed online endpoint.")
        if not props.get("instanceType"):
            raise Refused(400, "BadArgument", "instanceType is required.")
        if props["instanceType"] in self.no_quota_for:
            raise Refused(400, "BadArgument", f"Not enough quota available for {props['instanceType']} in "
                          f"SubscriptionId {SUBSCRIPTION}. Current usage/limit: 0/0. Additional needed: 24")
        capacity = (body.get("sku") or {}).get("capacity")
        if not isinstance(capacity, int) or capacity < 1:
            raise Refused(400, "BadArgument", "sku.capacity (the instance count) must be at least 1.")
        model = self._asset_by_id(props.get("model"), "models")
        code = props.get("codeConfiguration") or {}
        if (model.get("properties") or {}).get("modelType") != "mlflow_model" and not code:
            raise Refused(400, "BadArgument", "Code configuration is required for a model that is not an "
                                              "MLflow model, unless the environment is a custom container.")
        if props.get("environmentId") or code:
            self._asset_by_id(props.get("environmentId"), "environments")
        script_file = None
        if code:
            code_doc = self._asset_by_id(code.get("codeId"), "codes")
            script_file = self._script_path(code_doc, code.get("scoringScript"))
        key = (endpoint.lower(), name.lower())
        existing = self.deployments.get(key)
        doc = {
            "id": f"{WORKSPACE_ID}/onlineEndpoints/{endpoint}/deployments/{name}", "name": name,
            "type": DEPLOYMENT_TYPE, "location": body.get("location"), "kind": body.get("kind"),
            "tags": body.get("tags") or {}, "sku": {"name": "Default", "capacity": capacity},
            "properties": {"scaleSettings": {"scaleType": "Default"}, **props,
                           "provisioningState": "Updating" if existing else "Creating"},
            "systemData": _system_data(created=existing["systemData"]["createdAt"] if existing else None),
        }
        self.deployments[key] = doc
        failure, self.fail_next_deployment = self.fail_next_deployment, None
        log = self.logs.setdefault(key, [])
        log.append(f"{_now()} Pulling image for {name}")

        def finish() -> str | None:
            if failure:
                doc["properties"]["provisioningState"] = "Failed"
                log.append(f"{_now()} ERROR {failure}")
                return failure
            if script_file is not None:
                self._load_script(key, name, script_file, props.get("environmentVariables") or {})
            doc["properties"]["provisioningState"] = "Succeeded"
            log.append(f"{_now()} Booting worker with pid: 42")
            log.append(f"{_now()} Scoring script loaded; {capacity} instance(s) ready")
            return None

        return self._start(finish, 200 if existing else 201, doc)

    def _delete_deployment(self, endpoint: str, name: str, body: Any, query: dict) -> Reply:
        doc = self._deployment(endpoint, name)
        props = self._endpoint(endpoint)["properties"]
        lowered = {k.lower(): v for k, v in props["traffic"].items()}
        mirrored = {k.lower(): v for k, v in props["mirrorTraffic"].items()}
        if lowered.get(name.lower(), 0) > 0 or mirrored.get(name.lower(), 0) > 0:
            raise Refused(400, "BadArgument",
                          f"Deployment {name} has traffic; set its traffic to 0 before deleting it.")
        doc["properties"]["provisioningState"] = "Deleting"
        key = (endpoint.lower(), name.lower())

        def finish() -> None:
            self.deployments.pop(key, None)
            self.scripts.pop(key, None)

        return self._start(finish, 202)

    def _get_logs(self, endpoint: str, name: str, body: Any, query: dict) -> Reply:
        self._deployment(endpoint, name)
        container = (body or {}).get("containerType")
        if container not in ("InferenceServer", "StorageInitializer"):
            raise Refused(400, "BadArgument",
                          f"containerType must be InferenceServer or StorageInitializer, got {container!r}.")
        tail = (body or {}).get("tail") or 100
        lines = self.logs.get((endpoint.lower(), name.lower()), [])
        if container == "StorageInitializer":
            lines = [f"{_now()} Downloading model and code: done"]
        return _json(200, {"content": "\n".join(lines[-int(tail):])})

    # ----------------------------------------------- the scoring scripts

    def _script_path(self, code_doc: dict[str, Any], script: Any) -> tuple[str, str]:
        uri = code_doc["properties"]["codeUri"]
        container, prefix = self._blob_location(uri)
        path = f"{prefix}/{script}".lstrip("/")
        if not script or path not in self.storage.files_under(prefix, container):
            raise Refused(400, "UserError", f"Scoring script {script!r} is not in the code asset {uri}.")
        return container, path

    def _load_script(self, key: tuple[str, str], name: str, where: tuple[str, str], env: dict[str, str]) -> None:
        import os

        container, blob = where
        source = self.storage.files_under(blob, container)[blob]
        module = types.ModuleType(f"replay_score_{key[0]}_{key[1]}".replace("-", "_"))
        with self._script_lock:  # init() reads its environment as it would in its container
            saved = {k: os.environ.get(k) for k in env}
            os.environ.update(env)
            try:
                exec(compile(source, blob, "exec"), module.__dict__)  # noqa: S102 - the test's own asset
                module.init()
            finally:
                for k, v in saved.items():
                    if v is None:
                        os.environ.pop(k, None)
                    else:
                        os.environ[k] = v
        self.scripts[key] = RunningScript(module, name)

    def _score(self, endpoint: str, call: Call) -> Reply:
        with self._lock:
            doc = self.endpoints.get(endpoint)
            keys = self.keys.get(endpoint, {})
            if doc is None:
                return _json(404, {"message": "Endpoint not found."})
            request_id = str(uuid.uuid4())
            headers = {"x-request-id": request_id}
            client_id = call.headers.get("x-ms-client-request-id")
            if client_id:
                headers["x-ms-client-request-id"] = client_id[:40]
            auth = call.headers.get("Authorization", "")
            mode = doc["properties"]["authMode"]
            accepted = {"Key": [keys.get("primaryKey"), keys.get("secondaryKey")],
                        "AMLToken": self.tokens.get(endpoint, []), "AADToken": [AAD_TOKEN]}[mode]
            if auth not in [f"Bearer {secret}" for secret in accepted]:
                return _json(401, {"message": f"Authentication failed: wrong or missing {mode}."}, headers)
            traffic = {k.lower(): v for k, v in doc["properties"]["traffic"].items()}
            mirror = {k.lower(): v for k, v in doc["properties"]["mirrorTraffic"].items() if v > 0}
            target = call.headers.get("azureml-model-deployment")
            if target:
                chosen = target.lower()
                if (endpoint, chosen) not in self.scripts:
                    return _json(404, {"message": f"No deployment named {target}."}, headers)
            else:
                weighted = [(d, w) for d, w in traffic.items() if w > 0]
                if not weighted:
                    return _json(404, {"message": "No deployment has traffic."}, headers)
                chosen = self._random.choices([d for d, _ in weighted], [w for _, w in weighted])[0]
            running = self.scripts.get((endpoint, chosen))
        if running is None:
            return _json(503, {"message": f"Deployment {chosen} has no ready instance."}, headers)
        headers["azureml-model-deployment"] = running.deployment
        reply = self._run(running, call.body, headers)
        self.scored.append((endpoint, running.deployment, False))
        self.logs.setdefault((endpoint, chosen), []).append(f"{_now()} POST /score {reply.status}")
        if not target:
            for name, pct in mirror.items():
                copy = self.scripts.get((endpoint, name))
                if copy is not None and self._random.random() * 100 < pct:
                    self._run(copy, call.body, {})
                    self.scored.append((endpoint, copy.deployment, True))
        return reply

    def _run(self, running: RunningScript, body: bytes, headers: dict[str, str]) -> Reply:
        try:
            result = running.module.run(body.decode("utf-8"))
        except Exception as exc:  # the model failed: Azure answers 424 and names its code
            return _json(424, {"message": "An unexpected error occurred in scoring script."},
                         {**headers, "ms-azureml-model-error-statuscode": "500",
                          "ms-azureml-model-error-reason": type(exc).__name__})
        return _json(200, result, headers)


def _elsewhere(path: str) -> None:
    """ARM's 404 for a subscription, resource group or workspace that is not this one."""
    match = re.fullmatch(r"/subscriptions/([^/]+)(?:/resourceGroups/([^/]+)"
                         rf"(?:{PROVIDER}/workspaces/([^/]+)(/.*)?)?)?", path, flags=re.IGNORECASE)
    if match is None:
        raise LookupError
    subscription, group, workspace, rest = match.groups()
    if subscription != SUBSCRIPTION:
        raise Refused(404, "SubscriptionNotFound", f"The subscription '{subscription}' could not be found.")
    if group is not None and group.lower() != RESOURCE_GROUP.lower():
        raise Refused(404, "ResourceGroupNotFound", f"Resource group '{group}' could not be found.")
    if workspace is None:
        raise LookupError
    if rest:
        raise Refused(404, "ParentResourceNotFound",
                      "Can not perform requested operation on nested resource. "
                      f"Parent resource '{workspace}' not found.")
    raise Refused(404, "ResourceNotFound",
                  f"The Resource 'Microsoft.MachineLearningServices/workspaces/{workspace}' under resource group "
                  f"'{group}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix")


def _family(rest: str) -> str:
    if rest == "":
        return "workspace"
    head = rest.split("/")[1]
    if head == "onlineEndpoints" and "/deployments" in rest:
        return "deployments"
    return head


def _in_view(archived: bool, view: str) -> bool:
    return view == "All" or (view == "ArchivedOnly") == bool(archived)


def _new_key() -> str:
    return uuid.uuid4().hex + uuid.uuid4().hex


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Reply:
    data = json.dumps(body).encode("utf-8")
    return Reply(status, {"Content-Type": "application/json; charset=utf-8",
                          "x-ms-request-id": str(uuid.uuid4()), **(headers or {})}, data)

