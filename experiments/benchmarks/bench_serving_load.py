"""Load benchmark of the HTTP API: open-loop arrivals at a fixed rate against `trajectory serve --workers W`.

Starts the service as a subprocess over a world (an AIF directory, ingested into a fresh SQLite store, or an
already-ingested store URL; the champion comes from the registry MLFLOW_TRACKING_URI names, or the popularity
fallback), creates an API key with `trajectory keys create`, and drives GET next-steps for random participants
with history from a load generator in a separate process (asyncio streams over keep-alive connections; its
own GIL, and its CPU time is reported, since it shares the machine). Arrivals are scheduled at a fixed rate
whatever the answers do (open loop), and latency is measured from the scheduled time, so a stalled server
cannot hide its queue (no coordinated omission). Prints p50/p95/p99, achieved
throughput and errors beside the target: p99 < 50 ms at 200 requests/second.

    # a 20k world: `trajectory demo --no-serve` builds data/demo/world, data/trajectory.db and data/mlflow.db
    nice python experiments/benchmarks/bench_serving_load.py --store sqlite:///data/trajectory.db \
        --as-of-from data/demo/world/aif --rate 200 --duration 20 [--promote-during]

Options:
  --promote-during    moves the champion alias between two registered versions every --promote-every
                      seconds (workers poll every second) and reports failed requests and the models that
                      answered; --register-alternative registers popularity as the second version if needed.
                      The alias is put back on the starting champion at the end.
  --kill-db-command / --restore-db-command
                      shell commands run at 1/3 and 2/3 of the measured window to take the store's database
                      away and back (PostgreSQL, e.g. "sudo systemctl stop postgresql" / "... start ...", or
                      "pg_ctl -D $PGDATA stop -m fast" / "pg_ctl -D $PGDATA start -w" as the server's owner, or
                      "docker stop pg" / "docker start pg"); errors are reported per phase. Next steps are
                      answered from memory and keys seen in the last 30 s stay valid, so the target is zero
                      failures while the database is away.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import numpy as np

TARGET_RATE = 200.0
TARGET_P99_MS = 50.0
CLI = [sys.executable, "-c", "from recommender.cli import main; main()"]


# --------------------------------------------------------------------------------------------- load generator
@dataclass
class Shot:
    due: float  # scheduled send time (seconds from the start of the run)
    sent: float
    done: float
    status: int  # 0 = no HTTP answer (connection error or timeout)
    model: str  # the `model` field of a 200 answer, else the error's name
    measured: bool  # False during warm-up


MAX_IN_FLIGHT = 256  # connections; an arrival beyond them waits for one, and the wait counts as latency
_MODEL = re.compile(rb'"model"\s*:\s*"([^"]*)"')


class Unanswered(Exception):
    pass


class KeepAliveClient:
    """A minimal HTTP/1.1 GET client over a pool of keep-alive connections (asyncio streams, uvloop if present).

    The generator shares the server's 2 cores, so its cost per request is the server's loss: httpx spends about
    a millisecond of CPU per request in its own machinery, this client a tenth of that (the generator's CPU time
    is reported). Answers are read by Content-Length; the `model` field is found without parsing the JSON."""

    def __init__(self, host: str, port: int, key: str, timeout: float) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.header = f"Host: {host}:{port}\r\nAuthorization: Bearer {key}\r\nConnection: keep-alive\r\n\r\n"
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def get(self, path: str) -> tuple[int, bytes]:
        if self.idle:
            try:
                return await self._get(path, self.idle.pop())
            except (ConnectionError, asyncio.IncompleteReadError) as exc:
                # The server closed this kept-alive connection while it sat idle (uvicorn does after 5 s) and
                # nothing of an answer came: a GET is idempotent, so it is sent again on a new connection, as
                # HTTP clients do (RFC 9112, 9.3.1). A partial answer is a real failure.
                if isinstance(exc, asyncio.IncompleteReadError) and exc.partial:
                    raise
        return await self._get(path, await asyncio.open_connection(self.host, self.port))

    async def _get(self, path: str, conn: tuple[asyncio.StreamReader, asyncio.StreamWriter]) -> tuple[int, bytes]:
        reader, writer = conn
        try:
            writer.write(f"GET {path} HTTP/1.1\r\n{self.header}".encode("ascii"))
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), self.timeout)
            lines = head.split(b"\r\n")
            status = int(lines[0].split(b" ", 2)[1])
            length = next((int(line.split(b":", 1)[1]) for line in lines[1:]
                           if line[:15].lower() == b"content-length:"), None)
            if length is None:
                raise Unanswered("no Content-Length")
            body = await asyncio.wait_for(reader.readexactly(length), self.timeout)
        except BaseException:
            writer.close()
            raise
        keep = all(line.lower() != b"connection: close" for line in lines[1:])
        if keep:
            self.idle.append(conn)
        else:
            writer.close()
        return status, body

    def close(self) -> None:
        for _, writer in self.idle:
            writer.close()
        self.idle.clear()


async def _fire(client: KeepAliveClient, slots: asyncio.Semaphore, path: str, due: float, t0: float,
                measured: bool, timeout: float) -> Shot:
    async with slots:
        sent = time.perf_counter() - t0
        if sent - due > timeout:  # waited its whole time for a connection: the server is saturated
            return Shot(due, sent, sent, 0, "Unanswered", measured)
        try:
            status, body = await client.get(path)
            found = _MODEL.search(body) if status == 200 else None
            model = found.group(1).decode() if found else f"http_{status}"
        except (TimeoutError, OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, Unanswered,
                ValueError) as exc:
            status, model = 0, type(exc).__name__
        return Shot(due, sent, time.perf_counter() - t0, status, model, measured)


async def _generate(url: str, key: str, ids: list[str], rate: float, duration: float, warmup: float, k: int,
                    seed: int, timeout: float) -> list[Shot]:
    rng = random.Random(seed)
    slots = asyncio.Semaphore(MAX_IN_FLIGHT)  # at most as many requests in flight as connections
    address = urlsplit(url)
    client = KeepAliveClient(address.hostname or "127.0.0.1", address.port or 80, key, timeout)
    try:
        t0 = time.perf_counter()
        tasks: list[asyncio.Task[Shot]] = []
        dues: list[float] = []
        total = int((warmup + duration) * rate)
        for i in range(total):
            due = i / rate
            delay = t0 + due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            path = f"/v1/participants/{quote(rng.choice(ids), safe='')}/next-steps?k={k}"
            tasks.append(asyncio.create_task(_fire(client, slots, path, due, t0, due >= warmup, timeout)))
            dues.append(due)
        # A saturated server must not keep the run going: what has no answer `timeout` s after the last
        # arrival is counted as unanswered.
        _, pending = await asyncio.wait(tasks, timeout=max(0.0, t0 + dues[-1] + timeout - time.perf_counter()))
        for task in pending:
            task.cancel()
        end = time.perf_counter() - t0
        return [Shot(due, due, end, 0, "Unanswered", due >= warmup) if task in pending else task.result()
                for task, due in zip(tasks, dues, strict=True)]
    finally:
        client.close()


def generator_main(args: argparse.Namespace) -> None:
    """The generator process: shots as JSON lines on stdout (read by the driver)."""
    ids = Path(args.ids_file).read_text(encoding="utf-8").split()
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # the plain asyncio loop: slower, still correct
        pass
    shots = asyncio.run(_generate(args.url, os.environ["BENCH_API_KEY"], ids, args.rate, args.duration,
                                  args.warmup, args.k, args.seed, args.timeout))
    for shot in shots:
        sys.stdout.write(json.dumps(asdict(shot)) + "\n")
    usage = resource.getrusage(resource.RUSAGE_SELF)
    sys.stdout.write(json.dumps({"generator_cpu_s": round(usage.ru_utime + usage.ru_stime, 2)}) + "\n")


# ------------------------------------------------------------------------------------------------- the driver
def _run_cli(args: list[str], env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run([*CLI, *args], capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise SystemExit(f"trajectory {args[0]} {args[1] if len(args) > 1 else ''} failed: {reason}")
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _participants_with_history(store_url: str, limit: int, seed: int) -> list[str]:
    from recommender.store.store import Store

    with Store(store_url) as store:
        ids = store.tables(["achievements"])["achievements"]["participant_id"].astype(str).unique()
    if len(ids) == 0:
        raise SystemExit("the store holds no achievements: nobody has a history to recommend from")
    rng = np.random.default_rng(seed)
    return [str(v) for v in rng.choice(ids, size=min(limit, len(ids)), replace=False)]


def _as_of(aif_dir: Path | None) -> str | None:
    if aif_dir is None:
        return None
    manifest = json.loads((aif_dir / "manifest.json").read_text(encoding="utf-8"))
    return str(manifest["exported_at"])[:10]


def _wait_healthy(url: str, server: subprocess.Popen[bytes], timeout: float) -> dict[str, Any]:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited with {server.returncode} while starting (see its log)")
        try:
            r = httpx.get(f"{url}/v1/health", timeout=2.0)
            if r.status_code == 200:
                health: dict[str, Any] = r.json()
                return health
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"the server did not answer /v1/health within {timeout:.0f} s")


def _warm(url: str, key: str, ids: list[str], n: int) -> float:
    """Sequential requests before the load: each worker's first answers pay one-off costs (lazy arrays, caches)
    that an open-loop flood would turn into a queue it never drains. Returns their mean latency in ms."""
    import httpx

    started = time.monotonic()
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60.0) as client:
        for pid in ids[:n]:
            client.get(f"/v1/participants/{pid}/next-steps?k=10").raise_for_status()
    return round((time.monotonic() - started) * 1000 / max(n, 1), 1)


def _stop(server: subprocess.Popen[bytes]) -> None:
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)  # uvicorn's master stops its workers gracefully
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(10)


class Promoter(threading.Thread):
    """Moves the champion alias back and forth between two versions while the load runs."""

    def __init__(self, versions: tuple[str, str], every: float, start_at: float, stop_at: float) -> None:
        super().__init__(daemon=True)
        self.versions, self.every, self.start_at, self.stop_at = versions, every, start_at, stop_at
        self.moves: list[tuple[float, str]] = []
        self.t0 = time.monotonic()
        self._stop_event = threading.Event()

    def run(self) -> None:
        from training import tracking

        at = self.start_at
        i = 1
        while at < self.stop_at:
            if self._stop_event.wait(max(0.0, self.t0 + at - time.monotonic())):
                return
            target = self.versions[i % 2]
            tracking.set_champion(target)
            self.moves.append((round(time.monotonic() - self.t0, 2), target))
            i += 1
            at += self.every

    def stop(self) -> None:
        """Stop moving and put the champion back where it was."""
        from training import tracking

        self._stop_event.set()
        if self.is_alive():
            self.join()
        if self.moves and tracking.champion_version() != self.versions[0]:
            tracking.set_champion(self.versions[0])


def _register_alternative(store_url: str) -> str:
    """Register popularity per region and grade fitted on the store's world as a new version (alias untouched)."""
    import mlflow

    from recommender.graph import AchievementsGraph
    from recommender.store.store import Store
    from training import tracking
    from training.popularity import PopularityRecommender

    with Store(store_url) as store:
        graph = AchievementsGraph.from_tables(store.tables())
    tracking.configure()
    with mlflow.start_run(run_name="bench-alternative"):
        version = tracking.log_next_steps_model(PopularityRecommender().fit(graph))
    assert version is not None
    return version


def _two_versions(store_url: str, register_alternative: bool) -> tuple[str, str]:
    """The champion and another registered version of next-steps (the previous champion when there is one)."""
    import mlflow

    from training import tracking

    tracking.configure()
    champion = tracking.champion_version()
    if champion is None:
        raise SystemExit("--promote-during needs a champion in the registry (MLFLOW_TRACKING_URI)")
    history = tracking.champion_history()
    if history and history[-1] != champion:
        return champion, history[-1]
    others = [str(v.version) for v in mlflow.MlflowClient().search_model_versions(f"name='{tracking.NEXT_STEPS_MODEL}'")
              if str(v.version) != champion]
    if not others and register_alternative:
        others = [_register_alternative(store_url)]
    if not others:
        raise SystemExit("--promote-during needs two registered versions of next-steps: train once more, or pass "
                         "--register-alternative")
    return champion, max(others, key=int)


def _percentiles(values: np.ndarray) -> dict[str, float]:
    if len(values) == 0:
        return {}
    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    return {"p50": round(float(p50), 2), "p95": round(float(p95), 2), "p99": round(float(p99), 2),
            "max": round(float(values.max()), 2)}


def summarize(shots: list[Shot], rate: float, duration: float, phases: dict[str, tuple[float, float]]
              ) -> dict[str, Any]:
    measured = [s for s in shots if s.measured]
    ok = [s for s in measured if s.status == 200]
    latency = np.array([(s.done - s.due) * 1000 for s in ok])
    service = np.array([(s.done - s.sent) * 1000 for s in ok])
    window_end = max((s.done for s in measured), default=0.0)
    window_start = min((s.due for s in measured), default=0.0)
    errors = Counter(s.model for s in measured if s.status != 200)
    report: dict[str, Any] = {
        "target": {"rate_rps": rate, "p99_ms": TARGET_P99_MS},
        "sent": len(measured),
        "ok": len(ok),
        "failed": len(measured) - len(ok),
        "errors": dict(errors),
        "achieved_rps": round(len(ok) / max(window_end - window_start, 1e-9), 1),
        "latency_ms": _percentiles(latency),  # from the scheduled send: includes any queueing
        "service_latency_ms": _percentiles(service),  # from the actual send
        "models": dict(Counter(s.model for s in ok)),
    }
    if phases:
        report["phases"] = {
            name: {"sent": len(part := [s for s in measured if lo <= s.due < hi]),
                   "failed": sum(1 for s in part if s.status != 200),
                   "errors": dict(Counter(s.model for s in part if s.status != 200))}
            for name, (lo, hi) in phases.items()
        }
    p99 = report["latency_ms"].get("p99", float("inf"))
    met = p99 < TARGET_P99_MS and report["failed"] == 0 and report["achieved_rps"] >= 0.95 * rate
    report["verdict"] = (f"{'met' if met else 'NOT met'}: p99 {p99} ms (target < {TARGET_P99_MS:.0f}) at "
                         f"{report['achieved_rps']} rps (offered {rate:.0f}), {report['failed']} failed")
    return report


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(f"stopped by signal {signum}")  # so the server and the generator are stopped too


def driver_main(args: argparse.Namespace) -> None:
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    env = dict(os.environ)
    work = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    store_url = args.store
    if args.aif is not None:  # a fresh store with just this world
        store_url = store_url or f"sqlite:///{work / 'bench.db'}"
        _run_cli(["ingest", str(args.aif), "--store", store_url], env)
    if store_url is None:
        raise SystemExit("give --store URL (an ingested world) or --aif DIR")
    as_of = args.as_of or _as_of(args.aif or args.as_of_from)
    ids = _participants_with_history(store_url, 5000, args.seed)
    (work / "ids.txt").write_text("\n".join(ids), encoding="utf-8")
    key = _run_cli(["keys", "create", "--scope", "frontend", "--name", "bench", "--rate-per-minute", "100000000",
                    "--store", store_url], env)["key"]

    port = args.port or _free_port()
    url = f"http://127.0.0.1:{port}"
    server_env = {**env, "TRAJECTORY_STORE": store_url, "TRAJECTORY_MODEL_POLL_SECONDS":
                  "1" if args.promote_during else env.get("TRAJECTORY_MODEL_POLL_SECONDS", "30")}
    if as_of:
        server_env["TRAJECTORY_AS_OF"] = as_of
    log_path = work / "server.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen([*CLI, "serve", "--workers", str(args.workers), "--port", str(port)],
                                  env=server_env, stdout=log, stderr=subprocess.STDOUT)
    promoter: Promoter | None = None
    generator: subprocess.Popen[str] | None = None
    try:
        started = time.monotonic()
        health = _wait_healthy(url, server, args.start_timeout)
        startup_s = round(time.monotonic() - started, 1)
        time.sleep(1.0)  # the second worker may answer health a little after the first
        warm_ms = _warm(url, key, ids, args.warm_requests)
        phases: dict[str, tuple[float, float]] = {}
        if args.promote_during:
            versions = _two_versions(store_url, args.register_alternative)
            promoter = Promoter(versions, args.promote_every, args.warmup + args.promote_every / 2,
                                args.warmup + args.duration)
        db_timer: list[threading.Timer] = []
        if args.kill_db_command:
            third = args.duration / 3
            phases = {"before": (args.warmup, args.warmup + third), "db_away": (args.warmup + third,
                      args.warmup + 2 * third), "after": (args.warmup + 2 * third, args.warmup + args.duration)}
            db_timer.append(threading.Timer(args.warmup + third, subprocess.run, (args.kill_db_command,),
                                            {"shell": True, "check": False}))
            if args.restore_db_command:
                db_timer.append(threading.Timer(args.warmup + 2 * third, subprocess.run, (args.restore_db_command,),
                                                {"shell": True, "check": False}))
        generator = subprocess.Popen(
            [sys.executable, __file__, "--generate", "--url", url, "--ids-file", str(work / "ids.txt"),
             "--rate", str(args.rate), "--duration", str(args.duration), "--warmup", str(args.warmup),
             "-k", str(args.k), "--seed", str(args.seed), "--timeout", str(args.timeout)],
            env={**env, "BENCH_API_KEY": key}, stdout=subprocess.PIPE, text=True)
        if promoter is not None:
            promoter.t0 = time.monotonic()
            promoter.start()
        for timer in db_timer:
            timer.daemon = True
            timer.start()
        out, _ = generator.communicate()
        if generator.returncode != 0:
            raise SystemExit(f"the load generator failed with {generator.returncode}")
        for timer in db_timer:
            timer.join()
        rows = [json.loads(line) for line in out.splitlines() if line.strip()]
        shots = [Shot(**row) for row in rows if "due" in row]
        report = summarize(shots, args.rate, args.duration, phases)
        report["generator_cpu_s"] = next((row["generator_cpu_s"] for row in rows if "generator_cpu_s" in row), None)
        report["world"] = {"store": _masked(store_url), "as_of": as_of, "participants": health.get("participants"),
                           "events": health.get("events"), "participants_sampled": len(ids)}
        report["server"] = {"workers": args.workers, "startup_s": startup_s, "warm_sequential_ms": warm_ms,
                            "status": health.get("status"), "memory": _memory(server.pid),
                            "reasons": health.get("reasons"), "log": str(log_path)}
        if promoter is not None:
            promoter.stop()
            report["promotions"] = promoter.moves
        print(json.dumps(report, indent=2, ensure_ascii=False))
        print(report["verdict"], file=sys.stderr)
    finally:
        if generator is not None and generator.poll() is None:
            generator.kill()
            generator.wait()
        if promoter is not None:
            promoter.stop()
        _stop(server)


def _memory(pid: int) -> dict[str, Any]:
    """RSS and PSS (shared pages split among the processes sharing them) of the service's processes, in MiB;
    the PSS total is the memory the whole service takes (Linux /proc)."""
    procs = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*"):
        procs += [int(c) for c in (task / "children").read_text().split()]
    sizes: dict[str, Any] = {}
    for proc in procs:
        fields = {}
        for line in Path(f"/proc/{proc}/smaps_rollup").read_text().splitlines()[1:]:
            name, value = line.split(":", 1)
            fields[name] = int(value.split()[0]) / 1024
        sizes[str(proc)] = {"rss_mib": round(fields["Rss"]), "pss_mib": round(fields["Pss"])}
    sizes["pss_total_mib"] = sum(v["pss_mib"] for v in sizes.values())
    return sizes


def _masked(url: str) -> str:
    from training.tracking import mask_password

    return mask_password(url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", help="store URL of an ingested world (sqlite:///... or postgresql+psycopg://...)")
    parser.add_argument("--aif", type=Path, help="AIF directory: ingested into a fresh SQLite store (or --store)")
    parser.add_argument("--as-of", help="the service's today (default: the AIF export date)")
    parser.add_argument("--as-of-from", type=Path, help="an AIF directory whose export date is the service's today")
    parser.add_argument("--rate", type=float, default=TARGET_RATE, help="arrivals per second")
    parser.add_argument("--duration", type=float, default=20.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of load before measuring")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--warm-requests", type=int, default=100, help="sequential requests before the load")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds a request may take before it fails")
    parser.add_argument("--start-timeout", type=float, default=600.0, help="seconds to wait for the server")
    parser.add_argument("--promote-during", action="store_true", help="move the champion alias during the run")
    parser.add_argument("--promote-every", type=float, default=5.0, help="seconds between alias moves")
    parser.add_argument("--register-alternative", action="store_true",
                        help="with --promote-during and a single registered version: register popularity as another")
    parser.add_argument("--kill-db-command", help="shell command taking the store's database away mid-run")
    parser.add_argument("--restore-db-command", help="shell command bringing it back")
    # internal: the load generator process
    parser.add_argument("--generate", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--ids-file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate:
        generator_main(args)
    else:
        driver_main(args)


if __name__ == "__main__":
    main()
