"""The models the service holds, and a forced check of the registry, as the API answers them."""

from __future__ import annotations

from serving.loaded_model import LoadedModel
from serving.model_watcher import ModelWatcher
from serving.schemas_models import ModelOut, ModelsOut, ReloadOut
from serving.state import ServingState


def model_out(loaded: LoadedModel) -> ModelOut:
    return ModelOut(name=loaded.name, kind=loaded.kind, label=loaded.tagged_label, version=loaded.version,
                    alias=loaded.alias, fallback=loaded.fallback, run_id=loaded.run_id, loaded_at=loaded.loaded_at)


def loaded_models(state: ServingState) -> ModelsOut:
    return ModelsOut(models=[model_out(m) for m in state.loaded_models()])


def reload_models(watcher: ModelWatcher) -> ReloadOut:
    """Check the champion alias now (a version found broken before is tried again)."""
    result = watcher.check_now(retry_broken=True)
    reasons = list(watcher.state.degraded_reasons)
    return ReloadOut(outcome=result.outcome, champion_version=result.champion_version,
                     serving=model_out(result.serving), degraded=bool(reasons), reasons=reasons)
