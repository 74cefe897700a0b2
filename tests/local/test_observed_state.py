"""What a deployment's waiter writes back when it is done, with no processes (the in-memory workspace)."""

from __future__ import annotations

from pathlib import Path

from byom.core.entities import Deployment, Endpoint, ModelSpec, utcnow, utcnow_after
from byom.core.memory import InMemoryWorkspace
from byom.core.serving import FakeServing


class OvertakingServing(FakeServing):
    """The first apply is overtaken: a newer change of the deployment finishes while it waits."""

    def __init__(self) -> None:
        super().__init__()
        self.newer: Deployment | None = None
        self.workspace: InMemoryWorkspace | None = None

    def apply(self, state, deployment, progress, wait):
        if self.newer is None or self.workspace is None:
            return super().apply(state, deployment, progress, wait)
        newer, self.newer = self.newer, None
        self.fail_next("the newer change failed")
        self.workspace.create_or_update_deployment(newer)  # within the same millisecond, as often as not
        return deployment.replace(state_reason="A later change to this deployment superseded this one.")


def test_a_superseded_waiter_leaves_the_newer_changes_state_alone(tmp_path: Path) -> None:
    ws = InMemoryWorkspace(actor="tester", seed=1)
    serving = OvertakingServing()
    ws.serving = serving
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "model.pkl").write_bytes(b"weights")
    ws.create_model(ModelSpec(name="m", path=str(tmp_path / "m")))
    ws.create_or_update_endpoint(Endpoint(name="ep1"))
    first = Deployment(name="blue", endpoint_name="ep1", model="m:1")
    assert ws.create_or_update_deployment(first).provisioning_state == "Succeeded"

    serving.workspace, serving.newer = ws, first.replace(instance_count=2)
    overtaken = ws.create_or_update_deployment(first.replace(environment_variables={"A": "1"}))
    assert overtaken.provisioning_state == "Updating" and "superseded" in overtaken.state_reason

    stored = ws.get_deployment("ep1", "blue")
    assert (stored.provisioning_state, stored.state_reason) == ("Failed", "the newer change failed")
    assert stored.instance_count == 2
    states = [r.after["provisioning_state"] for r in ws.list_audit(target_prefix="deployment/ep1/blue")
              if r.action == "deployment.state"]
    assert "Updating" not in states


def test_each_change_of_a_deployment_gets_a_later_stamp_even_within_a_millisecond(tmp_path: Path) -> None:
    ws = InMemoryWorkspace(actor="tester", seed=1)
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "model.pkl").write_bytes(b"weights")
    ws.create_model(ModelSpec(name="m", path=str(tmp_path / "m")))
    ws.create_or_update_endpoint(Endpoint(name="ep1"))
    stamps = [ws.create_or_update_deployment(Deployment(name="blue", endpoint_name="ep1", model="m:1")).updated_at]
    for count in (2, 3, 1, 2, 3):
        stamps.append(ws.scale_deployment("ep1", "blue", count, wait=False).updated_at)
    assert stamps == sorted(set(stamps)), stamps

    ahead = "2999-01-01T00:00:00.999+00:00"  # a stamp written before the clock stepped back
    assert utcnow_after(ahead) == "2999-01-01T00:00:01.000+00:00"
    before = utcnow()
    assert before <= utcnow_after("2000-01-01T00:00:00.000+00:00") <= utcnow(), "a stamp in the past holds nothing back"
