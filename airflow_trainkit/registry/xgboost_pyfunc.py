"""``mlflow.pyfunc`` loader for the built-in trainer's XGBoost models.

MLflow's own XGBoost pyfunc builds a ``DMatrix`` without ``enable_categorical``, so a model trained
on categorical columns cannot predict from the strings its signature takes. This loader restores
each categorical column with the categories (and so the codes) the model was trained with.
"""

from __future__ import annotations

import json
import os
from typing import Any

META_FILE = "trainkit_model_meta.json"


def _load_pyfunc(path: str) -> TrainkitXGBoostModel:
    """Called by ``mlflow.pyfunc.load_model`` with the flavor's data file."""
    return TrainkitXGBoostModel(path)


class TrainkitXGBoostModel:
    """The pyfunc model MLflow loads: an XGBoost booster plus the categories it was trained with.

    :param model_file: the booster's file; ``trainkit_model_meta.json`` sits next to it.
    """

    def __init__(self, model_file: str) -> None:
        import xgboost  # heavy: only when a model is loaded

        self.booster = xgboost.Booster()
        self.booster.load_model(model_file)
        with open(os.path.join(os.path.dirname(model_file), META_FILE)) as handle:
            meta = json.load(handle)
        self.features: list[str] = [str(f) for f in meta.get("feature_names") or meta["features"]]
        self.categories: dict[str, list[Any]] = meta.get("categories") or {}

    def get_raw_model(self) -> Any:
        """The ``xgboost.Booster`` itself (MLflow's ``unwrap_python_model`` asks for it)."""
        return self.booster

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        """Scores for ``data``'s rows; the model's columns are picked by name, categories restored.

        :raises ValueError: naming the columns ``data`` lacks.
        """
        import pandas as pd
        import xgboost

        frame = pd.DataFrame(data).copy()
        missing = [f for f in self.features if f not in frame.columns]
        if missing:
            raise ValueError(
                f"input has no column(s) {', '.join(missing)}; the model needs {', '.join(self.features)}"
            )
        frame = frame[self.features]
        for column, categories in self.categories.items():
            if column in frame.columns:
                frame[column] = pd.Categorical(frame[column], categories=categories)
        return self.booster.predict(xgboost.DMatrix(frame, enable_categorical=True))
