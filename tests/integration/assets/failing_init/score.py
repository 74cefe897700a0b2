"""An entry script whose init() fails, as one with a corrupt model would."""


def init():
    raise RuntimeError("the model file is corrupt (raised on purpose by the failing_init test script)")


def run(raw_data):
    return {"never": "reached"}
