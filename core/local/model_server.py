"""One model-server instance: the Azure ML inference server, bound to loopback.

An instance is the real ``azureml-inference-server-http`` app served by
gunicorn, as ``azmlinfsrv`` runs it in an Azure ML container, except that it
binds 127.0.0.1 instead of 0.0.0.0, keeps connections alive and writes no
access log (see ``LAUNCHER``). The launcher runs in the
deployment's interpreter and imports nothing from byom, so an environment
only needs the inference server package (which Azure ML asks of it too).
"""

from __future__ import annotations

import http.client
import os
from dataclasses import dataclass, field
from pathlib import Path

from .processes import HOME_MARKER, Child, spawn

# Seconds a model server keeps an idle connection open; the gateway reuses one for at most half of that.
KEEP_ALIVE_S = 10

# amlserver_linux.run's gunicorn arguments, with three differences: loopback instead of 0.0.0.0; the
# gthread worker, which keeps the gateway's connections alive (the sync worker closes each one) and with
# its default of one thread serves one request at a time as the sync worker does; and no access log, one
# line per request that repeats the server's own request line. The last two go first in
# GUNICORN_CMD_ARGS, so that a deployment's own GUNICORN_CMD_ARGS (say "--threads 16") still wins.
# One cost: run() executes in a worker thread, where the server cannot arm its own SCORING_TIMEOUT
# (SIGALRM, default one hour); the gateway still answers 408 past request_timeout_ms.
LAUNCHER = f"""
import os, sys
import gunicorn.app.wsgiapp, gunicorn.config
from azureml_inference_server_http import amlserver
from azureml_inference_server_http.constants import (
    DEFAULT_WORKER_PRELOAD, DEFAULT_WORKER_TIMEOUT_SECONDS, ENV_WORKER_PRELOAD, ENV_WORKER_TIMEOUT, PACKAGE_ROOT)
from azureml_inference_server_http.log_config import load_logging_config

load_logging_config(PACKAGE_ROOT)
amlserver.validate_environment_variables()
ours = "--worker-class gthread --keep-alive {KEEP_ALIVE_S}"
if hasattr(gunicorn.config, "ControlSocketDisable"):
    # gunicorn >= 25.1 opens one control socket per user: instances would fight over it
    ours += " --no-control-socket"
os.environ["GUNICORN_CMD_ARGS"] = (ours + " " + os.environ.get("GUNICORN_CMD_ARGS", "")).strip()
sys.argv = [
    sys.argv[0], "-b", "127.0.0.1:" + sys.argv[1], "-w", os.environ.get("WORKER_COUNT", "1"),
    "--timeout", os.environ.get(ENV_WORKER_TIMEOUT, DEFAULT_WORKER_TIMEOUT_SECONDS),
    "--error-logfile", "/dev/null",
]
if os.environ.get(ENV_WORKER_PRELOAD, DEFAULT_WORKER_PRELOAD).lower() == "true":
    sys.argv.append("--preload")
sys.argv.append("azureml_inference_server_http.server.entry:app")
gunicorn.app.wsgiapp.WSGIApplication("%(prog)s [OPTIONS] [APP_MODULE]").run()
"""

# In the command line of every model-server instance (how byom tells them from its other processes).
INSTANCE_MARK = b"azureml_inference_server_http.server.entry:app"

# Variables of byom's own process that must not leak into a model server.
_NOT_INHERITED = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "BYOM_HOME", "GUNICORN_CMD_ARGS")


@dataclass
class InstanceSpec:
    """What every instance of one deployment generation is started with."""

    interpreter: str
    model_dir: str
    app_root: str
    entry_script: str  # relative to app_root, as Azure ML sets it
    environment_variables: dict[str, str] = field(default_factory=dict)
    worker_count: int = 1


class EnvironmentBuilding(Exception):
    """The deployment's environment is still being built: try again later."""


def resolve_interpreter(home: Path, environment_ref: str) -> str:
    """The Python that runs a deployment's environment.

    ``local-python`` (and image-only environments) run with byom's own
    interpreter; an environment with a conda file runs with its build, which
    is started here if there is none. Raises ``EnvironmentBuilding`` while it
    builds and ``LookupError`` with the build's reason when it failed.
    """
    from ..errors import ByomError
    from .builds import interpreter_for

    try:
        interpreter = interpreter_for(home, environment_ref, wait=False)
    except ByomError as exc:
        raise LookupError(str(exc)) from None
    if interpreter is None:
        raise EnvironmentBuilding(f"Waiting for environment {environment_ref} to build.")
    return str(interpreter)


def instance_env(spec: InstanceSpec, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _NOT_INHERITED and not k.startswith("BYOM_")}
    env.update(
        {
            "AZUREML_MODEL_DIR": spec.model_dir,
            "AML_APP_ROOT": spec.app_root,
            "AZUREML_ENTRY_SCRIPT": spec.entry_script,
            "WORKER_COUNT": str(spec.worker_count),
            "PYTHONUNBUFFERED": "1",
            HOME_MARKER: str(home),
        }
    )
    env.update(spec.environment_variables)
    return env


def launch(spec: InstanceSpec, port: int, log_path: Path, home: Path) -> Child:
    return spawn(
        [spec.interpreter, "-c", LAUNCHER, str(port)],
        env=instance_env(spec, home), log_path=log_path, cwd=spec.app_root,
    )


def probe(port: int, timeout_s: float) -> bool:
    """The inference server's health route answers 200 once the worker has run init()."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout_s)
    try:
        conn.request("GET", "/")
        return conn.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()
