"""Health: which models are loaded, degraded or not, and why."""

from __future__ import annotations

from fastapi import APIRouter

from serving.deps import StateDep
from serving.schemas import HealthOut, ModelStatus

router = APIRouter(prefix="/v1", tags=["operations"])


@router.get("/health", response_model=HealthOut)
def health(state: StateDep) -> HealthOut:
    """Service status: degraded or not (and why), loaded models, graph size."""
    return HealthOut(
        status="degraded" if state.degraded else "ok",
        degraded=state.degraded,
        reasons=state.degraded_reasons,
        models=[ModelStatus(name=m.name, version=m.version, kind=m.label, loaded=True) for m in state.loaded_models()],
        participants=state.graph.n_participants,
        events=state.graph.n_events,
    )
