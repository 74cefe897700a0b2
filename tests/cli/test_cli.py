"""The byom CLI as scripts use it: JSON by default, -o tsv/table/yaml, --query, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from byom.cli.main import main
from byom.core.local.workspace import LocalWorkspace

CONDA = "name: x\ndependencies:\n  - python=3.11\n  - pip:\n    - requests==2.34.2\n"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("BYOM_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("BYOM_ACTOR", "cli-tester")
    return tmp_path / "home"


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "model.pkl").write_bytes(b"\x80\x04pickle")
    return folder


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_create_prints_the_version_as_json(home: Path, model_dir: Path, capsys) -> None:
    code, out, _ = run(capsys, "model", "create", "-n", "clf", "-p", str(model_dir), "--tags", "team=risk", "owner=ana")
    assert code == 0
    data = json.loads(out)
    assert data["name"] == "clf" and data["version"] == "1" and data["tags"] == {"team": "risk", "owner": "ana"}
    assert data["created_by"] == "cli-tester"
    assert data["files"][0]["path"] == "model.pkl" and len(data["files"][0]["sha256"]) == 64


def test_query_tsv_and_table(home: Path, model_dir: Path, capsys) -> None:
    for _ in range(2):
        run(capsys, "model", "create", "-n", "clf", "-p", str(model_dir))
    code, out, _ = run(capsys, "model", "list", "-n", "clf", "--query", "[].version", "-o", "tsv")
    assert (code, out.split()) == (0, ["2", "1"])
    code, out, _ = run(capsys, "model", "show", "-n", "clf", "-v", "1", "--query", "{name:name, stage:stage}",
                       "-o", "tsv")
    assert out.strip() == "clf\tdev"
    code, out, _ = run(capsys, "model", "list", "-o", "table")
    header, rule, row = out.splitlines()[:3]
    assert header.split()[:2] == ["Name", "Version"] and set(rule) <= {"-", " "}
    assert row.split()[:2] == ["clf", "2"]
    code, out, _ = run(capsys, "model", "show", "-n", "clf", "-o", "yaml")
    assert yaml.safe_load(out)["version"] == "2"  # az ml prints versions as text



def test_tsv_and_table_keep_one_line_per_row(home: Path, capsys) -> None:
    for name in ("a", "b"):
        run(capsys, "environment", "create", "-n", name, "--conda-file", _conda_file(home.parent, CONDA))
    code, out, _ = run(capsys, "environment", "list", "-o", "tsv")
    # one line each (a, b and the built-in local-python): the conda file's line breaks are escaped
    assert code == 0 and sorted(line.split("\t")[0] for line in out.splitlines()) == ["a", "b", "local-python"]
    assert "dependencies:\\n  - python=3.11" in out
    code, out, _ = run(capsys, "environment", "list", "-o", "table")
    assert code == 0 and len(out.splitlines()) == 5  # header, rule, three rows
    assert "Conda File" not in out.splitlines()[0]


def _conda_file(folder: Path, text: str) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "conda.yml"
    path.write_text(text)
    return str(path)


def test_update_promote_archive_restore_download(home: Path, model_dir: Path, tmp_path: Path, capsys) -> None:
    run(capsys, "model", "create", "-n", "clf", "-p", str(model_dir))
    code, out, _ = run(capsys, "model", "update", "-n", "clf", "-v", "1", "--set", "description=risk scorer",
                       "--set", "tags.team=risk")
    assert code == 0 and json.loads(out)["description"] == "risk scorer"
    code, out, _ = run(capsys, "model", "update", "-n", "clf", "-v", "1", "--remove", "tags.team")
    assert json.loads(out)["tags"] == {}
    code, out, err = run(capsys, "model", "promote", "-n", "clf", "-v", "1", "--stage", "production",
                         "--approver", "kim")
    assert code == 2 and "staging" in err and out == ""
    code, out, _ = run(capsys, "model", "promote", "-n", "clf", "-v", "1", "--stage", "staging", "--approver", "kim",
                       "--note", "offline eval ok", "--query", "stage", "-o", "tsv")
    assert (code, out.strip()) == (0, "staging")
    run(capsys, "model", "archive", "-n", "clf", "-v", "1")
    code, _, err = run(capsys, "model", "show", "-n", "clf")
    assert code == 2 and "archived" in err
    run(capsys, "model", "restore", "-n", "clf")
    code, out, _ = run(capsys, "model", "download", "-n", "clf", "-v", "1", "--download-path", str(tmp_path / "dl"))
    assert code == 0 and (Path(json.loads(out)["download_path"]) / "model.pkl").read_bytes() == b"\x80\x04pickle"


def test_bad_input_exits_2_with_one_line_and_writes_nothing(
    home: Path, model_dir: Path, tmp_path: Path, capsys
) -> None:
    cases = [
        ("model", "create", "-n", "bad name", "-p", str(model_dir)),
        ("model", "create", "-n", "ok", "-p", str(tmp_path / "missing")),
        ("model", "show", "-n", "ghost"),
        ("model", "delete", "-n", "ghost", "-v", "1", "--yes"),
        ("environment", "create", "-n", "env", "--conda-file", str(tmp_path / "missing.yml")),
        ("model", "list", "--query", "[?"),
    ]
    for argv in cases:
        code, out, err = run(capsys, *argv)
        assert code == 2, argv
        assert out == ""
        assert err.startswith("ERROR: ") and err.count("\n") == 1, err
    assert LocalWorkspace(home).list_models() == []


def test_files_in_azure_storage_are_refused_with_what_to_do(home: Path, tmp_path: Path, capsys) -> None:
    job_output = "azureml://jobs/train-42/outputs/artifacts/paths/model/"
    code, out, err = run(capsys, "model", "create", "-n", "clf", "--path", job_output)
    assert (code, out) == (2, "")
    assert "is in remote storage" in err and "az ml job download" in err
    model_yml = tmp_path / "model.yml"
    model_yml.write_text(f"name: clf\npath: {job_output}\n")
    code, out, err = run(capsys, "model", "create", "-f", str(model_yml))
    assert code == 2 and "is in remote storage" in err and "az ml job download" in err
    assert LocalWorkspace(home).list_models() == []


def test_existing_version_is_refused(home: Path, model_dir: Path, capsys) -> None:
    assert run(capsys, "model", "create", "-n", "clf", "-p", str(model_dir), "-v", "3")[0] == 0
    code, _, err = run(capsys, "model", "create", "-n", "clf", "-p", str(model_dir), "-v", "3")
    assert code == 2 and "already exists" in err
    assert [m.version for m in LocalWorkspace(home).list_model_versions("clf")] == [3]


def test_delete_needs_yes_without_a_terminal(home: Path, model_dir: Path, capsys, monkeypatch) -> None:
    run(capsys, "model", "create", "-n", "clf", "-p", str(model_dir))
    monkeypatch.setattr("sys.stdin", open("/dev/null"))
    code, _, err = run(capsys, "model", "delete", "-n", "clf", "-v", "1")
    assert code == 2 and "--yes" in err
    assert run(capsys, "model", "delete", "-n", "clf", "-v", "1", "--yes")[0] == 0
    assert LocalWorkspace(home).list_models() == []


def test_model_and_environment_from_azure_ml_yaml(home: Path, model_dir: Path, tmp_path: Path, capsys) -> None:
    (tmp_path / "model.yml").write_text(
        "$schema: https://azuremlschemas.azureedge.net/latest/model.schema.json\n"
        f"name: from-yaml\nversion: 4\npath: {model_dir.name}\ntype: custom_model\ndescription: via yaml\n"
        "tags:\n  source: yaml\n"
    )
    code, out, err = run(capsys, "model", "create", "-f", str(tmp_path / "model.yml"))
    assert code == 0, err
    data = json.loads(out)
    read = (data["name"], data["version"], data["description"], data["tags"])
    assert read == ("from-yaml", "4", "via yaml", {"source": "yaml"})
    (tmp_path / "conda.yml").write_text(CONDA)
    (tmp_path / "env.yml").write_text(
        "$schema: https://azuremlschemas.azureedge.net/latest/environment.schema.json\n"
        "name: from-yaml-env\nimage: mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest\nconda_file: conda.yml\n"
    )
    code, out, err = run(capsys, "environment", "create", "-f", str(tmp_path / "env.yml"))
    assert code == 0, err
    env = json.loads(out)
    assert env["conda_file"] == CONDA and env["pip_requirements"] == ["requests==2.34.2"]
    assert env["image"].endswith("ubuntu22.04:latest")


def test_a_docker_build_context_is_refused_locally_with_what_to_do(home: Path, tmp_path: Path, capsys) -> None:
    (tmp_path / "docker-context").mkdir()
    (tmp_path / "docker-context" / "Dockerfile").write_text("FROM python:3.11-slim\n")
    (tmp_path / "env.yml").write_text("name: docker-env\nbuild:\n  path: docker-context\n")
    for argv in (["-f", str(tmp_path / "env.yml")], ["-n", "docker-env", "-b", str(tmp_path / "docker-context")]):
        code, out, err = run(capsys, "environment", "create", *argv)
        assert (code, out) == (2, ""), argv
        assert "cannot build a Docker context" in err and "conda file" in err
    assert [e.name for e in LocalWorkspace(home).list_environments()] == ["local-python"]


def test_environment_diff_and_drift(home: Path, tmp_path: Path, capsys) -> None:
    (tmp_path / "a.yml").write_text(CONDA)
    (tmp_path / "b.yml").write_text(CONDA.replace("2.34.2", "2.30.0"))
    run(capsys, "environment", "create", "-n", "web", "--conda-file", str(tmp_path / "a.yml"))
    run(capsys, "environment", "create", "-n", "web", "--conda-file", str(tmp_path / "b.yml"), "--image", "python:3.11")
    code, out, _ = run(capsys, "environment", "diff", "-n", "web", "--from", "1", "--to", "2", "--query", "changed")
    assert json.loads(out) == [["requests", "requests==2.34.2", "requests==2.30.0"]]
    # never built: compared with nothing, not with byom's own interpreter
    code, out, _ = run(capsys, "environment", "drift", "-n", "web", "-v", "1", "--query",
                       "[0].[package,status,source]", "-o", "tsv")
    assert out.strip().splitlines() == ["requests", "not built yet", "not built yet"]


def test_non_yaml_conda_file_is_refused(home: Path, tmp_path: Path, capsys) -> None:
    (tmp_path / "bad.yml").write_text("dependencies: [python=3.11\n")
    code, _, err = run(capsys, "environment", "create", "-n", "env", "--conda-file", str(tmp_path / "bad.yml"))
    assert code == 2 and "not valid YAML" in err


def test_audit_list(home: Path, model_dir: Path, capsys) -> None:
    run(capsys, "model", "create", "-n", "clf", "-p", str(model_dir))
    code, out, _ = run(capsys, "audit", "list", "--query", "[0].[actor,action,target]", "-o", "tsv")
    assert out.split() == ["cli-tester", "model.create", "model/clf:1"]


def test_usage_errors_exit_2_as_a_process(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "byom.cli", "model", "frobnicate"], capture_output=True, text=True,
                          env={"BYOM_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 2 and "invalid choice" in proc.stderr


def test_az_ml_archive_and_list_flags(home: Path, model_dir: Path, capsys) -> None:
    for _ in range(2):
        run(capsys, "model", "create", "-n", "clf", "-p", str(model_dir), "--only-show-errors")
    code, out, err = run(capsys, "model", "archive", "-n", "clf", "--label", "latest", "--only-show-errors")
    assert code == 0 and [m["version"] for m in json.loads(out)] == ["2"] and err == ""
    code, out, _ = run(capsys, "model", "list", "-n", "clf", "--query", "[].version")
    assert json.loads(out) == ["1"]
    code, out, _ = run(capsys, "model", "list", "-n", "clf", "--archived-only", "--query", "[].version")
    assert json.loads(out) == ["2"]
    code, out, _ = run(capsys, "model", "list", "-n", "clf", "--include-archived", "--max-results", "1",
                       "--query", "[].version")
    assert json.loads(out) == ["2"]
    with pytest.raises(SystemExit) as refused:
        run(capsys, "model", "list", "--include-archived", "--archived-only")
    assert refused.value.code == 2 and "not allowed with" in capsys.readouterr().err

    conda = _conda_file(home.parent, CONDA)
    for _ in range(2):
        run(capsys, "environment", "create", "-n", "env", "--conda-file", conda)
    code, out, _ = run(capsys, "environment", "list", "-n", "env", "--max-results", "1", "--query", "[].version")
    assert (code, json.loads(out)) == (0, ["2"])
    code, out, _ = run(capsys, "environment", "list", "--archived-only")
    assert (code, json.loads(out)) == (0, [])
    code, out, _ = run(capsys, "environment", "archive", "-n", "env", "--label", "latest", "--query", "[].version")
    assert (code, json.loads(out)) == (0, ["2"])
    code, out, _ = run(capsys, "environment", "show", "-n", "env", "--query", "version")
    assert (code, json.loads(out)) == (0, "1")
    code, out, _ = run(capsys, "environment", "list", "--archived-only", "--query", "[].[name, version]")
    assert (code, json.loads(out)) == (0, [["env", "2"]])
    code, out, _ = run(capsys, "environment", "restore", "-n", "env", "-v", "2", "--query", "[].archived")
    assert (code, json.loads(out)) == (0, [False])
    code, _, err = run(capsys, "environment", "archive", "-n", "local-python")
    assert code == 2 and "built in" in err


def test_az_style_updates_and_global_flags(home: Path, model_dir: Path, capsys) -> None:
    run(capsys, "model", "create", "-n", "clf", "-p", str(model_dir))
    code, out, _ = run(capsys, "model", "update", "-n", "clf", "--set", 'tags={"team": "risk", "tier": 1}',
                       "--verbose", "--query", "tags")
    assert (code, json.loads(out)) == (0, {"team": "risk", "tier": "1"})
    code, _, err = run(capsys, "model", "update", "-n", "clf", "--set", "tags=risk")
    assert code == 2 and "JSON object" in err
    code, _, err = run(capsys, "model", "create", "-n", "clf", "-p", str(model_dir), "-v", "latest", "--debug")
    assert code == 2 and "leave it out" in err and "'latest'" not in err.split(":", 2)[-1]


def test_yaml_prints_states_as_plain_strings() -> None:
    from byom.cli.output import render
    from byom.core.entities import BuildState, ProvisioningState

    out = render({"state": ProvisioningState("Succeeded"), "builds": [BuildState("Failed")]}, "yaml")
    assert yaml.safe_load(out) == {"state": "Succeeded", "builds": ["Failed"]}


def test_endpoint_show_gives_the_openai_base_url_beside_the_scoring_uri(home: Path, capsys) -> None:
    assert run(capsys, "online-endpoint", "create", "-n", "chat")[0] == 0
    code, out, _ = run(capsys, "online-endpoint", "show", "-n", "chat")
    shown = json.loads(out)
    assert code == 0 and shown["scoring_uri"].endswith("/endpoints/chat/score")
    assert shown["openai_base_url"] == shown["scoring_uri"].removesuffix("/score") + "/v1"
    assert shown["openai_base_url"].startswith("http://127.0.0.1:")
    code, out, _ = run(capsys, "online-endpoint", "show", "-n", "chat", "--query", "openai_base_url", "-o", "tsv")
    assert out.strip() == shown["openai_base_url"]
