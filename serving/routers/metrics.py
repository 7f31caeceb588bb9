"""Prometheus metrics of the service (requests, latency, degraded state, the model served)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from serving.deps import StateDep
from serving.observability import DEGRADED, MODEL_INFO, metrics_text

router = APIRouter(tags=["operations"])


@router.get("/metrics", response_class=Response,
            responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text exposition"}})
def metrics(state: StateDep) -> Response:
    """Prometheus metrics: requests and latency per route and status, degraded state, the model served."""
    DEGRADED.set(1 if state.degraded else 0)
    MODEL_INFO.labels(state.model_label, state.model_version or "none").set(1)
    body, content_type = metrics_text()
    return Response(body, media_type=content_type)
