"""MLflow tracking and registry on the embedded default (local SQLite and files) or any server URI."""

from __future__ import annotations

import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

import mlflow
import mlflow.pyfunc
import pandas as pd

from recommender.models import EventRecommender

EXPERIMENT = "trajectory"
NEXT_STEPS_MODEL = "next-steps"
CHAMPION = "champion"
PREVIOUS_CHAMPION = "previous-champion"
CHAMPION_HISTORY_TAG = "champion_history"  # registered-model tag: the versions the alias left, oldest first
DATA_DIR = Path("data")


def tracking_uri() -> str:
    """MLFLOW_TRACKING_URI when set; else a SQLite store under data/ (absolute, so any cwd agrees)."""
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(DATA_DIR / 'mlflow.db').resolve()}"


def configure(experiment: str = EXPERIMENT) -> str:
    """Point MLflow at the tracking store and make sure the experiment exists; returns its id."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # no usage data leaves the machine
    uri = tracking_uri()
    mlflow.set_tracking_uri(uri)
    existing = mlflow.get_experiment_by_name(experiment)
    if existing is not None:
        mlflow.set_experiment(experiment)
        return str(existing.experiment_id)
    artifacts = None
    if uri.startswith("sqlite:"):
        artifacts = (DATA_DIR / "mlartifacts").resolve().as_uri()
    experiment_id = mlflow.create_experiment(experiment, artifact_location=artifacts)
    mlflow.set_experiment(experiment)
    return str(experiment_id)


class NextStepsModel(mlflow.pyfunc.PythonModel):  # type: ignore[name-defined]
    """The registry's wrapper around a fitted next-step model.

    A next-step model ranks against the current graph, which is data, not part of the model: the
    service binds the graph it holds before predicting.
    """

    def load_context(self, context: Any) -> None:
        self.model: EventRecommender = pickle.loads(Path(context.artifacts["model"]).read_bytes())
        self.graph = None

    def bind(self, graph: Any) -> None:
        self.graph = graph

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        if self.graph is None:
            raise RuntimeError("bind(graph) before predict: a next-step model ranks against the current graph")
        p = params or {}
        return self.model.recommend(
            model_input["participant_id"].astype(str).tolist(),
            int(p.get("k", 10)),
            as_of=p.get("as_of", pd.Timestamp.today()),
            graph=self.graph,
        )


def log_next_steps_model(model: EventRecommender, *, register_as: str | None = NEXT_STEPS_MODEL) -> str | None:
    """Log a fitted model to the active run (and register it); returns the new version, if registered."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.pkl"
        path.write_bytes(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL))
        info = mlflow.pyfunc.log_model(
            name="next_steps",
            python_model=NextStepsModel(),
            artifacts={"model": str(path)},
            # The product itself is the environment; pinning it here keeps logging fast and offline.
            pip_requirements=["trajectory-recommender"],
            registered_model_name=register_as,
        )
    version = getattr(info, "registered_model_version", None)
    return None if version is None else str(version)


def champion_version(name: str = NEXT_STEPS_MODEL) -> str | None:
    """The version the champion alias points at, or None when the model or the alias does not exist."""
    from mlflow.exceptions import MlflowException

    try:
        return str(mlflow.MlflowClient().get_model_version_by_alias(name, CHAMPION).version)
    except MlflowException as exc:
        if exc.error_code in {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"}:
            return None
        raise


def champion_history(name: str = NEXT_STEPS_MODEL) -> list[str]:
    """The versions the champion alias left, oldest first (the last one is the rollback target)."""
    tags = mlflow.MlflowClient().get_registered_model(name).tags
    return [v for v in tags.get(CHAMPION_HISTORY_TAG, "").split(",") if v]


def _set_history(name: str, history: list[str]) -> None:
    client = mlflow.MlflowClient()
    client.set_registered_model_tag(name, CHAMPION_HISTORY_TAG, ",".join(history[-100:]))
    if history:
        client.set_registered_model_alias(name, PREVIOUS_CHAMPION, history[-1])
    elif PREVIOUS_CHAMPION in client.get_registered_model(name).aliases:
        client.delete_registered_model_alias(name, PREVIOUS_CHAMPION)


def set_champion(version: str, name: str = NEXT_STEPS_MODEL) -> None:
    """Move the champion alias to `version`; the version it leaves is remembered for a rollback."""
    client = mlflow.MlflowClient()
    client.get_model_version(name, str(version))  # fails on an unknown version before anything moves
    current = champion_version(name)
    if current is not None and current != str(version):
        _set_history(name, [*champion_history(name), current])
    client.set_registered_model_alias(name, CHAMPION, str(version))


def rollback_champion(name: str = NEXT_STEPS_MODEL) -> str:
    """Move the champion alias back to the version it left last; returns that version."""
    history = champion_history(name)
    if not history:
        raise LookupError(f"model '{name}' has no previous champion to roll back to")
    target = history.pop()
    mlflow.MlflowClient().set_registered_model_alias(name, CHAMPION, target)
    _set_history(name, history)
    return target


def load_version(version: str, name: str = NEXT_STEPS_MODEL) -> tuple[EventRecommender, str | None]:
    """One registered version's fitted model and the run that produced it (by version, so a moving alias
    cannot make the metadata and the artefact disagree)."""
    run_id = mlflow.MlflowClient().get_model_version(name, str(version)).run_id
    wrapper = mlflow.pyfunc.load_model(f"models:/{name}/{version}").unwrap_python_model()
    return wrapper.model, run_id or None


def load_champion(name: str = NEXT_STEPS_MODEL) -> tuple[EventRecommender, str]:
    """The champion's fitted model and its version."""
    client = mlflow.MlflowClient()
    version = client.get_model_version_by_alias(name, CHAMPION)
    wrapper = mlflow.pyfunc.load_model(f"models:/{name}@{CHAMPION}").unwrap_python_model()
    return wrapper.model, str(version.version)


def mask_password(url: str) -> str:
    """A database URL fit for output: the password replaced."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a database URL: nothing to hide
        return url
