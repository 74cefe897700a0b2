"""console.views.overview: the latest changes, the demo offer, request rates."""

from byom.console.views import overview as view
from byom.core.entities import AuditRecord


def test_audit_table_says_what_each_change_did():
    records = [
        AuditRecord(at="2026-11-23T10:00:00+00:00", actor="ana", action="endpoint.create", target="endpoint/ep",
                    after={"traffic": {}}),
        AuditRecord(at="2026-11-23T10:00:01+00:00", actor="byom-control-plane", action="deployment.state",
                    target="deployment/ep/blue", after={"provisioning_state": "Failed", "reason": "init() raised"}),
        AuditRecord(at="2026-11-23T10:00:02+00:00", actor="ana", action="endpoint.traffic", target="endpoint/ep",
                    before={"traffic": {"blue": 100}}, after={"traffic": {"blue": 90, "green": 10}}),
    ]
    assert list(view.audit_table(records)["change"]) == [
        "created",
        "provisioning_state: Failed; reason: init() raised",
        'traffic: {"blue": 100} → {"blue": 90, "green": 10}',
    ]


def test_the_demo_is_unfinished_until_both_its_deployments_run():
    from byom.core.entities import Deployment, Endpoint

    demo = [Endpoint(name="demo")]
    chat = Deployment(name="chat", endpoint_name="demo", model="m:1", provisioning_state="Succeeded")
    ranks = Deployment(name="ranks", endpoint_name="demo", model="m:1", provisioning_state="Failed")
    assert not view.demo_unfinished([], [])
    assert view.demo_unfinished(demo, [chat, ranks])
    assert not view.demo_unfinished(demo, [chat, ranks.replace(provisioning_state="Succeeded")])


def test_requests_per_minute_leave_mirrored_copies_out():
    from byom.core.entities import DeploymentMetrics

    metrics = [DeploymentMetrics(endpoint="demo", deployment="chat", window_s=300, requests=50),
               DeploymentMetrics(endpoint="demo", deployment="shadow", window_s=300, requests=50, mirrored=True)]
    assert view.requests_per_minute(metrics) == 10.0
    assert (view.rate_text(10.0), view.rate_text(None)) == ("10.0", "n/a")


def test_change_text_of_a_deletion_and_of_long_values():
    assert view.change_text({"traffic": {}}, None) == "deleted"
    assert view.change_text(None, None) == ""
    assert view.change_text({"description": "a"}, {"description": "b" * 80}).endswith("…")
