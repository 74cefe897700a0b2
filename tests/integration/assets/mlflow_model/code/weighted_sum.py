"""A pyfunc model as mlflow's loader_module form saves it: a weighted sum of named columns."""

import json
import os

import pandas as pd


class WeightedSum:
    def __init__(self, weights: dict) -> None:
        self.weights = weights

    def predict(self, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        missing = sorted(set(self.weights) - set(model_input.columns))
        if missing:
            raise ValueError(f"missing columns: {missing}")
        total = sum(model_input[name] * weight for name, weight in self.weights.items())
        return pd.DataFrame({"score": total})


def _load_pyfunc(data_path: str) -> WeightedSum:
    with open(os.path.join(data_path, "weights.json")) as f:
        return WeightedSum(json.load(f)["weights"])
