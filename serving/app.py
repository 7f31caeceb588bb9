"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from recommender import __version__
from recommender.graph import AchievementsGraph
from serving import errors
from serving.routers import health, participants
from serving.settings import Settings, get_settings
from serving.state import ServingState, load_state


def create_app(settings: Settings | None = None, *, state: ServingState | None = None,
               graph: AchievementsGraph | None = None) -> FastAPI:
    """Build the app; the graph and champion load at start-up unless a state is given (tests)."""
    cfg = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if state is None:
            app.state.serving = load_state(cfg, graph)
        yield

    app = FastAPI(
        title="Trajectory recommender API",
        version=__version__,
        description="Next steps, trajectories, profiles, mentors and teams for young technology enthusiasts.",
        lifespan=lifespan,
    )
    if state is not None:
        app.state.serving = state
    errors.install(app)
    app.include_router(health.router)
    app.include_router(participants.router)
    return app
