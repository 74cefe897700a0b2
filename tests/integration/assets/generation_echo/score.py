"""A generation-shaped Azure ML entry script for the mirror-report tests: no model, its text is the prompt's.

run({"prompt": "a b c"}) answers {"text": "a b c", "finish_reason": "stop"}, the words from position
ECHO_DIFFER_FROM on (where that environment variable is set) replaced by "other"; {"pad": N} adds N characters
of padding to the answer; ECHO_FAIL=1 answers every request with a 500.
"""

import json
import os

from azureml_inference_server_http.api.aml_response import AMLResponse


def init():
    pass


def run(raw_data):
    data = json.loads(raw_data)
    if os.environ.get("ECHO_FAIL") == "1":
        return AMLResponse({"error": "this deployment fails on purpose"}, 500, json_str=True)
    words = str(data.get("prompt", "")).split()
    differ_from = os.environ.get("ECHO_DIFFER_FROM")
    if differ_from is not None:
        words = words[: int(differ_from)] + ["other"] * (len(words) - int(differ_from))
    return {"text": " ".join(words), "finish_reason": "stop", "padding": "x" * int(data.get("pad", 0))}
