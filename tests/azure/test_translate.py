"""Core entity → azure-ai-ml entity → REST object (the SDK's own serializer) → back.

Each test checks the wire shape Azure receives for the fields the console
shows, then reads the REST object back through the SDK's ``_from_rest_object``
and compares the core entity with the one it started from.
"""

import yaml
from azure.ai.ml._restclient.arm_ml_service.models import DefaultScaleSettings
from azure.ai.ml.entities import Environment, Model, OnlineDeployment, OnlineEndpoint
from byom.core.azure import translate as tr
from byom.core.entities import (
    Deployment,
    Endpoint,
    EnvironmentSpec,
    ModelFile,
    ModelVersion,
    ProbeSettings,
    RequestSettings,
    StageChange,
)

WS = "/subscriptions/sub/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/ws"
URI = "azureml://subscriptions/sub/resourcegroups/rg/workspaces/ws/datastores/workspaceblobstore/paths/LocalUpload/abc/m"


def test_model_round_trip_keeps_stage_history_and_file_hashes() -> None:
    model = ModelVersion(
        name="bert", version=3, type="custom_model", format="transformers", description="a bert",
        tags={"team": "nlp"}, properties={"gguf.arch": "llama"}, stage="production",
        files=[ModelFile("config.json", 12, "aa" * 32), ModelFile("sub/w.bin", 99, "bb" * 32)],
        size_bytes=111, source="/home/ana/bert", path=URI,
        stage_history=[StageChange("dev", "staging", "lee", "evals pass", "2025-01-01T00:00:00+00:00"),
                       StageChange("staging", "production", "kim", "", "2025-01-02T00:00:00+00:00")],
    )
    rest = tr.model_to_sdk(model)._to_rest_object()
    wire = rest.as_dict()["properties"]
    assert wire["modelUri"] == URI and wire["modelType"] == "custom_model" and wire["description"] == "a bert"
    assert wire["tags"]["team"] == "nlp" and wire["tags"]["byom.stage"] == "production"
    assert '"sha256":"' + "bb" * 32 in wire["properties"]["byom.files"]

    rest.id = f"{WS}/models/bert/versions/3"
    rest.properties.flavors = {}  # the service always answers with a flavors map
    back = tr.model_from_sdk(Model._from_rest_object(rest), archived=True)
    assert back == model.replace(archived=True, source="bert"), "of a local folder, only its name is sent"


def test_environment_round_trip_keeps_the_conda_spec() -> None:
    conda = "name: demo\ndependencies:\n- python=3.11\n- pip\n- pip:\n  - scikit-learn==1.9.1\n"
    spec = EnvironmentSpec(name="sk", conda_file=conda, image="ubuntu:22.04", description="d", tags={"a": "b"})
    rest = tr.environment_to_sdk(spec, 2)._to_rest_object()
    wire = rest.as_dict()["properties"]
    assert wire["image"] == "ubuntu:22.04" and "scikit-learn==1.9.1" in wire["condaFile"]

    rest.id = f"{WS}/environments/sk/versions/2"
    back = tr.environment_from_sdk(Environment._from_rest_object(rest))
    read = (back.name, back.version, back.image, back.description, back.tags)
    assert read == ("sk", 2, "ubuntu:22.04", "d", {"a": "b"})
    assert yaml.safe_load(back.conda_file) == yaml.safe_load(conda), "same spec (the SDK re-dumps it, keys sorted)"
    assert back.python == "3.11" and back.pip_requirements == ["scikit-learn==1.9.1"]


def test_environment_without_image_gets_the_azure_ml_base_image() -> None:
    env = tr.environment_to_sdk(EnvironmentSpec(name="c", conda_file="dependencies:\n- numpy\n"), 1)
    assert env.image == tr.DEFAULT_IMAGE


def test_environment_round_trip_keeps_the_docker_build_context() -> None:
    context = f"{URI.rsplit('/', 1)[0]}/docker-context/"
    spec = EnvironmentSpec(name="docker", build_context=context, dockerfile_path="serve.Dockerfile")
    rest = tr.environment_to_sdk(spec, 1)._to_rest_object()
    wire = rest.as_dict()["properties"]
    assert wire["build"] == {"contextUri": context, "dockerfilePath": "serve.Dockerfile"}
    assert "image" not in wire, "Azure ML takes an image or a build context, not both"

    rest.id = f"{WS}/environments/docker/versions/1"
    back = tr.environment_from_sdk(Environment._from_rest_object(rest))
    assert (back.build_context, back.dockerfile_path, back.image) == (context, "serve.Dockerfile", None)


def test_endpoint_round_trip_with_traffic_and_mirror() -> None:
    endpoint = Endpoint(name="chat", description="chat bot", tags={"env": "prod"},
                        traffic={"blue": 100}, mirror_traffic={"green": 10})
    rest = tr.endpoint_to_sdk(endpoint)._to_rest_online_endpoint(location="westeurope")
    wire = rest.as_dict()
    assert wire["properties"]["authMode"] == "Key"
    assert wire["properties"]["traffic"] == {"blue": 100} and wire["properties"]["mirrorTraffic"] == {"green": 10}
    assert wire["tags"] == {"env": "prod"} and wire["location"] == "westeurope"

    rest.id, rest.name = f"{WS}/onlineEndpoints/chat", "chat"
    rest.properties.scoring_uri = "https://chat.westeurope.inference.ml.azure.com/score"
    back = tr.endpoint_from_sdk(OnlineEndpoint._from_rest_object(rest))
    assert back.traffic == {"blue": 100, "green": 0}, "a mirrored deployment has no live share"
    assert back.mirror_traffic == {"green": 10}
    assert (back.name, back.auth_mode, back.description, back.tags) == ("chat", "key", "chat bot", {"env": "prod"})
    assert back.scoring_uri.endswith("/score")


def test_deployment_round_trip_with_settings_and_probes() -> None:
    deployment = Deployment(
        name="blue", endpoint_name="chat", model="bert:3", environment="sk:2", code_path="score-code:1",
        scoring_script="score.py", instance_type="Standard_DS3_v2", instance_count=2,
        request_settings=RequestSettings(request_timeout_ms=9000, max_concurrent_requests_per_instance=4,
                                         max_queue_wait_ms=700),
        liveness_probe=ProbeSettings(initial_delay=30, period=15, timeout=3, success_threshold=1, failure_threshold=5),
        readiness_probe=ProbeSettings(initial_delay=12, period=11, timeout=4, success_threshold=2, failure_threshold=6),
        environment_variables={"DEPLOYMENT_LABEL": "blue"}, description="first", tags={"v": "1"},
    )
    sdk = tr.deployment_to_sdk(deployment, model_id=f"{WS}/models/bert/versions/3",
                               environment_id=f"{WS}/environments/sk/versions/2", instance_type="Standard_DS3_v2",
                               code=f"{WS}/codes/score-code/versions/1")
    rest = sdk._to_rest_object(location="westeurope")
    wire = rest.as_dict()
    props = wire["properties"]
    assert wire["sku"]["capacity"] == 2 and props["instanceType"] == "Standard_DS3_v2"
    assert props["endpointComputeType"] == "Managed"
    assert props["model"].endswith("/models/bert/versions/3")
    assert props["environmentId"].endswith("/environments/sk/versions/2")
    assert props["codeConfiguration"]["scoringScript"] == "score.py"
    assert props["requestSettings"]["requestTimeout"] == "PT9S"
    assert props["requestSettings"]["maxConcurrentRequestsPerInstance"] == 4
    assert props["livenessProbe"]["initialDelay"] == "PT30S" and props["readinessProbe"]["failureThreshold"] == 6
    assert props["environmentVariables"] == {"DEPLOYMENT_LABEL": "blue"}

    rest.id, rest.name = f"{WS}/onlineEndpoints/chat/deployments/blue", "blue"
    rest.properties.provisioning_state = "Succeeded"
    rest.properties.scale_settings = DefaultScaleSettings()  # as the service answers
    back = tr.deployment_from_sdk(OnlineDeployment._from_rest_object(rest), "chat")
    # maxQueueWait is deprecated for managed online endpoints, and azure-ai-ml 1.35.2 reads
    # "PT0.7S" back as 0 ms: the Azure backend shows the default for it.
    expected_settings = deployment.request_settings.replace(max_queue_wait_ms=RequestSettings().max_queue_wait_ms)
    assert back == deployment.replace(provisioning_state="Succeeded", request_settings=expected_settings)
