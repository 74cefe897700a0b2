"""az ml's meaning of --set/--add/--remove/--force-string, create on what exists, flag names and YAML errors,
on a local workspace (its real SQLite file; nothing here starts a model server)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from byom.cli.generic_update import apply_generic_update
from byom.cli.main import build_parser, main
from byom.core.entities import Deployment, Endpoint, ModelSpec
from byom.core.errors import InvalidInput
from byom.core.local.workspace import LocalWorkspace
from byom.core.serving import FakeServing


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("BYOM_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("BYOM_ACTOR", "cli-tester")
    monkeypatch.chdir(tmp_path)
    return tmp_path / "home"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def ok(capsys: pytest.CaptureFixture[str], *argv: str) -> object:
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    return json.loads(out) if out.strip() else None


def fails(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code, out, err = run(capsys, *argv)
    assert code == 2, (out, err)
    assert out == ""
    return err


# ------------------------------------------------------------------ create


def test_set_on_create_is_applied_to_the_yaml_before_it_is_read(home: Path, tmp_path: Path, capsys) -> None:
    (tmp_path / "endpoint.yml").write_text("name: from-file\nauth_mode: key\ndescription: as written\n")
    # several pairs after one --set, as az ml takes them; the name too is a YAML path
    endpoint = ok(capsys, "online-endpoint", "create", "-f", "endpoint.yml",
                  "--set", "name=from-set", "tags.team=nlp", "description=set here", "--set", "tags.tier=1")
    assert isinstance(endpoint, dict)
    assert (endpoint["name"], endpoint["description"], endpoint["tags"]) == (
        "from-set", "set here", {"team": "nlp", "tier": "1"})
    code, _, _ = run(capsys, "online-endpoint", "show", "-n", "from-file")
    assert code == 2  # the file's name was overridden before anything was created

    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "weights.bin").write_bytes(b"w")
    (tmp_path / "model.yml").write_text("name: clf\nversion: 3\npath: model\n")
    model = ok(capsys, "model", "create", "-f", "model.yml", "--set", "version=7", "tags.stage=ci",
               "description=templated")
    assert isinstance(model, dict)
    assert (model["name"], model["version"], model["tags"], model["description"]) == (
        "clf", "7", {"stage": "ci"}, "templated")


def test_a_set_the_schema_refuses_names_the_field(home: Path, tmp_path: Path, capsys) -> None:
    (tmp_path / "blue.yml").write_text("name: blue\nendpoint_name: ep-one\nmodel: azureml:clf:1\n"
                                       "instance_type: Standard_DS3_v2\ninstance_count: 1\n")
    ok(capsys, "online-endpoint", "create", "-n", "ep-one")
    err = fails(capsys, "online-deployment", "create", "-f", "blue.yml", "--set", "instance_count=two",
                "request_settings.request_timeout_ms=soon")
    assert "instance_count: Not a valid integer." in err
    assert "request_settings.request_timeout_ms: Not a valid integer." in err and "--set" in err
    err = fails(capsys, "online-deployment", "create", "-f", "blue.yml", "--set", "model=clf:1")
    assert "model: " in err and "azureml:<short-hand-name>:<version" in err  # the union's reasons, flattened
    # nested paths reach the code configuration: the folder they name is the one checked
    err = fails(capsys, "online-deployment", "create", "-f", "blue.yml", "--set", "code_configuration.code=elsewhere",
                "code_configuration.scoring_script=score.py")
    assert str(tmp_path / "elsewhere") in err
    assert ok(capsys, "online-deployment", "list", "-e", "ep-one") == []
    assert "not PATH=VALUE" in fails(capsys, "online-endpoint", "create", "-n", "ep-two", "--set", "description")


def test_yaml_errors_name_every_field_that_failed(home: Path, tmp_path: Path, capsys) -> None:
    (tmp_path / "bad.yml").write_text("name: blue\nendpoint_name: ep-one\nmodel: azureml:clf:1\n"
                                      "instance_type: Standard_DS3_v2\ninstance_count: many\n"
                                      "liveness_probe:\n  period: often\nfavourite_colour: blue\n")
    ok(capsys, "online-endpoint", "create", "-n", "ep-one")
    err = fails(capsys, "online-deployment", "create", "-f", "bad.yml")
    for named in ("instance_count: Not a valid integer.", "liveness_probe.period: Not a valid integer.",
                  "favourite_colour: Unknown field."):
        assert named in err
    (tmp_path / "broken.yml").write_text("name: [unclosed\n")
    err = fails(capsys, "online-endpoint", "create", "-f", "broken.yml")
    assert "line 1" in err  # where the YAML breaks, not only that it does


def test_create_refuses_an_endpoint_that_exists(home: Path, capsys) -> None:
    ok(capsys, "online-endpoint", "create", "-n", "ep-one", "--set", "description=first")
    err = fails(capsys, "online-endpoint", "create", "-n", "ep-one", "--set", "description=second")
    assert "already exists: use update" in err and "byom online-endpoint update -n ep-one" in err
    assert ok(capsys, "online-endpoint", "show", "-n", "ep-one", "--query", "description") == "first"


# ------------------------------------------------------------------ update


def test_generic_update_on_an_endpoint(home: Path, tmp_path: Path, capsys) -> None:
    ok(capsys, "online-endpoint", "create", "-n", "ep-one", "--set", "tags.team=nlp", "tags.tier=gold")
    shown = ok(capsys, "online-endpoint", "update", "-n", "ep-one", "--set", "description=updated", "tags.count=2",
               "--remove", "tags.tier")
    assert isinstance(shown, dict)
    assert (shown["description"], shown["tags"]) == ("updated", {"team": "nlp", "count": "2"})
    # -f on update lays the file over what exists: what it leaves out stays
    (tmp_path / "endpoint.yml").write_text("name: ep-one\ntags:\n  owner: ana\n")
    shown = ok(capsys, "online-endpoint", "update", "-f", "endpoint.yml")
    assert isinstance(shown, dict) and (shown["description"], shown["tags"]) == ("updated", {"owner": "ana"})
    # a YAML date is a tag's text, not a traceback
    (tmp_path / "dated.yml").write_text("name: ep-one\ntags:\n  released: 2024-05-01\n")
    shown = ok(capsys, "online-endpoint", "update", "-f", "dated.yml")
    assert isinstance(shown, dict) and shown["tags"] == {"released": "2024-05-01"}
    assert "no field 'nope'" in fails(capsys, "online-endpoint", "update", "-n", "ep-one", "--set", "nope.x=1")
    assert "name cannot change" in fails(capsys, "online-endpoint", "update", "-n", "ep-one", "--set", "name=other")


def test_force_string_keeps_what_json_would_change(home: Path, tmp_path: Path, capsys) -> None:
    (tmp_path / "m.bin").write_bytes(b"m")
    ok(capsys, "model", "create", "-n", "clf", "-p", "m.bin")
    tags = ok(capsys, "model", "update", "-n", "clf", "--set", "tags.ratio=1.50", "tags.flag=true", "--query", "tags")
    assert tags == {"ratio": "1.5", "flag": "true"}  # read as JSON, as az does
    tags = ok(capsys, "model", "update", "-n", "clf", "--force-string", "--set", "tags.ratio=1.50", "--query", "tags")
    assert tags == {"ratio": "1.50", "flag": "true"}
    tags = ok(capsys, "model", "update", "-n", "clf", "--remove", "tags.flag", "--query", "tags")
    assert tags == {"ratio": "1.50"}
    assert "'version' cannot change" in fails(capsys, "model", "update", "-n", "clf", "--set", "version=9")
    assert "not a list" in fails(capsys, "model", "update", "-n", "clf", "--add", "tags", "a=1")
    assert "no field 'ghost'" in fails(capsys, "environment", "update", "-n", "local-python", "--remove", "tags.ghost")


def test_generic_update_semantics() -> None:
    """The Azure CLI core's rules, on a document with lists: --add builds objects from KEY=VALUE runs."""
    doc = {"a": {"items": [{"n": 1}]}, "s": "x"}
    out = apply_generic_update(doc, [("add", ["a.items", "n=2", "m=x", '"plain"']), ("add", ["new", "3"]),
                                     ("set", ["a.items[0].n=5", "s=[1, 2]"]), ("remove", ["a.items", "1"])])
    assert out == {"a": {"items": [{"n": 5}, "plain"]}, "s": [1, 2], "new": [3]}
    assert doc == {"a": {"items": [{"n": 1}]}, "s": "x"}  # a copy is changed
    with pytest.raises(InvalidInput, match=r"no element \[4\]"):
        apply_generic_update(doc, [("remove", ["a.items", "4"])])
    with pytest.raises(InvalidInput, match="not a list"):
        apply_generic_update(doc, [("add", ["s", "1"])])


# ------------------------------------------------------------------- flags


def test_flags_mean_what_they_mean_in_az_ml(home: Path, tmp_path: Path, capsys) -> None:
    (tmp_path / "conda.yml").write_text("name: x\ndependencies:\n  - python=3.11\n")
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "Dockerfile.gpu").write_text("FROM python:3.11\n")
    env = ok(capsys, "environment", "create", "-n", "env1", "-c", "conda.yml", "--description", "d")
    assert isinstance(env, dict) and env["conda_file"].startswith("name: x") and env["description"] == "d"
    parsed = build_parser().parse_args(["environment", "create", "-n", "env2", "-b", "ctx", "-d", "Dockerfile.gpu"])
    assert (parsed.build_context, parsed.dockerfile_path, parsed.description) == ("ctx", "Dockerfile.gpu", None)
    err = fails(capsys, "model", "create", "-n", "clf", "-p", "conda.yml", "-d", "tmpl")
    assert "--default-deployment-template" in err
    for argv in (("model", "show", "-n", "clf"), ("model", "list"), ("environment", "show", "-n", "env1")):
        err = fails(capsys, *argv, "--registry-name", "azureml")
        assert "registries" in err and "drop --registry-name" in err
    assert yaml.safe_load(run(capsys, "environment", "show", "-n", "env1", "-o", "yamlc")[1])["name"] == "env1"


# ------------------------------------------------------------------ output


def test_az_ml_keys_beside_byom_s_own(home: Path, tmp_path: Path, capsys) -> None:
    # the deployment is written by a workspace whose serving answers at once; the CLI then reads the home as usual
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "score.py").write_text("def init():\n    pass\n\ndef run(raw):\n    return raw\n")
    (tmp_path / "model.pkl").write_bytes(b"\x80\x04pickle")
    ws = LocalWorkspace(home, serving=FakeServing(), actor="ada")
    try:
        ws.create_model(ModelSpec(name="clf", path=str(tmp_path / "model.pkl")))
        ws.create_or_update_endpoint(Endpoint(name="ep-one"))
        ws.create_or_update_deployment(Deployment(name="blue", endpoint_name="ep-one", model="clf:1",
                                                  code_path=str(tmp_path / "code"), scoring_script="score.py"))
    finally:
        ws.close()
    workspace = ok(capsys, "workspace", "show")
    assert isinstance(workspace, dict)
    assert (workspace["name"], workspace["location"], workspace["container_registry"]) == ("home", "local", None)
    prefix = workspace["id"]
    assert prefix == ("/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/byom-local/providers/"
                      "Microsoft.MachineLearningServices/workspaces/home")

    endpoint = ok(capsys, "online-endpoint", "show", "-n", "ep-one")
    assert isinstance(endpoint, dict)
    assert endpoint["id"] == f"{prefix}/onlineEndpoints/ep-one"
    assert endpoint["openapi_uri"] == endpoint["swagger_uri"] and endpoint["openapi_uri"].endswith("/swagger.json")
    assert endpoint["identity"] == {"type": "none"}
    assert endpoint["properties"]["azureml.onlineendpointid"] == endpoint["id"]
    assert endpoint["scoring_uri"] and endpoint["traffic"] == {}  # byom's own keys stay

    assert ok(capsys, "online-deployment", "show", "-n", "blue", "-e", "ep-one", "--query",
              "[id, code_configuration]") == [
        f"{prefix}/onlineEndpoints/ep-one/deployments/blue",
        {"code": str(tmp_path / "code"), "scoring_script": "score.py"}]
    assert ok(capsys, "online-deployment", "list", "-e", "ep-one", "--query", "[].code_configuration.scoring_script") \
        == ["score.py"]

    model = ok(capsys, "model", "show", "-n", "clf", "-v", "1")
    assert isinstance(model, dict)
    assert model["version"] == "1" and model["id"] == f"azureml:{prefix}/models/clf/versions/1"
    assert model["creation_context"]["created_by"] == "ada" and model["creation_context"]["created_at"]
    code, out, _ = run(capsys, "model", "show", "-n", "clf", "--query", "creation_context.created_by", "-o", "tsv")
    assert (code, out) == (0, "ada\n")
    env = ok(capsys, "environment", "show", "-n", "local-python", "--query", "[version, id]")
    assert env == ["1", f"azureml:{prefix}/environments/local-python/versions/1"]


CUSTOM_CONTAINER = (
    "image: docker.io/tensorflow/serving:latest\n"
    "inference_config:\n"
    "  liveness_route: {port: 8501, path: /v1/models/half_plus_two}\n"
    "  readiness_route: {port: 8501, path: /v1/models/half_plus_two}\n"
    "  scoring_route: {port: 8501, path: /v1/models/half_plus_two:predict}\n"
)


def test_a_custom_container_is_refused_saying_what_to_do_and_nothing_is_registered(
    home: Path, tmp_path: Path, capsys
) -> None:
    (tmp_path / "env.yml").write_text("name: tfserving\n" + CUSTOM_CONTAINER)
    err = fails(capsys, "environment", "create", "-f", "env.yml")
    assert "custom container" in err and "az ml environment create" in err
    (tmp_path / "m.bin").write_bytes(b"m")
    ok(capsys, "model", "create", "-n", "half", "-p", "m.bin")
    ok(capsys, "online-endpoint", "create", "-n", "tf-ep")
    indented = "".join(f"  {line}\n" for line in CUSTOM_CONTAINER.splitlines())
    (tmp_path / "dep.yml").write_text("name: blue\nendpoint_name: tf-ep\nmodel: azureml:half:1\n"
                                      "instance_type: Standard_DS3_v2\nenvironment:\n" + indented)
    err = fails(capsys, "online-deployment", "create", "-f", "dep.yml")
    assert "custom container" in err
    assert [e["name"] for e in ok(capsys, "environment", "list")] == ["local-python"]  # the built-in one
    assert ok(capsys, "online-deployment", "list", "-e", "tf-ep") == []
