"""A trivial Azure ML entry script for the serving tests: it echoes what it gets.

init() reads model/greeting.txt under AZUREML_MODEL_DIR, where Azure ML puts
a model registered from a folder named "model";
run() answers {"greeting", "echo", "pid", "label"} where label is the
deployment's ECHO_LABEL environment variable. A payload can ask it to
sleep ({"sleep": 0.2}), to answer another status ({"status": 400}) or to
print lines to its log ({"say": ["first line", "second line"]}). A deployment can be made to fail:
ECHO_FAIL_EVERY=2 answers every second request of each worker with a 500, and made slow: ECHO_SLEEP_S=0.3
sleeps that long before each answer.
"""

import itertools
import json
import os
import threading
import time

from azureml_inference_server_http.api.aml_response import AMLResponse

greeting = None
answered = itertools.count(1)
counting = threading.Lock()


def init():
    global greeting
    with open(os.path.join(os.environ["AZUREML_MODEL_DIR"], "model", "greeting.txt")) as fh:
        greeting = fh.read().strip()


def run(raw_data):
    try:
        data = json.loads(raw_data)
    except ValueError as exc:
        return AMLResponse({"error": f"The body is not JSON: {exc}"}, 400, json_str=True)
    if not isinstance(data, dict):
        return AMLResponse({"error": "The body must be a JSON object."}, 400, json_str=True)
    for line in data.get("say", []):
        print(line, flush=True)
    if "sleep" in data:
        time.sleep(float(data["sleep"]))
    time.sleep(float(os.environ.get("ECHO_SLEEP_S") or 0))
    fail_every = int(os.environ.get("ECHO_FAIL_EVERY") or 0)
    if fail_every:
        with counting:
            number = next(answered)
        if number % fail_every == 0:
            return AMLResponse({"error": f"request {number} fails on purpose"}, 500, json_str=True)
    if "status" in data:
        return AMLResponse({"error": f"asked for {data['status']}"}, int(data["status"]), json_str=True)
    return {"greeting": greeting, "echo": data, "pid": os.getpid(), "label": os.environ.get("ECHO_LABEL")}
