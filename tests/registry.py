"""A real MLflow registry in a temporary directory, and registered next-step models (good and broken) for tests."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from functools import lru_cache
from pathlib import Path

import pytest

from recommender.models import EventRecommender


@lru_cache(maxsize=1)
def _empty_registry_db() -> Path:
    """An MLflow SQLite database with its schema migrated, made once per test process (migrating takes
    seconds; copying the file takes none)."""
    import mlflow

    folder = Path(tempfile.mkdtemp(prefix="mlflow-template-"))
    atexit.register(shutil.rmtree, folder, True)
    path = folder / "mlflow.db"
    mlflow.MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


def use_tmp_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point MLflow (tracking, registry, artefacts) at an empty registry in `tmp_path`; returns the tracking URI."""
    from training import tracking

    shutil.copyfile(_empty_registry_db(), tmp_path / "mlflow.db")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setattr(tracking, "DATA_DIR", tmp_path)  # artefacts under tmp_path, whatever the cwd
    tracking.configure()
    return uri


def register(model: EventRecommender) -> str:
    """Log and register a fitted next-step model; its version (the champion alias is not moved)."""
    import mlflow

    from training import tracking

    with mlflow.start_run():
        version = tracking.log_next_steps_model(model)
    assert version is not None
    return version


def register_broken() -> str:
    """Register a version whose artefact is not a model at all: loading it fails."""
    import mlflow
    import mlflow.pyfunc

    from training import tracking

    with tempfile.TemporaryDirectory() as tmp, mlflow.start_run():
        path = Path(tmp) / "model.pkl"
        path.write_bytes(b"this is not a pickled model")
        info = mlflow.pyfunc.log_model(name="next_steps", python_model=tracking.NextStepsModel(),
                                       artifacts={"model": str(path)}, pip_requirements=["trajectory-recommender"],
                                       registered_model_name=tracking.NEXT_STEPS_MODEL)
    return str(info.registered_model_version)
