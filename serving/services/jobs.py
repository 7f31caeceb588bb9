"""Long jobs (mentor assignment, team formation): run in a background thread of the worker, recorded in the store."""

from __future__ import annotations

import logging
import os
import queue
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import numpy as np
from fastapi import FastAPI
from sqlalchemy.exc import SQLAlchemyError

from recommender.columns import Columns
from recommender.store import online
from recommender.store.store import Store
from serving.deps import per_state
from serving.errors import ApiError
from serving.schemas_writes import JobAcceptedOut, JobOut, TeamFormationIn
from serving.state import ServingState

log = logging.getLogger("trajectory.serving")

MENTOR_ASSIGNMENT: Final = "mentor_assignment"
TEAM_FORMATION: Final = "team_formation"
# A worker marks its jobs alive this often; a job silent for STALE_SECONDS lost its worker.
HEARTBEAT_SECONDS: Final = 10.0
STALE_SECONDS: Final = 60.0
DEAD_WORKER: Final = "the worker process running this job stopped before it finished; submit it again"
# The job threads of an idle worker end after this long.
IDLE_SECONDS: Final = 30.0
# How long a finished job's outcome is retried while the database is away, before it is given up.
RECORD_RETRY_SECONDS: Final = 120.0

_PROCESS: dict[int, str] = {}


def worker_id() -> str:
    """`host:pid:token` of this process; the token tells a restarted process from the one it replaced."""
    pid = os.getpid()
    if pid not in _PROCESS:
        _PROCESS[pid] = f"{socket.gethostname()}:{pid}:{uuid.uuid4().hex[:8]}"
    return _PROCESS[pid]


def _dead(worker: str) -> bool:
    """True when `worker` is a process of this host known to be gone (other hosts: see the heartbeat)."""
    host, _, rest = worker.partition(":")
    pid_text, _, _token = rest.partition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return worker != worker_id()
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def fail_abandoned_jobs(store: Store) -> int:
    """Report as failed the jobs left queued or running by dead workers; the number failed."""
    dead = [w for w in online.active_job_workers(store.engine) if _dead(w)]
    silent = datetime.now(UTC) - timedelta(seconds=STALE_SECONDS)
    failed = online.fail_jobs(store.engine, workers=dead, silent_since=silent, error=DEAD_WORKER)
    if failed:
        log.warning("%d jobs of stopped workers reported failed", failed)
    return failed


@dataclass(frozen=True)
class _Job:
    job_id: str
    run: Callable[[], dict[str, Any]]


class JobRunner:
    """This worker's jobs: one background thread runs them in turn (they are CPU-bound), another marks
    them alive in the store so that any worker can tell a running job from an abandoned one. Both threads
    end after IDLE_SECONDS without work and start again with the next job."""

    def __init__(self, state: ServingState) -> None:
        self.state = state
        self._queue: queue.Queue[_Job] = queue.Queue()
        self._active: set[str] = set()
        self._lock = threading.Lock()
        self._idle = threading.Event()
        self._running = False

    def submit(self, kind: str, event_id: str, params: dict[str, Any], key_id: str,
               run: Callable[[], dict[str, Any]]) -> str:
        store = _store(self.state)
        job_id = f"job_{uuid.uuid4().hex}"
        online.create_job(store.engine, job_id, kind, event_id, params, key_id, worker_id())
        with self._lock:
            # Queued under the lock: a worker thread deciding to end sees the job and stays.
            self._active.add(job_id)
            self._queue.put(_Job(job_id, run))
            if not self._running:
                self._running = True
                self._idle.clear()
                threading.Thread(target=self._work, name="trajectory-jobs", daemon=True).start()
                threading.Thread(target=self._beat, name="trajectory-jobs-heartbeat", daemon=True).start()
        return job_id

    def _work(self) -> None:
        while True:
            try:
                job = self._queue.get(timeout=IDLE_SECONDS)
            except queue.Empty:
                with self._lock:
                    if self._queue.empty():
                        self._running = False
                        self._idle.set()
                        return
                continue
            try:
                self._run(job)
            finally:
                with self._lock:
                    self._active.discard(job.job_id)

    def _run(self, job: _Job) -> None:
        store = _store(self.state)
        if not self._record(lambda: online.start_job(store.engine, job.job_id)):
            return  # reported failed meanwhile, or the database stayed away
        started = time.perf_counter()
        try:
            result = job.run()
        except (KeyError, ValueError) as exc:
            message = str(exc.args[0]) if exc.args else type(exc).__name__
            log.info("job %s failed: %s", job.job_id, message)
            self._record(lambda: online.finish_job(store.engine, job.job_id, error=message))
            return
        except Exception as exc:  # any bug must end as a failed job, never as a job running forever
            log.exception("job %s failed (%s)", job.job_id, type(exc).__name__)
            error = f"the job failed with an internal error ({type(exc).__name__})"
            self._record(lambda: online.finish_job(store.engine, job.job_id, error=error))
            return
        log.info("job %s succeeded in %.1f s", job.job_id, time.perf_counter() - started)
        self._record(lambda: online.finish_job(store.engine, job.job_id, result=result))

    @staticmethod
    def _record(write: Callable[[], Any]) -> Any:
        """Write a job's state, retrying while the database is away; None when it never came back."""
        deadline = time.monotonic() + RECORD_RETRY_SECONDS
        delay = 0.5
        while True:
            try:
                return write()
            except SQLAlchemyError as exc:
                if time.monotonic() > deadline:
                    log.warning("job state not recorded (%s); it will be reported failed", type(exc).__name__)
                    return None
                time.sleep(delay)
                delay = min(delay * 2, 10.0)

    def _beat(self) -> None:
        while not self._idle.wait(HEARTBEAT_SECONDS):
            with self._lock:
                active = sorted(self._active)
            if not active or self.state.store is None:
                continue
            try:
                online.heartbeat(self.state.store.engine, active)
            except SQLAlchemyError as exc:
                log.warning("job heartbeat not recorded (%s)", type(exc).__name__)


def _new_runner(state: ServingState) -> JobRunner:
    if state.store is not None:
        fail_abandoned_jobs(state.store)
    return JobRunner(state)


def job_runner_for(app: FastAPI) -> JobRunner:
    """The app's runner for its current serving state; made on first use, after failing abandoned jobs."""
    return per_state(app, "job_runner", _new_runner)


def start_up(state: ServingState) -> None:
    """At worker start: jobs that dead workers left running are reported failed (a database outage waits)."""
    if state.store is None:
        return
    try:
        fail_abandoned_jobs(state.store)
    except SQLAlchemyError as exc:
        log.warning("abandoned jobs not checked at start-up (%s)", type(exc).__name__)


# ---- the two jobs ---------------------------------------------------------------------------------------

def submit_mentor_assignment(state: ServingState, runner: JobRunner, event_id: str, key_id: str) -> JobAcceptedOut:
    """Assign mentors to the event's teams without one (capacities, reach, rural teams first)."""
    _known_event(state, event_id)
    as_of = state.today()

    def run() -> dict[str, Any]:
        from training.mentors import assign_mentors

        done = assign_mentors(state.graph, as_of, event_id=event_id)
        pairs = done.pairs
        return {
            "as_of": as_of.date().isoformat(),
            "assigned": [
                {Columns.Team: str(t), Columns.Mentor: str(m), "expected_benefit": float(b)}
                for t, m, b in zip(pairs[Columns.Team], pairs[Columns.Mentor], pairs["expected_benefit"], strict=True)
            ],
            "unassigned": [str(t) for t in done.unassigned],
            "total_expected_benefit": round(float(pairs["expected_benefit"].sum()), 6),
        }

    params = {"as_of": as_of.date().isoformat()}
    job_id = runner.submit(MENTOR_ASSIGNMENT, event_id, params, key_id, run)
    return _accepted(job_id, MENTOR_ASSIGNMENT, event_id)


def submit_team_formation(
    state: ServingState, runner: JobRunner, event_id: str, key_id: str, body: TeamFormationIn | None
) -> JobAcceptedOut:
    """Split the event's registrants (or the given participants) into teams within its size limits."""
    _known_event(state, event_id)
    ids = body.participant_ids if body is not None else None
    groups = body.groups if body is not None else None
    if groups is not None and (ids is None or len(groups) != len(ids)):
        raise ApiError(422, "invalid_request", "groups: give one entry per participant_ids entry")

    def run() -> dict[str, Any]:
        from training.teams import DEFAULT_FORMATION, form_event_teams

        # With the loaded team-success model, as `trajectory teams form` does: DEFAULT_FORMATION (the draft, each
        # team's success predicted by the model; a search config there would search with it too); without one,
        # the draft alone. Skills and former teammates come from the served graph, which holds achievements
        # posted since the side models were built (their graph does not).
        side = state.side
        loaded = side.team_success if side is not None else None
        about: dict[str, Any]
        if loaded is not None:
            done = form_event_teams(state.graph, event_id, ids, groups=groups, model=loaded.model,
                                    config=DEFAULT_FORMATION)
            about = {"team_success_model": loaded.tagged_label}
        else:
            done = form_event_teams(state.graph, event_id, ids, groups=groups)
            why = side.why("team-success") if side is not None else "the side models are not loaded"
            about = {"team_success_model": None,
                     "note": f"no team-success model ({why}): the balanced complementary draft alone"}
        if not len(done.teams):
            raise ValueError(f"event {event_id!r} has no registrants to form teams from")
        teams = done.teams.groupby(Columns.Team, sort=True)[Columns.Participant].apply(list)
        success = done.predicted_success
        return {
            "teams": [
                {Columns.Team: str(team), "participant_ids": [str(p) for p in members],
                 **({"predicted_success": float(success[team])} if team in success.index else {})}
                for team, members in teams.items()
            ],
            "participants": len(done.teams),
            "team_sizes": np.bincount(teams.map(len).to_numpy()).nonzero()[0].tolist(),
            "method": done.method,
            **about,
        }

    params: dict[str, Any] = {"participants": len(ids) if ids is not None else None,
                              "groups": groups is not None}
    job_id = runner.submit(TEAM_FORMATION, event_id, params, key_id, run)
    return _accepted(job_id, TEAM_FORMATION, event_id)


def job_status(state: ServingState, job_id: str) -> JobOut:
    """A job's status and, when finished, its result or error; a job of a stopped worker is reported failed."""
    store = _store(state)
    job = online.get_job(store.engine, job_id)
    if job is None:
        raise ApiError(404, "job_not_found", f"job {job_id!r} is not known")
    if job.status in online.ACTIVE_JOB_STATUSES:
        dead = [job.worker] if job.worker is not None and _dead(job.worker) else []
        silent = datetime.now(UTC) - timedelta(seconds=STALE_SECONDS)
        if online.fail_jobs(store.engine, error=DEAD_WORKER, workers=dead, silent_since=silent, job_ids=[job_id]):
            job = online.get_job(store.engine, job_id) or job
    return JobOut(job_id=job.job_id, kind=job.kind, event_id=job.event_id, status=job.status,
                  created_at=job.created_at, started_at=job.started_at, finished_at=job.finished_at,
                  result=job.result, error=job.error)


def _known_event(state: ServingState, event_id: str) -> None:
    if event_id not in state.graph.event_index:
        raise ApiError(404, "event_not_found", f"event {event_id!r} is not known")


def _accepted(job_id: str, kind: str, event_id: str) -> JobAcceptedOut:
    return JobAcceptedOut(job_id=job_id, kind=kind, event_id=event_id, status="queued",
                          status_url=f"/v1/jobs/{job_id}")


def _store(state: ServingState) -> Store:
    if state.store is None:
        raise ApiError(503, "store_unavailable", "no store is configured")
    return state.store
