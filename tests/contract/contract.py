"""The Workspace contract, written once; every backend runs it.

A backend's test module subclasses :class:`WorkspaceContract` and provides
the ``workspace`` fixture (a fresh, empty workspace) and ``deploy_kwargs``
(code folder and scoring script its deployments can run); a backend whose
changes go on after ``wait=False`` returns overrides ``settle`` (let them
finish). Tests of what a
backend does not declare in ``info().capabilities`` are skipped with the
reason, so a backend that lacks a capability says so instead of failing.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from byom.core.entities import Deployment, Endpoint, EnvironmentSpec, ModelSpec
from byom.core.errors import AlreadyExists, InUse, InvalidInput, NotFound, Unsupported
from byom.core.workspace import Capability, Workspace

CONDA = """\
name: demo
dependencies:
  - python=3.11
  - numpy=2.3.1
  - pip
  - pip:
      - scikit-learn==1.9.1
"""


def make_model_dir(root: Path, content: bytes = b"weights") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "model.pkl").write_bytes(content)
    (root / "sub").mkdir(exist_ok=True)
    (root / "sub" / "vocab.txt").write_text("a\nb\n")
    return root


def needs(ws: Workspace, capability: str) -> None:
    if not ws.supports(capability):
        pytest.skip(f"{ws.info().kind} backend does not declare {capability!r}")


class WorkspaceContract:
    @pytest.fixture
    def settle(self):
        """Let the backend finish what it accepted with ``wait=False``: nothing to do where changes are immediate."""
        return lambda: None

    # ----------------------------------------------------------- models

    def test_versions_start_at_one_and_increment(self, workspace: Workspace, tmp_path: Path) -> None:
        src = make_model_dir(tmp_path / "m")
        first = workspace.create_model(ModelSpec(name="bert", path=str(src), tags={"team": "nlp"}))
        second = workspace.create_model(ModelSpec(name="bert", path=str(src)))
        assert (first.version, second.version) == (1, 2)
        assert first.stage == "dev" and first.tags == {"team": "nlp"}
        assert sorted(f.path for f in first.files) == ["model.pkl", "sub/vocab.txt"]
        assert workspace.get_model("bert").version == 2
        assert [m.version for m in workspace.list_model_versions("bert")] == [2, 1]
        assert [m.name for m in workspace.list_models()] == ["bert"]

    def test_file_hashes_are_recorded(self, workspace: Workspace, tmp_path: Path) -> None:
        import hashlib

        src = make_model_dir(tmp_path / "m", b"exact bytes")
        model = workspace.create_model(ModelSpec(name="hashed", path=str(src / "model.pkl")))
        assert model.files[0].sha256 == hashlib.sha256(b"exact bytes").hexdigest()
        assert model.size_bytes == len(b"exact bytes")

    def test_explicit_existing_version_is_refused(self, workspace: Workspace, tmp_path: Path) -> None:
        src = make_model_dir(tmp_path / "m")
        workspace.create_model(ModelSpec(name="m1", path=str(src), version=5))
        with pytest.raises(AlreadyExists):
            workspace.create_model(ModelSpec(name="m1", path=str(src), version=5))
        assert [m.version for m in workspace.list_model_versions("m1")] == [5]
        assert workspace.create_model(ModelSpec(name="m1", path=str(src))).version == 6

    @pytest.mark.parametrize("name", ["", "-leading", "has space", "a/b", "x" * 256])
    def test_bad_model_names_are_refused(self, workspace: Workspace, tmp_path: Path, name: str) -> None:
        with pytest.raises(InvalidInput):
            workspace.create_model(ModelSpec(name=name, path=str(make_model_dir(tmp_path / "m"))))
        assert workspace.list_models() == []

    def test_missing_or_empty_paths_are_refused(self, workspace: Workspace, tmp_path: Path) -> None:
        (tmp_path / "empty").mkdir()
        for path in ["", str(tmp_path / "nope"), str(tmp_path / "empty")]:
            with pytest.raises(InvalidInput):
                workspace.create_model(ModelSpec(name="m", path=path))
        assert workspace.list_models() == []

    def test_cloud_model_paths_as_the_backend_declares(self, workspace: Workspace) -> None:
        """Refused where files are copied; a backend that registers them in place overrides this test."""
        assert not workspace.supports(Capability.REMOTE_MODEL_PATHS), "override this test with what it does"
        for path in ["azureml://jobs/train-42/outputs/artifacts/paths/model/",
                     "https://acct.blob.core.windows.net/models/clf/"]:
            with pytest.raises(InvalidInput) as raised:
                workspace.create_model(ModelSpec(name="m", path=path))
            assert "az ml job download" in raised.value.hint
        with pytest.raises(InvalidInput, match="names a registered model, not files"):
            workspace.create_model(ModelSpec(name="m", path="azureml:m:1"))
        assert workspace.list_models() == []

    def test_not_a_gguf_is_refused(self, workspace: Workspace, tmp_path: Path) -> None:
        fake = tmp_path / "fake.gguf"
        fake.write_bytes(b"this is not a model at all")
        with pytest.raises(InvalidInput):
            workspace.create_model(ModelSpec(name="fake", path=str(fake)))
        assert workspace.list_models() == []

    def test_unknown_model_and_version(self, workspace: Workspace, tmp_path: Path) -> None:
        with pytest.raises(NotFound):
            workspace.get_model("ghost")
        workspace.create_model(ModelSpec(name="real", path=str(make_model_dir(tmp_path / "m"))))
        with pytest.raises(NotFound):
            workspace.get_model("real", 7)

    def test_only_description_and_tags_change(self, workspace: Workspace, tmp_path: Path) -> None:
        model = workspace.create_model(ModelSpec(name="m", path=str(make_model_dir(tmp_path / "m"))))
        updated = workspace.update_model("m", 1, description="better", tags={"owner": "ana"})
        assert (updated.description, updated.tags) == ("better", {"owner": "ana"})
        again = workspace.get_model("m", 1)
        assert again.files == model.files and again.description == "better"

    def test_promotion_follows_the_stages(self, workspace: Workspace, tmp_path: Path) -> None:
        workspace.create_model(ModelSpec(name="m", path=str(make_model_dir(tmp_path / "m"))))
        with pytest.raises(InvalidInput):
            workspace.promote_model("m", 1, "production", approver="lee")
        with pytest.raises(InvalidInput):
            workspace.promote_model("m", 1, "staging", approver="")
        assert workspace.get_model("m", 1).stage == "dev"
        workspace.promote_model("m", 1, "staging", approver="lee", note="evals pass")
        prod = workspace.promote_model("m", 1, "production", approver="kim", note="go")
        assert prod.stage == "production"
        assert [(c.from_stage, c.to_stage, c.approver) for c in prod.stage_history] == [
            ("dev", "staging", "lee"),
            ("staging", "production", "kim"),
        ]
        assert prod.stage_history[0].note == "evals pass" and prod.stage_history[1].at

    def test_archive_hides_and_restore_brings_back(self, workspace: Workspace, tmp_path: Path) -> None:
        src = make_model_dir(tmp_path / "m")
        workspace.create_model(ModelSpec(name="m", path=str(src)))
        workspace.create_model(ModelSpec(name="m", path=str(src)))
        workspace.archive_model("m", 2)
        assert workspace.get_model("m").version == 1
        assert [m.version for m in workspace.list_model_versions("m")] == [1]
        assert workspace.get_model("m", 2).archived
        workspace.archive_model("m")
        assert workspace.list_models() == []
        assert [m.name for m in workspace.list_models(include_archived=True)] == ["m"]
        workspace.restore_model("m")
        assert workspace.get_model("m").version == 2

    def test_delete_and_download(self, workspace: Workspace, tmp_path: Path) -> None:
        src = make_model_dir(tmp_path / "m", b"payload")
        workspace.create_model(ModelSpec(name="m", path=str(src)))
        out = workspace.download_model("m", 1, tmp_path / "dl")
        assert (out / "model.pkl").read_bytes() == b"payload"
        assert (out / "sub" / "vocab.txt").read_text() == "a\nb\n"
        workspace.delete_model("m", 1)
        with pytest.raises(NotFound):
            workspace.get_model("m", 1)

    def test_concurrent_registrations_get_distinct_versions(self, workspace: Workspace, tmp_path: Path) -> None:
        src = make_model_dir(tmp_path / "m")
        versions: list[int] = []
        errors: list[BaseException] = []

        def register() -> None:
            try:
                versions.append(workspace.create_model(ModelSpec(name="race", path=str(src))).version)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=register) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        assert sorted(versions) == [1, 2, 3, 4, 5, 6]

    # ----------------------------------------------------- environments

    def test_environment_versions_and_resolution(self, workspace: Workspace) -> None:
        one = workspace.create_environment(EnvironmentSpec(name="sk", conda_file=CONDA, image="ubuntu:22.04"))
        two = workspace.create_environment(EnvironmentSpec(name="sk", conda_file=CONDA.replace("1.9.1", "1.8.0")))
        assert (one.version, two.version) == (1, 2)
        assert one.python == "3.11"
        assert one.pip_requirements == ["numpy==2.3.1", "scikit-learn==1.9.1"]
        assert one.image == "ubuntu:22.04"
        diff = workspace.diff_environments("sk", 1, 2)
        assert diff.changed == [("scikit-learn", "scikit-learn==1.9.1", "scikit-learn==1.8.0")]
        assert {(line.tag, line.text.strip()) for line in diff.conda if line.tag != " "} == {
            ("-", "- scikit-learn==1.9.1"),
            ("+", "- scikit-learn==1.8.0"),
        }

    def test_archived_environments_leave_lists_and_latest_until_restored(self, workspace: Workspace) -> None:
        workspace.create_environment(EnvironmentSpec(name="sk", conda_file=CONDA))
        workspace.create_environment(EnvironmentSpec(name="sk", conda_file=CONDA.replace("1.9.1", "1.8.0")))
        assert [e.version for e in workspace.archive_environment("sk", 2)] == [2]
        assert workspace.get_environment("sk").version == 1
        assert workspace.get_environment("sk", 2).archived
        assert [(e.version, e.archived) for e in workspace.list_environment_versions("sk")] == [(2, True), (1, False)]
        changed = workspace.update_environment("sk", 2, description="kept for the audit")
        assert changed.archived and workspace.get_environment("sk").version == 1

        workspace.archive_environment("sk")
        assert "sk" not in [e.name for e in workspace.list_environments()]
        assert "sk" in [e.name for e in workspace.list_environments(include_archived=True)]
        with pytest.raises(NotFound):
            workspace.get_environment("sk")
        assert [e.version for e in workspace.restore_environment("sk")] == [1, 2]
        assert workspace.get_environment("sk").version == 2
        assert workspace.get_environment("sk", 2).description == "kept for the audit"
        actions = [r.action for r in workspace.list_audit(target_prefix="environment/sk")]
        assert actions.count("environment.archive") == 2 and actions.count("environment.restore") == 2

        with pytest.raises(InvalidInput, match="built in"):
            workspace.archive_environment("local-python")
        with pytest.raises(NotFound):
            workspace.archive_environment("sk", 9)
        with pytest.raises(NotFound):
            workspace.restore_environment("nope")

    def test_docker_contexts_as_the_backend_declares(self, workspace: Workspace, tmp_path: Path) -> None:
        """Refused where nothing builds them; a backend that builds them overrides this test."""
        assert not workspace.supports(Capability.DOCKER_BUILDS), "override this test with what it does"
        (tmp_path / "Dockerfile").write_text("FROM python:3.11-slim\n")
        with pytest.raises(InvalidInput) as raised:
            workspace.create_environment(EnvironmentSpec(name="docker", build_context=str(tmp_path)))
        assert "conda file" in raised.value.hint
        assert [e.name for e in workspace.list_environments()] == ["local-python"]

    def test_local_python_is_built_in(self, workspace: Workspace) -> None:
        names = [e.name for e in workspace.list_environments()]
        assert "local-python" in names
        assert workspace.get_environment("local-python").built_in
        with pytest.raises(InvalidInput):
            workspace.create_environment(EnvironmentSpec(name="local-python", conda_file=CONDA))

    @pytest.mark.parametrize("conda", ["dependencies: [unclosed", "name: x\n", "just text", "dependencies: []"])
    def test_bad_conda_files_are_refused(self, workspace: Workspace, conda: str) -> None:
        with pytest.raises(InvalidInput):
            workspace.create_environment(EnvironmentSpec(name="bad", conda_file=conda))
        with pytest.raises(NotFound):
            workspace.get_environment("bad")

    def test_environment_drift_reports_each_pin(self, workspace: Workspace) -> None:
        import numpy

        conda = f"dependencies:\n  - numpy={numpy.__version__}\n  - pip:\n    - surely-not-installed-pkg==1.0\n"
        workspace.create_environment(EnvironmentSpec(name="d", conda_file=conda))
        entries = {e.package: e for e in workspace.environment_drift("d")}
        # not built yet: compared with nothing (byom's interpreter is not where it will run), its versions beside
        assert {e.status for e in entries.values()} == {"not built yet"}
        assert (entries["numpy"].installed, entries["numpy"].source) == (None, "not built yet")
        assert entries["numpy"].current == numpy.__version__

    # -------------------------------------------------------- endpoints

    def test_endpoint_create_keys_and_regeneration(self, workspace: Workspace) -> None:
        ep = workspace.create_or_update_endpoint(Endpoint(name="chat-ep", description="chat"))
        assert ep.auth_mode == "key" and ep.traffic == {} and ep.provisioning_state == "Succeeded"
        keys = workspace.get_keys("chat-ep")
        assert keys.primary_key and keys.secondary_key and keys.primary_key != keys.secondary_key
        new = workspace.regenerate_key("chat-ep", "secondary")
        assert new.primary_key == keys.primary_key and new.secondary_key != keys.secondary_key
        assert [e.name for e in workspace.list_endpoints()] == ["chat-ep"]
        for record in workspace.list_audit():
            assert keys.primary_key not in json.dumps(record.to_dict())
            assert new.secondary_key not in json.dumps(record.to_dict())

    def test_consumers_are_issued_once_changed_and_deleted_where_declared(self, workspace: Workspace) -> None:
        workspace.create_or_update_endpoint(Endpoint(name="shop-ep"))
        if not workspace.supports(Capability.CONSUMERS):
            with pytest.raises(Unsupported) as absent:
                workspace.list_consumers("shop-ep")
            assert "API Management" in (absent.value.hint or "")
            return
        issued = workspace.create_consumer("shop-ep", "team-a", {"tokens_per_minute": 500})
        assert issued.key and issued.tokens_per_minute == 500 and issued.requests_per_minute is None
        with pytest.raises(AlreadyExists):
            workspace.create_consumer("shop-ep", "TEAM-A")
        for bad in ({"tokens_per_minute": 0}, {"tokens_per_day": True}, {"per_hour": 5}):
            with pytest.raises(InvalidInput):
                workspace.create_consumer("shop-ep", "team-b", bad)
        with pytest.raises(NotFound):
            workspace.create_consumer("no-such-ep", "team-b")
        changed = workspace.update_consumer("shop-ep", "Team-A", {"tokens_per_minute": None, "tokens_per_day": 9})
        assert (changed.tokens_per_minute, changed.tokens_per_day) == (None, 9)
        renewed = workspace.regenerate_consumer_key("shop-ep", "team-a")
        assert renewed.key != issued.key and renewed.tokens_per_day == 9
        assert [c.to_dict() for c in workspace.list_consumers("shop-ep")] == [workspace.get_consumer(
            "shop-ep", "team-a").to_dict()]
        assert "key" not in workspace.get_consumer("shop-ep", "team-a").to_dict()
        for record in workspace.list_audit():
            assert issued.key not in json.dumps(record.to_dict()) and renewed.key not in json.dumps(record.to_dict())
        workspace.delete_consumer("shop-ep", "team-a")
        assert workspace.list_consumers("shop-ep") == []
        with pytest.raises(NotFound):
            workspace.update_consumer("shop-ep", "team-a", {"tokens_per_day": 1})

    @pytest.mark.parametrize("name", ["ab", "9starts-with-digit", "ends-", "x" * 33, "under_score"])
    def test_bad_endpoint_names_are_refused(self, workspace: Workspace, name: str) -> None:
        with pytest.raises(InvalidInput):
            workspace.create_or_update_endpoint(Endpoint(name=name))
        assert workspace.list_endpoints() == []

    def test_delete_endpoint(self, workspace: Workspace) -> None:
        workspace.create_or_update_endpoint(Endpoint(name="gone"))
        workspace.delete_endpoint("gone")
        with pytest.raises(NotFound):
            workspace.get_endpoint("gone")

    def test_endpoint_changes_can_be_left_to_the_backend(self, workspace: Workspace, settle) -> None:
        """``wait=False`` returns once the change is accepted; the change is made all the same."""
        seen: list[str] = []

        def report(message: str, fraction: float | None = None) -> None:
            seen.append(message)

        workspace.create_or_update_endpoint(Endpoint(name="later"), wait=False, progress=report)
        settle()
        assert workspace.get_endpoint("later").provisioning_state == "Succeeded"
        keys = workspace.get_keys("later")
        workspace.regenerate_key("later", "primary", wait=False, progress=report)
        settle()
        assert workspace.get_keys("later").primary_key != keys.primary_key
        workspace.set_traffic("later", {}, {}, wait=False, progress=report)
        settle()
        workspace.delete_endpoint("later", wait=False, progress=report)
        settle()
        with pytest.raises(NotFound):
            workspace.get_endpoint("later")

    # ------------------------------------------------------ deployments

    @pytest.fixture
    def blue_green(self, workspace: Workspace, tmp_path: Path, deploy_kwargs: dict) -> Workspace:
        needs(workspace, Capability.DEPLOYMENTS)
        workspace.create_model(ModelSpec(name="clf", path=str(make_model_dir(tmp_path / "m"))))
        workspace.create_or_update_endpoint(Endpoint(name="ep1"))
        for name in ("blue", "green"):
            dep = workspace.create_or_update_deployment(
                Deployment(name=name, endpoint_name="ep1", model="clf:1", **deploy_kwargs,
                           environment_variables={"DEPLOYMENT_LABEL": name})
            )
            assert dep.provisioning_state == "Succeeded", dep.state_reason
        return workspace

    def test_create_refuses_what_exists(self, blue_green: Workspace, deploy_kwargs: dict) -> None:
        """az ml's create never updates: an existing endpoint or deployment is refused, and stays as it was."""
        ws = blue_green
        endpoint = ws.set_traffic("ep1", {"blue": 100})
        with pytest.raises(AlreadyExists, match="already exists: use update"):
            ws.create_endpoint(Endpoint(name="ep1", description="again"))
        kept = ws.get_endpoint("ep1")
        assert (kept.traffic, kept.description) == (endpoint.traffic, endpoint.description)
        before = ws.get_deployment("ep1", "blue")
        with pytest.raises(AlreadyExists, match="already exists: use update"):
            ws.create_deployment(Deployment(name="blue", endpoint_name="ep1", model="clf:1", instance_count=2,
                                            **deploy_kwargs))
        after = ws.get_deployment("ep1", "blue")
        assert (after.instance_count, after.updated_at) == (before.instance_count, before.updated_at)
        created = ws.create_endpoint(Endpoint(name="ep2"))
        assert created.name == "ep2"

    def test_local_endpoints_only_where_declared(self, workspace: Workspace) -> None:
        """az ml's --local endpoint: made where the backend declares it, refused plainly elsewhere."""
        if workspace.supports(Capability.LOCAL_ENDPOINTS):
            assert workspace.create_endpoint(Endpoint(name="solo", local=True)).local
            with pytest.raises(InvalidInput, match="no traffic split"):
                workspace.set_traffic("solo", {})
        else:
            with pytest.raises(Unsupported, match="local endpoint"):
                workspace.create_endpoint(Endpoint(name="solo", local=True))
            assert workspace.list_endpoints() == []

    def test_traffic_rules(self, blue_green: Workspace) -> None:
        ws = blue_green
        ws.set_traffic("ep1", {"blue": 90, "green": 10})
        assert ws.get_endpoint("ep1").traffic == {"blue": 90, "green": 10}
        refused = [
            ({"blue": 90, "green": 20}, None),  # total 110
            ({"blue": 50}, None),  # total 50
            ({"purple": 100}, None),  # unknown deployment
            ({"blue": 100}, {"green": 60}),  # mirror over 50 %
            ({"blue": 100}, {"blue": 10}),  # mirror to a live deployment
        ]
        for live, mirror in refused:
            with pytest.raises(InvalidInput):
                ws.set_traffic("ep1", live, mirror)
            assert ws.get_endpoint("ep1").traffic == {"blue": 90, "green": 10}
        ep = ws.set_traffic("ep1", {"BLUE": 100, "green": 0}, {"green": 10})
        assert ep.traffic == {"blue": 100, "green": 0} and ep.mirror_traffic == {"green": 10}

    def test_deployment_with_traffic_cannot_be_deleted(self, blue_green: Workspace, settle) -> None:
        ws = blue_green
        ws.set_traffic("ep1", {"blue": 100})
        with pytest.raises(InUse):
            ws.delete_deployment("ep1", "blue")
        ws.set_traffic("ep1", {"green": 100})
        ws.delete_deployment("ep1", "blue", wait=False, progress=lambda message, fraction=None: None)
        settle()
        assert [d.name for d in ws.list_deployments("ep1")] == ["green"]

    def test_model_in_use_cannot_be_deleted(self, blue_green: Workspace) -> None:
        with pytest.raises(InUse):
            blue_green.delete_model("clf", 1)
        assert blue_green.get_model("clf", 1)

    def test_invoke_routes_by_split_and_by_header(self, blue_green: Workspace) -> None:
        ws = blue_green
        ws.set_traffic("ep1", {"green": 100})
        result = ws.invoke("ep1", {"x": 1})
        assert result.status_code == 200 and result.deployment == "green"
        assert result.request_id
        targeted = ws.invoke("ep1", {"x": 2}, deployment="blue")
        assert targeted.status_code == 200 and targeted.deployment == "blue"
        assert ws.invoke("ep1", {"x": 3}, deployment="purple").status_code == 404

    def test_a_streamed_invoke_yields_its_head_then_its_answer(self, blue_green: Workspace) -> None:
        ws = blue_green
        ws.set_traffic("ep1", {"green": 100})
        whole = ws.invoke("ep1", {"prompt": "hello there"}, deployment="blue").json()
        [first, *events] = ws.invoke_stream("ep1", {"prompt": "hello there"}, deployment="blue")
        head = first.head
        assert head is not None and head.status_code == 200 and head.deployment == "blue" and head.request_id
        # streamed or answered whole (as Azure ML's endpoints do), the events make up the same answer
        assert events and all(e.head is None and e.data for e in events)
        assert "".join(e.text for e in events) == (whole.get("text") or "")
        assert [e.at_ms for e in [first, *events]] == sorted(e.at_ms for e in [first, *events])
        [missing] = ws.invoke_stream("ep1", {"prompt": "hi"}, deployment="purple")
        assert missing.head is not None and missing.head.status_code == 404
        with pytest.raises(InvalidInput, match="JSON object"):
            ws.invoke_stream("ep1", ["not", "an", "object"])  # type: ignore[arg-type]  # what is refused

    def test_no_traffic_means_404(self, blue_green: Workspace) -> None:
        assert blue_green.invoke("ep1", {"x": 1}).status_code == 404

    def test_metrics_count_requests(self, blue_green: Workspace) -> None:
        ws = blue_green
        ws.set_traffic("ep1", {"blue": 100})
        for i in range(5):
            assert ws.invoke("ep1", {"i": i}).ok
        if not ws.supports(Capability.METRICS):
            # a backend without metrics says where to look instead of answering zeros
            with pytest.raises(Unsupported) as refused:
                ws.get_metrics("ep1")
            assert refused.value.hint
            return
        figures = {m.deployment: m for m in ws.get_metrics("ep1") if not m.mirrored}
        assert figures["blue"].requests == 5 and figures["blue"].errors == 0
        assert figures["blue"].p50_ms is not None

    def test_scale_and_logs(self, blue_green: Workspace) -> None:
        dep = blue_green.scale_deployment("ep1", "blue", 2)
        assert dep.instance_count == 2 and dep.provisioning_state == "Succeeded"
        assert isinstance(blue_green.get_deployment_logs("ep1", "blue", lines=5), str)

    # ------------------------------------------------------------ audit

    def test_audit_records_changes_newest_first(self, workspace: Workspace, tmp_path: Path) -> None:
        workspace.create_model(ModelSpec(name="m", path=str(make_model_dir(tmp_path / "m"))))
        workspace.update_model("m", 1, tags={"a": "b"})
        records = workspace.list_audit()
        assert [r.action for r in records[:2]] == ["model.update", "model.create"]
        assert records[0].before == {"description": "", "tags": {}}
        assert records[0].after == {"description": "", "tags": {"a": "b"}}
        assert records[0].actor and records[0].at
        assert [r.action for r in workspace.list_audit(target_prefix="model/m:1")][:1] == ["model.update"]
