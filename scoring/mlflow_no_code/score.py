"""Scores an MLflow model deployed without code, as Azure ML's generated script does.

The model is the pyfunc flavor of the MLmodel folder under AZUREML_MODEL_DIR
(``MLFLOW_MODEL_FOLDER`` names its subfolder when there are several). A
request is Azure ML's ``{"input_data": ...}`` — pandas' split orient
(``columns``/``index``/``data``), a list of rows, or a dict of columns — or
one of MLflow's own serving bodies (``dataframe_split``,
``dataframe_records``, ``instances``, ``inputs``). The answer is the
predictions as JSON: a DataFrame as records, an array as nested lists.

This file is uploaded on its own: it imports nothing of byom.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

_model: Any = None


def _model_folder() -> Path:
    root = Path(os.environ.get("AZUREML_MODEL_DIR", "."))
    named = os.environ.get("MLFLOW_MODEL_FOLDER")
    candidates = [root / named] if named else [root, *sorted(p for p in root.iterdir() if p.is_dir())]
    for folder in candidates:
        if (folder / "MLmodel").is_file():
            return folder
    raise RuntimeError(f"No MLmodel file in {root} or its subfolders: the model is not an MLflow model folder.")


def init() -> None:
    global _model
    import mlflow.pyfunc

    # resolved: the model folder may be a link, which mlflow refuses as a path outside its artifact directory
    _model = mlflow.pyfunc.load_model(str(_model_folder().resolve()))


class BadRequest(ValueError):
    """A body this script cannot read as model input."""


def _frame(value: Any) -> Any:
    import pandas as pd

    if isinstance(value, dict) and "data" in value:
        return pd.DataFrame(value["data"], columns=value.get("columns"), index=value.get("index"))
    if isinstance(value, dict):
        return pd.DataFrame(value)
    if isinstance(value, list):
        return pd.DataFrame(value)
    raise BadRequest("input_data must be a table: {columns, index, data}, a list of rows, or a dict of columns.")


def model_input(body: Any) -> Any:
    """What pyfunc's predict takes for a request body."""
    import numpy as np
    import pandas as pd

    if not isinstance(body, dict):
        raise BadRequest('The body must be a JSON object such as {"input_data": {"columns": [...], "data": [...]}}.')
    if "input_data" in body:
        return _frame(body["input_data"])
    if "dataframe_split" in body:
        return _frame(body["dataframe_split"])
    if "dataframe_records" in body:
        return pd.DataFrame.from_records(body["dataframe_records"])
    for key in ("instances", "inputs"):
        if key in body:
            value = body[key]
            return {k: np.asarray(v) for k, v in value.items()} if isinstance(value, dict) else np.asarray(value)
    raise BadRequest("The body names no input: send input_data (or dataframe_split, dataframe_records, "
                     "instances, inputs).")


def as_json(predictions: Any) -> Any:
    """Predictions as JSON values: records for a DataFrame, lists for arrays and Series."""
    import numpy as np
    import pandas as pd

    if isinstance(predictions, pd.DataFrame):
        return json.loads(predictions.to_json(orient="records"))
    if isinstance(predictions, pd.Series):
        return json.loads(predictions.to_json(orient="values"))
    if isinstance(predictions, np.ndarray):
        return predictions.tolist()
    if isinstance(predictions, dict):
        return {k: as_json(v) for k, v in predictions.items()}
    return predictions


def run(raw_data: str) -> Any:
    from azureml_inference_server_http.api.aml_response import AMLResponse
    from mlflow.exceptions import MlflowException

    try:
        data = model_input(json.loads(raw_data))
    except ValueError as exc:  # not JSON, or not a body this script reads (BadRequest)
        return AMLResponse({"error": str(exc)}, 400, json_str=True)
    try:
        predictions = _model.predict(data)
    except (MlflowException, ValueError, KeyError, TypeError) as exc:  # the input does not fit the model
        return AMLResponse({"error": f"The model could not score this input: {exc}"}, 400, json_str=True)
    return as_json(predictions)
