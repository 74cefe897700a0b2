"""console.views.monitoring: the windows, one colour per deployment, y from 0, zero-filled series, whole ms."""

from byom.console.views import monitoring as view
from byom.core.entities import Deployment, InstanceStatus, RequestFact
from byom.core.metrics import summarize
from byom.core.metrics_series import ResourceSample

NOW = 1_700_000_125.0


def facts() -> list[RequestFact]:
    def f(at, dep, status=200, latency=10.4, mirrored=False):
        return RequestFact(at=at, endpoint="ep", deployment=dep, model_version="m:1", status_code=status,
                           latency_ms=latency, mirrored=mirrored)
    return [f(NOW - 500, "blue", latency=20.6), f(NOW - 5, "blue", 500, 33.3), f(NOW - 5, "green", 404),
            f(NOW - 5, "green", mirrored=True)]


def metrics():
    return view.with_quiet_deployments(summarize(facts(), "ep", 600, 60, NOW), ["blue", "green", "idle"],
                                       endpoint="ep", window_s=600, bucket_s=60, now=NOW)


def test_windows_and_their_buckets():
    assert view.window_index() == 1 and list(view.WINDOWS)[1] == "Last hour"
    assert all(window % bucket == 0 for window, bucket in view.WINDOWS.values())


def test_one_colour_per_deployment_on_every_chart():
    palette = view.colours(["green", "blue", "idle"])
    assert palette == view.colours(["idle", "blue", "green"]), "the same colours whatever the order"
    assert len(set(palette.values())) == 3
    requests = view.requests_figure(metrics(), palette, 60)
    latency = view.latency_figure(metrics(), palette, "p95", 60)
    for figure in (requests, latency):
        by_name = {t.name: t.line.color for t in figure.data}
        assert by_name["blue"] == palette["blue"] and by_name["green"] == palette["green"]
        assert by_name["green (mirror)"] == palette["green"]
    assert {t.name: t.line.dash for t in requests.data}["green (mirror)"] == "dot"


def test_counts_are_zero_filled_from_zero_and_a_quiet_deployment_is_drawn_flat():
    figure = view.requests_figure(metrics(), view.colours(["blue", "green", "idle"]), 60)
    blue = next(t for t in figure.data if t.name == "blue")
    assert list(blue.y) == [0, 1, 0, 0, 0, 0, 0, 0, 0, 1]
    idle = next(t for t in figure.data if t.name == "idle")
    assert list(idle.y) == [0] * 10
    assert figure.layout.yaxis.range[0] == 0
    assert figure.layout.xaxis.range[0].timestamp() % 60 == 0, "the window starts on a whole minute"


def test_latency_is_one_line_per_deployment_in_whole_ms_with_gaps_where_quiet():
    figure = view.latency_figure(metrics(), view.colours(["blue", "green", "idle"]), "p99", 60)
    assert [t.name for t in figure.data] == ["blue", "green", "green (mirror)", "idle"]
    blue = figure.data[0]
    assert list(blue.y) == [None, 21, None, None, None, None, None, None, None, 33]
    assert figure.layout.title.text == "Latency p99"
    assert figure.layout.yaxis.range[0] == 0
    table = view.metrics_table(metrics()).set_index("deployment")
    assert table.loc["blue", "p50 ms"] == 21 and table.loc["idle", "requests"] == 0
    assert table.loc["idle", "p95 ms"] == view.NO_LATENCY


def test_requests_by_status_code_leave_mirrors_out():
    figure = view.status_figure(metrics(), 60)
    by_code = {t.name: list(t.y) for t in figure.data}
    assert set(by_code) == {"200", "404", "500"}
    assert by_code["200"][1] == 1 and by_code["200"][-1] == 0, "the mirrored 200 is not a live answer"
    assert by_code["404"][-1] == 1 and by_code["500"][-1] == 1
    assert figure.layout.barmode == "stack"
    assert {t.name: t.marker.color for t in figure.data}["500"] == view.STATUS_COLOURS["5xx"]


def test_instances_cpu_and_memory():
    palette = view.colours(["blue", "green"])
    deployments = [Deployment(name="blue", endpoint_name="ep", model="m:1", instance_count=2,
                              instances=[InstanceStatus(id="a", state="Ready"),
                                         InstanceStatus(id="b", state="Starting")]),
                   Deployment(name="green", endpoint_name="ep", model="m:1"),
                   Deployment(name="azure", endpoint_name="ep", model="m:1", provisioning_state="Succeeded")]
    palette = view.colours(["blue", "green", "azure"])
    instances = view.instances_figure(deployments, palette)
    assert list(instances.data[0].y) == [1, 0, 1] and list(instances.data[1].y) == [2, 1, 1]
    assert list(instances.data[0].marker.color) == [palette["blue"], palette["green"], palette["azure"]]
    samples = [ResourceSample(NOW - 10, "ep", "blue", 2, None, 300 * 2**20),
               ResourceSample(NOW - 5, "ep", "blue", 2, 150.0, 310 * 2**20)]
    cpu = view.cpu_figure(samples, palette, (NOW - 600, NOW))
    assert list(cpu.data[0].y) == [None, 150.0] and cpu.data[0].line.color == palette["blue"]
    memory = view.memory_figure(samples, palette, (NOW - 600, NOW))
    assert list(memory.data[0].y) == [300.0, 310.0] and memory.layout.yaxis.range[0] == 0
    assert "Sampled from the model-server processes" in view.usage_caption(samples)


def token_metrics():
    def f(at, dep, tokens=(0, 0), ttft=None, tpot=None, mirrored=False):
        return RequestFact(at=at, endpoint="ep", deployment=dep, model_version="m:1", status_code=200,
                           latency_ms=50.0, mirrored=mirrored, input_tokens=tokens[0], output_tokens=tokens[1],
                           ttft_ms=ttft, tpot_ms=tpot)
    rows = [f(NOW - 500, "blue", (30, 8)),  # a whole answer: tokens, no token times
            f(NOW - 5, "blue", (20, 16), 41.6, 2.24), f(NOW - 5, "green", (10, 4), 90.2, 6.66),
            f(NOW - 5, "green", mirrored=True)]
    return view.with_quiet_deployments(summarize(rows, "ep", 600, 60, NOW), ["blue", "green", "idle"],
                                       endpoint="ep", window_s=600, bucket_s=60, now=NOW)


def test_tokens_per_deployment_zero_filled_from_zero_in_the_deployments_colours_mirrors_left_out():
    palette = view.colours(["blue", "green", "idle"])
    output = view.tokens_figure(token_metrics(), palette, 60, "output")
    assert output.layout.title.text == "Output tokens per 1 min"
    assert [t.name for t in output.data] == ["blue", "green", "idle"], "a mirror has no tokens of its own"
    by_name = {t.name: list(t.y) for t in output.data}
    assert by_name["blue"] == [0, 8, 0, 0, 0, 0, 0, 0, 0, 16] and by_name["idle"] == [0] * 10
    assert {t.name: t.line.color for t in output.data} == palette
    assert output.layout.yaxis.range[0] == 0
    inputs = view.tokens_figure(token_metrics(), palette, 60, "input")
    assert {t.name: sum(t.y) for t in inputs.data} == {"blue": 50, "green": 10, "idle": 0}
    table = view.metrics_table(token_metrics()).set_index("deployment")
    assert (table.loc["blue", "input tokens"], table.loc["blue", "output tokens"]) == (50, 24)


def test_token_times_are_gaps_where_nothing_streamed_whole_ms_and_tenths_per_token():
    palette = view.colours(["blue", "green", "idle"])
    first = view.first_token_figure(token_metrics(), palette, "p95", 60)
    assert first.layout.title.text == "Time to first token p95"
    by_name = {t.name: list(t.y) for t in first.data}
    assert by_name["blue"] == [None] * 9 + [42], "the whole answer 8 minutes ago has no first-token time"
    assert by_name["green"][-1] == 90 and by_name["idle"] == [None] * 10
    assert first.layout.yaxis.range[0] == 0
    per_token = view.per_token_figure(token_metrics(), palette, "p50", 60)
    assert {t.name: t.y[-1] for t in per_token.data} == {"blue": 2.2, "green": 6.7, "idle": None}
    assert {t.name: t.line.color for t in per_token.data} == palette
    assert "streamed answers" in view.token_times_caption(token_metrics())
    assert "No answer was streamed" in view.token_times_caption(metrics())
