"""The shape of Azure ML's scikit-learn online-endpoint sample, for the CLI walkthrough.

init() loads model/sklearn_regression_model.pkl under AZUREML_MODEL_DIR (where
Azure ML puts a model registered from a folder named "model"); run() takes
{"data": [[...10 numbers...], ...]} and answers the predictions as a list.
"""

import json
import logging
import os

import joblib
import numpy

model = None


def init():
    global model
    model = joblib.load(os.path.join(os.getenv("AZUREML_MODEL_DIR"), "model/sklearn_regression_model.pkl"))
    logging.info("Init complete")


def run(raw_data):
    rows = numpy.array(json.loads(raw_data)["data"])
    return model.predict(rows).tolist()
