"""A trivial entry script: answers what it was sent, and which deployment it is."""

import json
import os


def init():
    global NAME
    NAME = os.environ.get("DEPLOYMENT_LABEL", "unnamed")


def run(raw_data):
    data = json.loads(raw_data)
    return {"echo": data, "deployment": NAME}
