"""Every ``st.session_state`` key the console uses, named in one place.

Session state is per browser session; nothing here is shared between users.
Widget keys that depend on a name (one traffic box per deployment) are built
by the functions at the bottom so that pages and tests spell them the same.
"""

# The workspace -------------------------------------------------------------
WORKSPACE = "byom.workspace"
"""A Workspace object put here by a test (or an embedding app) replaces the opened one."""
WORKSPACE_HOME = "byom.workspace_home"
"""The local workspace home this session looks at (text of a path)."""
WORKSPACE_AZURE = "byom.workspace_azure"
"""The Azure ML workspace this session looks at (a core.azure.connect.AzureTarget); None: the local home."""
AZURE_CONNECT = "byom.azure_connect"
"""Keyword arguments for core.azure.connect.connect (a credential, an HTTP transport) put here by a test;
a served console signs in with DefaultAzureCredential."""

# Messages that outlive a rerun ----------------------------------------------
FLASH = "byom.flash"
"""List of (kind, text) shown once at the top of the next run of a page."""
FEEDBACK = "byom.feedback"
"""The container at the top of the page that progress and errors go into (console.ui.top)."""
KEPT = "byom.kept"
"""{widget key: value} of the widgets a page keeps across navigation (console.ui.remember)."""
RESETS = "byom.resets"
"""{widget key: value} to set at the start of the next run (console.ui.reset_later)."""
CONFIRM = "byom.confirm"
"""The destructive action waiting for its confirmation (an action id), or None."""

# Selections shared between pages --------------------------------------------
ENDPOINT = "byom.endpoint"
"""The endpoint last chosen on any page; the others start from it."""
MODEL = "byom.model"
ENDPOINT_PICKER = "endpoint.picker"
"""The endpoint picker every page shows (console/pickers.py); it follows ``ENDPOINT``."""

# Playground -------------------------------------------------------------------
LAST_ANSWER = "byom.last_answer"
"""Text of the last Playground answer, offered on the Token ranks page."""
PLAYGROUND_RESULTS = "byom.playground_results"
CHAT_HISTORY = "byom.chat_history"
PLAYGROUND_STREAM = "byom.playground_stream"
"""The answer streaming in (a views.playground.Streamed), until the run that streams it, or the run after a Stop,
shows it as done."""

# Token ranks ------------------------------------------------------------------
RANK_RESULTS = "byom.rank_results"
"""{deployment name: token_ranks response body} of the last analysis."""
RANK_TEXT = "byom.rank_text"
RANK_PROVENANCE = "byom.rank_provenance"
"""{deployment name: core.analysis.Provenance} of the last analysis: model version, endpoint and time, for exports."""
RANK_HTML = "ranks.html"
RANK_DIFF = "byom.rank_diff"
"""(core.compare.Comparison, the prompts, {deployment: Provenance}) of the last comparison over a prompt set."""

# Widgets ----------------------------------------------------------------------
SIDEBAR_BACKEND = "sidebar.backend"
SIDEBAR_HOME = "sidebar.home"
SIDEBAR_OPEN_LOCAL = "sidebar.open_local"
SIDEBAR_AZURE_CONFIG = "sidebar.azure.config"
SIDEBAR_AZURE_SUBSCRIPTION = "sidebar.azure.subscription"
SIDEBAR_AZURE_RESOURCE_GROUP = "sidebar.azure.resource_group"
SIDEBAR_AZURE_WORKSPACE = "sidebar.azure.workspace_name"
SIDEBAR_OPEN_AZURE = "sidebar.open_azure"
SIDEBAR_LOCAL_FORM = "sidebar.local"
SIDEBAR_AZURE_FORM = "sidebar.azure"
# Tab sets keep the open tab across reruns (a change inside a tab reruns the page).
MODEL_TABS = "models.tabs"
ENV_TABS = "environments.tabs"
ENDPOINT_TABS = "endpoints.tabs"
RANK_TABS = "ranks.tabs"
OVERVIEW_SET_UP_DEMO = "overview.set_up_demo"

MODEL_SHOW_ARCHIVED = "models.show_archived"
REGISTER_FORM = "models.register"
REGISTER_NAME = "models.register.name"
REGISTER_SOURCE = "models.register.source"
REGISTER_PATH = "models.register.path"
REGISTER_UPLOADS = "byom.register_uploads"
"""How many registrations cleared the upload box: its key changes with it (an uploader's value cannot be set)."""
REGISTER_PACKAGE = "models.register.package"
REGISTER_DESCRIPTION = "models.register.description"
REGISTER_TAGS = "models.register.tags"
REGISTER_SUBMIT = "models.register.submit"
REGISTER_CLEARED = {REGISTER_NAME: "", REGISTER_PATH: "", REGISTER_PACKAGE: False, REGISTER_DESCRIPTION: "",
                    REGISTER_TAGS: ""}
"""The register form's fields as a fresh form shows them, set after a model is registered."""
MODEL_VERSION = "models.version"
MODEL_VERSION_PAGE = "models.version.page"
"""The container of the chosen version's page: its files with their hashes, the deployments using it."""
MODEL_EDIT_FORM = "models.edit"
MODEL_TAGS = "models.edit.tags"
MODEL_DESCRIPTION = "models.edit.description"
MODEL_SAVE = "models.edit.save"
PROMOTE_FORM = "models.promote"
PROMOTE_SUBMIT = "models.promote.submit"
ARCHIVE = "models.archive"
RESTORE = "models.restore"
DOWNLOAD_DEST = "models.download.dest"
DOWNLOAD = "models.download"
DOWNLOAD_ZIP = "models.download.zip"
DELETE_MODEL = "models.delete"

ENVIRONMENT = "environments.name"
ENV_VERSION = "environments.version"
ENV_DIFF_FROM = "environments.diff.from"
ENV_DIFF_TO = "environments.diff.to"
ENV_BUILD = "environments.build"
ENV_LOG_ALL = "environments.build.log_all"
ENV_SHOW_ARCHIVED = "environments.show_archived"
ENV_ARCHIVE = "environments.archive"
ENV_RESTORE = "environments.restore"
ENV_CREATE_FORM = "environments.create"
ENV_CREATE_NAME = "environments.create.name"
ENV_CREATE_CONDA = "environments.create.conda"
ENV_CREATE_IMAGE = "environments.create.image"
ENV_CREATE_BUILD_CONTEXT = "environments.create.build_context"
ENV_CREATE_SUBMIT = "environments.create.submit"
ENV_CREATE_CLEARED = {ENV_CREATE_NAME: "", ENV_CREATE_CONDA: "", ENV_CREATE_IMAGE: "", ENV_CREATE_BUILD_CONTEXT: ""}

ENDPOINT_CREATE_FORM = "endpoints.create"
ENDPOINT_CREATE_NAME = "endpoints.create.name"
ENDPOINT_CREATE_DESCRIPTION = "endpoints.create.description"
ENDPOINT_CREATE_SUBMIT = "endpoints.create.submit"
DEPLOY_FORM = "endpoints.deploy"
DEPLOY_NAME = "endpoints.deploy.name"
DEPLOY_MODEL = "endpoints.deploy.model"
DEPLOY_ENVIRONMENT = "endpoints.deploy.environment"
DEPLOY_CODE = "endpoints.deploy.code"
DEPLOY_SCRIPT = "endpoints.deploy.script"
DEPLOY_INSTANCES = "endpoints.deploy.instances"
DEPLOY_TIMEOUT = "endpoints.deploy.timeout"
DEPLOY_CONCURRENCY = "endpoints.deploy.concurrency"
DEPLOY_SUBMIT = "endpoints.deploy.submit"
DEPLOY_WATCH = "byom.deploy_watch"
"""(endpoint, deployment) of the deploy under way: the top of the Endpoints page follows it to its outcome."""
MANAGE_DEPLOYMENT = "endpoints.manage.deployment"
SCALE = "endpoints.scale"
DELETE_DEPLOYMENT = "endpoints.delete_deployment"
DELETE_ENDPOINT = "endpoints.delete"
SNIPPET_TARGET = "endpoints.snippet.target"
MIRROR_TARGET = "endpoints.traffic.mirror_target"
MIRROR_PERCENT = "endpoints.traffic.mirror_percent"
TRAFFIC_CONFIRM_LARGE = "endpoints.traffic.confirm_large"
TRAFFIC_APPLY = "endpoints.traffic.apply"
MIRROR_REPORT_WINDOW = "endpoints.traffic.mirror_report_window"
ROLLOUT_ABORT = "endpoints.traffic.rollout_abort"
SHOW_KEYS = "endpoints.keys.show"
LOG_DEPLOYMENT = "endpoints.logs.deployment"
LOG_LINES = "endpoints.logs.lines"
LOG_CONTAINER = "endpoints.logs.container"
LOG_SEARCH = "endpoints.logs.search"
LOG_DOWNLOAD = "endpoints.logs.download"
DEPLOYMENT_PAGE = "endpoints.details.deployment"
"""The deployment the 'Deployment details' tab shows (what it runs, instances, metrics, update, logs)."""
UPDATE_DEPLOYMENT = "endpoints.details.update"

PLAY_TARGET = "playground.target"
PLAY_MODE = "playground.mode"
PLAY_PROMPT = "playground.prompt"
PLAY_MAX_TOKENS = "playground.max_new_tokens"
PLAY_TEMPERATURE = "playground.temperature"
PLAY_TOP_P = "playground.top_p"
PLAY_AB_A = "playground.ab.a"
PLAY_AB_B = "playground.ab.b"
PLAY_SEND = "playground.send"
PLAY_CHAT = "playground.chat"
PLAY_CHAT_CLEAR = "playground.chat.clear"
PLAY_STOP = "playground.stop"

RANK_DEPLOYMENT = "ranks.deployment"
RANK_COMPARE = "ranks.compare"
RANK_SOURCE = "ranks.source"
RANK_INPUT = "ranks.input"
RANK_UPLOAD = "ranks.upload"
RANK_T1 = "ranks.threshold.1"
RANK_T2 = "ranks.threshold.2"
RANK_T3 = "ranks.threshold.3"
RANK_ANALYSE = "ranks.analyse"
RANK_DIFF_CHART = "ranks.diff"
RANK_SUMMARY_CHART = "ranks.summary"
RANK_JSON = "ranks.json"
RANK_MODE = "ranks.mode"
RANK_PROMPT_SOURCE = "ranks.prompts.source"
RANK_PROMPTS = "ranks.prompts"
RANK_PROMPT_FILE = "ranks.prompts.file"
RANK_COMPARE_RUN = "ranks.prompts.compare"
RANK_DIFF_JSON = "ranks.prompts.json"

MON_WINDOW = "monitoring.window"
MON_LIVE = "monitoring.live"
MON_REQUESTS_CHART = "monitoring.requests"
MON_PERCENTILE = "monitoring.percentile"
MON_STATUS_CHART = "monitoring.status"
MON_LATENCY_CHART = "monitoring.latency"
MON_INSTANCES_CHART = "monitoring.instances"
MON_CPU_CHART = "monitoring.cpu"
MON_MEMORY_CHART = "monitoring.memory"
MON_INPUT_TOKENS_CHART = "monitoring.input_tokens"
MON_OUTPUT_TOKENS_CHART = "monitoring.output_tokens"
MON_FIRST_TOKEN_CHART = "monitoring.first_token"
MON_PER_TOKEN_CHART = "monitoring.per_token"

CONS_FORM = "consumers.form"
CONS_NAME = "consumers.name"
CONS_TPM = "consumers.tokens_per_minute"
CONS_RPM = "consumers.requests_per_minute"
CONS_TPD = "consumers.tokens_per_day"
CONS_CREATE = "consumers.create"
CONS_MANAGE = "consumers.manage"
"""The consumer chosen to change: its limits, a new key, or its deletion."""
CONS_SAVE = "consumers.save"
CONS_REGENERATE = "consumers.regenerate"
CONS_DELETE = "consumers.delete"
CONS_WINDOW = "consumers.window"
CONS_PERIOD = "consumers.period"
CONS_CHART = "consumers.chart"
CONS_CSV = "consumers.csv"


def traffic_input(deployment: str, revision: str) -> str:
    """The number box holding a deployment's live share on the Endpoints page.

    ``revision`` (the endpoint's ``updated_at``) gives fresh boxes, showing
    the stored split, after every change to the endpoint.
    """
    return f"endpoints.traffic.{revision}.{deployment.lower()}"


def mirror_target(revision: str) -> str:
    """'Mirror to', fresh (showing the stored split) after every change to the endpoint, as ``traffic_input``."""
    return f"{MIRROR_TARGET}.{revision}"


def mirror_percent(revision: str) -> str:
    return f"{MIRROR_PERCENT}.{revision}"


def confirm_large_shift(revision: str) -> str:
    return f"{TRAFFIC_CONFIRM_LARGE}.{revision}"


def scale_count(deployment: str) -> str:
    """The instance count of one deployment (a fresh box, showing its count, for each)."""
    return f"endpoints.scale.{deployment}"


def log_widget(where: str, what: str) -> str:
    """A log box's widget (``container``, ``lines``, ``search``, ``download``): the Logs tab's (``where`` empty,
    ``LOG_CONTAINER``, ...) or another box's (``details``)."""
    return f"endpoints.{where}.logs.{what}" if where else f"endpoints.logs.{what}"


def update_widget(field: str, revision: str) -> str:
    """A box of the deployment update (``model``, ``environment``, ``script``), fresh after each change to it."""
    return f"endpoints.details.update.{field}.{revision}"


def regenerate_button(key_type: str) -> str:
    return f"endpoints.keys.regenerate.{key_type}"


def model_version(model: str) -> str:
    """The version chosen of one model: each model remembers its own."""
    return f"{MODEL_VERSION}.{model}"


def register_upload(generation: int = 0) -> str:
    """The register form's upload box, a new one after each registration (``REGISTER_UPLOADS``)."""
    return f"models.register.upload.{generation}"


def promote_stage(ref: str) -> str:
    return f"models.promote.stage.{ref}"


def promote_approver(ref: str) -> str:
    return f"models.promote.approver.{ref}"


def promote_note(ref: str) -> str:
    return f"models.promote.note.{ref}"


def model_description(ref: str) -> str:
    return f"{MODEL_DESCRIPTION}.{ref}"


def model_tags(ref: str) -> str:
    return f"{MODEL_TAGS}.{ref}"


def environment_version(environment: str) -> str:
    return f"{ENV_VERSION}.{environment}"


def rank_sample(label: str) -> str:
    return f"ranks.sample.{label}"


def rank_chart(kind: str, deployment: str) -> str:
    """One of a deployment's token-rank charts: heatmap, buckets, ratio, entropy."""
    return f"ranks.{kind}.{deployment}"


def rank_table(deployment: str) -> str:
    return f"ranks.table.{deployment}"


def rank_csv(deployment: str) -> str:
    return f"ranks.csv.{deployment}"


def revert_button(audit_id: object) -> str:
    return f"endpoints.traffic.revert.{audit_id}"


def confirm_button(action: str) -> str:
    return f"confirm.{action}"


def cancel_button(action: str) -> str:
    return f"cancel.{action}"


def consumer_limit(limit: str, consumer: str, revision: str) -> str:
    """A consumer's limit box (``tokens_per_minute``...), fresh, showing the stored limit, after each change to it."""
    return f"consumers.limit.{consumer.lower()}.{limit}.{revision}"


def rank_diff_chart(text: int) -> str:
    """The diff heatmap of one text of a prompt set (its index)."""
    return f"ranks.prompts.diff.{text}"
