"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from recommender import __version__
from recommender.graph import AchievementsGraph
from serving import errors
from serving.auth import RateLimits, install_guards
from serving.logs import configure_logging
from serving.model_watcher import model_watcher
from serving.observability import RequestObserver
from serving.routers import (
    achievements,
    feedback,
    health,
    jobs,
    mentors,
    metrics,
    models,
    participants,
    profiles,
    programs,
    teammates,
)
from serving.services import fold_in
from serving.services.jobs import start_up as start_jobs
from serving.settings import Settings, get_settings
from serving.state import ServingState, load_state
from serving.store_changes import PROCESS_CHANGES, StoreChanges


def create_app(settings: Settings | None = None, *, state: ServingState | None = None,
               graph: AchievementsGraph | None = None, preloaded: bool = False,
               rate_limiter: RateLimits | None = None, store_changes: StoreChanges | None = None) -> FastAPI:
    """Build the app; the graph and champion load at start-up unless a state is given: a test's fixture, or
    with `preloaded` the state a pre-forking parent loaded for its workers (served, watched and logged as a
    real service). A pre-forking parent passes the rate limiter and write counter its workers share."""
    cfg = settings or get_settings()
    service = state is None or preloaded

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if service:
            if state is None:
                app.state.serving = load_state(cfg, graph)
            start_jobs(app.state.serving)  # jobs a stopped worker left running are reported failed
            # Follows the champion alias (a given state is a test's fixture: it is not swapped behind its back).
            model_watcher(app, cfg).start()
        yield
        if hasattr(app.state, "model_watcher"):
            app.state.model_watcher.stop()

    app = FastAPI(
        title="Trajectory recommender API",
        version=__version__,
        description="Next steps, trajectories, profiles, mentors and teams for young technology enthusiasts.",
        lifespan=lifespan,
    )
    app.state.settings = cfg
    app.state.store_changes = store_changes or PROCESS_CHANGES
    install_guards(app, cfg, rate_limiter)
    if state is not None:
        app.state.serving = state
    if service:  # a real service (tests keep pytest's logging)
        configure_logging(cfg.log_format, cfg.log_level)
    fold_in.install(app)  # inside the observer: the fold-in check counts in the request's latency
    app.add_middleware(RequestObserver)
    errors.install(app)
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(participants.router)
    app.include_router(models.router)
    app.include_router(achievements.router)
    app.include_router(feedback.router)
    app.include_router(jobs.router)
    app.include_router(profiles.router)
    app.include_router(mentors.router)
    app.include_router(teammates.router)
    app.include_router(programs.router)
    return app
