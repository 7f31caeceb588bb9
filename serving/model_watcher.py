"""Hot swap: follow the registry's champion alias and swap a new next-steps model in without a failed request."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

from fastapi import FastAPI

from serving.loaded_model import LoadedModel
from serving.settings import Settings

if TYPE_CHECKING:
    from serving.state import ServingState

log = logging.getLogger("trajectory.serving")

CHAMPION = "champion"
Outcome = Literal["unchanged", "swapped", "broken", "no_champion", "registry_unavailable"]


@dataclass(frozen=True)
class CheckResult:
    outcome: Outcome
    champion_version: str | None  # what the registry's alias points at (None if unknown)
    serving: LoadedModel  # what the service answers with after the check


def _smoke_test(model: Any, state: ServingState) -> None:
    """Rank and explain for a participant of the served graph: a model that cannot is not swapped in."""
    from serving.state import smoke_test

    smoke_test(model, state.graph, state.today())


KEPT_VERSIONS = 2


class ModelWatcher:
    """Polls the champion alias of one registered model; loads, checks and swaps a new version in.

    One per worker process. Loading happens beside the serving threads; the swap is one reference
    assignment (`ServingState.swap_next_steps`). A version that fails to load or to rank is never
    swapped in: the service keeps the model it has and says so in /v1/health.
    """

    def __init__(self, state: ServingState, name: str, poll_seconds: float) -> None:
        self.state = state
        self.name = name
        self.poll_seconds = poll_seconds
        # load_state words its fallback reason with this prefix too: the watcher owns every reason about its model.
        self.reason_prefix = f"champion model '{name}'"
        self._broken: set[str] = set()
        # Versions served before, swapped out: a rollback takes one back without loading it again (a re-ranker
        # at 1,000,000 participants would rebuild its context, a minute of CPU, beside the serving threads).
        self._recent: dict[str, LoadedModel] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._configured = False

    # -- checks -------------------------------------------------------------------------------------------
    def check_now(self, *, retry_broken: bool = False) -> CheckResult:
        """Look at the alias once and act on it (serialized: the poller and POST /v1/models/reload may race)."""
        with self._lock:
            if retry_broken:
                self._broken.clear()
            return self._check()

    def _check(self) -> CheckResult:
        from training import tracking

        current = self.state.next_steps
        try:
            if not self._configured:
                tracking.configure()
                self._configured = True
            version = tracking.champion_version(self.name)
        except Exception as exc:  # the registry being away must never touch what is served
            self._report(f"registry unreachable ({type(exc).__name__}); {self._serving(current)}")
            return CheckResult("registry_unavailable", None, current)
        if version is None:
            self._report(f"has no '{CHAMPION}' alias in the registry; {self._serving(current)}")
            return CheckResult("no_champion", None, current)
        if version == current.version and not current.fallback:
            if current.run_id is None:  # the start-up load did not record where the model came from
                self._fill_run_id(current)
            self._report(None)
            return CheckResult("unchanged", version, self.state.next_steps)
        if version in self._broken:
            return CheckResult("broken", version, current)
        try:
            kept = self._recent.pop(version, None)
            model, run_id = (kept.model, kept.run_id) if kept is not None else tracking.load_version(version, self.name)
            _smoke_test(model, self.state)  # a kept model too: the graph may have changed since it served
        except Exception as exc:  # unpickling, a missing artefact, a model that cannot rank this graph
            self._broken.add(version)
            log.warning("%s version %s not swapped in: %s", self.reason_prefix, version, type(exc).__name__)
            self._report(f"version {version} is broken ({type(exc).__name__}); {self._serving(current)}")
            return CheckResult("broken", version, current)
        kind = str(getattr(model, "name", type(model).__name__))
        loaded = LoadedModel(self.name, kind, f"{self.name}:{kind}", model, version, CHAMPION, run_id)
        self.state.swap_next_steps(loaded)
        if current.version is not None and not current.fallback:
            self._recent[current.version] = current
            while len(self._recent) > KEPT_VERSIONS:
                self._recent.pop(next(iter(self._recent)))
        self._report(None)
        log.info("%s: now serving %s (was %s)", self.reason_prefix, loaded.tagged_label, current.tagged_label)
        return CheckResult("swapped", version, loaded)

    def _fill_run_id(self, current: LoadedModel) -> None:
        import mlflow

        try:
            run_id = mlflow.MlflowClient().get_model_version(self.name, str(current.version)).run_id
        except Exception as exc:  # metadata only: never worth a failure
            log.info("%s: run id unknown (%s)", self.reason_prefix, type(exc).__name__)
            return
        if run_id and self.state.next_steps is current:
            self.state.swap_next_steps(replace(current, run_id=run_id))

    @staticmethod
    def _serving(current: LoadedModel) -> str:
        if current.fallback:
            return f"serving the fallback {current.label}"
        return f"still serving {current.tagged_label}"

    def _report(self, problem: str | None) -> None:
        """Replace this watcher's reasons in the health report (one list assignment, never an in-place edit)."""
        kept = [r for r in self.state.degraded_reasons if not r.startswith(self.reason_prefix)]
        if problem is not None:
            kept.append(f"{self.reason_prefix} {problem}")
        if kept != self.state.degraded_reasons:
            self.state.degraded_reasons = kept

    # -- the poller ---------------------------------------------------------------------------------------
    def start(self) -> None:
        if self.poll_seconds <= 0 or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="model-watcher", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        # The first check is at once: the alias may have moved while this worker was loading.
        while True:
            try:
                self.check_now()
            except Exception as exc:  # the poller must outlive any single failure
                log.warning("%s: check failed (%s)", self.reason_prefix, type(exc).__name__)
            if self._stop.wait(self.poll_seconds):
                return


_creating = threading.Lock()


def model_watcher(app: FastAPI, settings: Settings) -> ModelWatcher:
    """The app's watcher, created on first use (POST /v1/models/reload works with polling off, too)."""
    with _creating:
        watcher: ModelWatcher | None = getattr(app.state, "model_watcher", None)
        if watcher is None or watcher.state is not app.state.serving:
            watcher = ModelWatcher(app.state.serving, settings.model_name, settings.model_poll_seconds)
            app.state.model_watcher = watcher
        return watcher
