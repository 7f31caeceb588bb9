"""Model resources: the versions the service holds, and a forced check of the registry."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from serving.auth import AdminDep, AnalystDep
from serving.deps import StateDep
from serving.model_watcher import ModelWatcher, model_watcher
from serving.schemas import AUTH_RESPONSES
from serving.schemas_models import ModelsOut, ReloadOut
from serving.services.models import loaded_models, reload_models

router = APIRouter(prefix="/v1/models", tags=["operations"])


def get_watcher(request: Request) -> ModelWatcher:
    return model_watcher(request.app, request.app.state.settings)


WatcherDep = Annotated[ModelWatcher, Depends(get_watcher)]


@router.get("", response_model=ModelsOut, responses=AUTH_RESPONSES)
def list_models(state: StateDep, _: AnalystDep) -> ModelsOut:
    """Loaded model versions and aliases: every model this worker answers with."""
    return loaded_models(state)


@router.post("/reload", response_model=ReloadOut, responses=AUTH_RESPONSES)
def reload(_: AdminDep, watcher: WatcherDep) -> ReloadOut:
    """Check the registry's champion alias now and swap a new version in (this worker; others poll)."""
    return reload_models(watcher)
