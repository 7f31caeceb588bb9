"""Post achievements from many concurrent clients and check each is stored exactly once; print throughput.

Usage: python experiments/benchmarks/bench_concurrent_achievements.py [--achievements 10000] [--clients 32]
       [--batch 50] [--copies 2] [--workers 2] [--upgrades 0.2] [--store URL] [--app URL --key KEY]

In-process (default): a fresh SQLite store (or the database `--store` names; seeded when it holds no
participants) gets a synthetic crowd, `--workers` app instances (each its own graph, as
`trajectory serve --workers N` runs them) share it, and the clients post through them. With
`--app URL --key KEY` the clients post to a running service over HTTP instead; `--store` must then name
that service's database (participants and events are read from it, and the stored rows are counted in it).
Every achievement is posted `--copies` times by different clients in overlapping windows, so half the posts
(with the default 2) race against a copy of themselves. Achievements are registrations; with `--upgrades F`
a share F of them is also posted (as often) with its result (winner, same id and natural key) by other
clients at the same time, so a result races its registration: whichever lands first, the key must end as
one row holding the result.

Prints JSON: achievements posted and unique, accepted (stored and updated) and duplicate counts summed over
the answers, rows stored (by the run's achievement ids and by natural key, and those holding the upgraded
result), whether each is stored exactly once (and each upgrade held), wall seconds, unique achievements stored
per second, POST latency (p50, p95), and in-process whether every worker's graph holds each row once, with
the stored result, after its next read.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from recommender.aif.dataset import AifDataset
from recommender.aif.quarantine import empty_quarantine
from recommender.columns import ROLES
from recommender.graph import AchievementsGraph
from recommender.store.api_keys import create_key
from recommender.store.store import Store
from recommender.store.tables import AIF_TABLES, achievements

Post = Callable[[list[dict[str, Any]]], tuple[int, dict[str, Any]]]


def crowd(participants: int, events: int) -> dict[str, pd.DataFrame]:
    """A synthetic world with no history: who and where, enough for any number of distinct achievements."""
    def s(values: list[str]) -> pd.Series:
        return pd.Series(values, dtype="string")

    return {
        "participants": pd.DataFrame({"participant_id": s([f"P{i:06d}" for i in range(participants)]),
                                      "region_code": s(["77"] * participants)}),
        "events": pd.DataFrame({
            "event_id": s([f"E{i:04d}" for i in range(events)]), "title": s([f"Event {i}" for i in range(events)]),
            "format": s(["olympiad"] * events), "level": s(["school"] * events),
            "competences": s(["math:1"] * events), "start_date": pd.to_datetime(["2024-05-01"] * events),
            "online": pd.array([True] * events, dtype="boolean"),
        }),
    }


def seed(store: Store, tables: dict[str, pd.DataFrame]) -> None:
    manifest = {"format": "aif", "version": "1.0", "source": "bench", "exported_at": "2024-09-01T00:00:00Z"}
    store.ingest_dataset(AifDataset(manifest, tables, empty_quarantine(), {k: len(v) for k, v in tables.items()}))


def plan(store: Store, n: int, run: str, seed_value: int) -> list[dict[str, Any]]:
    """`n` achievements with distinct natural keys not stored yet, each with the run's achievement id."""
    with store.engine.connect() as conn:
        people = [r[0] for r in conn.execute(sa.select(AIF_TABLES["participants"].c.participant_id))]
        events = [r[0] for r in conn.execute(sa.select(AIF_TABLES["events"].c.event_id))]
    rng = np.random.default_rng(seed_value)
    space = len(people) * len(events) * len(ROLES)
    if space < 2 * n:
        raise SystemExit(f"the store has room for {space} distinct achievements; {n} asked")
    picks = rng.choice(space, size=2 * n, replace=False)
    p, rest = np.divmod(picks, len(events) * len(ROLES))
    e, r = np.divmod(rest, len(ROLES))
    keys = list(dict.fromkeys((people[i], events[j], ROLES[k]) for i, j, k in zip(p, e, r, strict=True)))
    # The stored keys are looked up once: asked per candidate (as this once did), 10,000 items cost
    # 20,000 scans of the crowd's achievements, minutes on PostgreSQL before the first post.
    taken = stored_keys(store, {k[0] for k in keys})
    keys = [k for k in keys if k not in taken][:n]
    if len(keys) < n:
        raise SystemExit(f"only {len(keys)} of {n} drawn achievements are not stored yet: pass another --seed")
    return [{"participant_id": pid, "event_id": eid, "role": role, "result": "registered", "date": "2024-05-01",
             "achievement_id": f"bench-{run}-{i}"} for i, (pid, eid, role) in enumerate(keys)]


UPGRADED = "winner"


def upgrades(items: list[dict[str, Any]], share: float) -> list[dict[str, Any]]:
    """The results of the first `share` of the registrations: same id and natural key, a winner a day later."""
    return [{**item, "result": UPGRADED, "date": "2024-05-02", "rank": 1} for item in items[:round(share * len(items))]]


def stored_keys(store: Store, people: set[str]) -> set[tuple[str, str, str]]:
    t, p, e = achievements, AIF_TABLES["participants"], AIF_TABLES["events"]
    query = (sa.select(p.c.participant_id, e.c.event_id, t.c.role)
             .select_from(t.join(p, p.c.pk == t.c.participant_pk).join(e, e.c.pk == t.c.event_pk)))
    out: set[tuple[str, str, str]] = set()
    ordered = sorted(people)
    with store.engine.connect() as conn:
        for start in range(0, len(ordered), 500):
            rows = conn.execute(query.where(p.c.participant_id.in_(ordered[start:start + 500])))
            out |= {(str(a), str(b), str(c)) for a, b, c in rows}
    return out


def count_stored(store: Store, run: str) -> dict[str, int]:
    t = achievements
    mine = t.c.achievement_id.like(f"bench-{run}-%")
    with store.engine.connect() as conn:
        rows, ids = conn.execute(sa.select(sa.func.count(), sa.func.count(sa.distinct(t.c.achievement_id)))
                                 .where(mine)).one()
        keys = conn.execute(sa.select(sa.func.count()).select_from(
            sa.select(t.c.participant_pk, t.c.event_pk, t.c.role).where(mine).distinct().subquery())).scalar_one()
        won = conn.execute(sa.select(sa.func.count()).where(mine, t.c.result == UPGRADED)).scalar_one()
    return {"rows": int(rows), "distinct_ids": int(ids), "distinct_natural_keys": int(keys), "upgraded": int(won)}


def stored_results(store: Store, run: str) -> dict[str, str]:
    """achievement_id -> stored result, for the run's rows."""
    t = achievements
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(t.c.achievement_id, t.c.result).where(t.c.achievement_id.like(f"bench-{run}-%")))
        return {str(i): str(r) for i, r in rows}


def hammer(posts: list[Post], items: list[dict[str, Any]], clients: int, batch: int, copies: int
           ) -> tuple[list[dict[str, Any]], list[float], list[str], float]:
    """Every item `copies` times, spread over `clients` threads in overlapping windows."""
    per_client = len(items) * copies // clients
    stride = len(items) // clients
    answers: list[dict[str, Any]] = []
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def client(n: int) -> None:
        post = posts[n % len(posts)]
        window = [items[(n * stride + j) % len(items)] for j in range(per_client)]
        for start in range(0, len(window), batch):
            t = time.perf_counter()
            status, body = post(window[start:start + batch])
            elapsed = (time.perf_counter() - t) * 1000
            with lock:
                latencies.append(elapsed)
                if status == 202:
                    answers.append(body)
                else:
                    errors.append(f"{status}: {body}")

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    started = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return answers, latencies, errors, time.perf_counter() - started


def in_process(store: Store, workers: int, key: str, run: str) -> tuple[list[Post], Callable[[], bool | None]]:
    from fastapi.testclient import TestClient

    from serving.app import create_app
    from serving.settings import Settings
    from serving.state import ServingState
    from training.popularity import PopularityRecommender

    apps = []
    for _ in range(workers):
        own = Store(store.url, snapshot_dir=store.snapshot_dir, quarantine_dir=store.quarantine_dir)
        graph = AchievementsGraph.from_tables(own.tables())
        state = ServingState(graph, PopularityRecommender().fit(graph), "next-steps:popularity", None, store=own)
        apps.append(create_app(Settings(), state=state))
    headers = {"Authorization": f"Bearer {key}"}
    local = threading.local()

    def poster(app: Any) -> Post:
        def post(items: list[dict[str, Any]]) -> tuple[int, dict[str, Any]]:
            clients = local.__dict__.setdefault("clients", {})
            client = clients.setdefault(id(app), TestClient(app))  # one client per thread and app
            r = client.post("/v1/achievements", json=items, headers=headers)
            return r.status_code, r.json()
        return post

    def graphs_hold_each_row_once() -> bool:
        expected = count_all(store)
        results = stored_results(store, run)
        ok = True
        for app in apps:
            TestClient(app).get("/v1/health")  # a read: the worker folds in what it lacks
            a = app.state.serving.graph.achievements
            ok &= len(a) == expected
            mine = a[a["achievement_id"].astype("string").str.startswith(f"bench-{run}-").fillna(False)]
            ok &= dict(zip(mine["achievement_id"].astype(str), mine["result"].astype(str), strict=True)) == results
        return ok

    return [poster(app) for app in apps], graphs_hold_each_row_once


def count_rows(store: Store, table: sa.Table) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def count_all(store: Store) -> int:
    return count_rows(store, achievements)


def over_http(url: str, key: str) -> list[Post]:
    import httpx

    headers = {"Authorization": f"Bearer {key}"}
    local = threading.local()

    def post(items: list[dict[str, Any]]) -> tuple[int, dict[str, Any]]:
        client = local.__dict__.setdefault("client", httpx.Client(base_url=url, timeout=120))
        r = client.post("/v1/achievements", json=items, headers=headers)
        return r.status_code, r.json()

    return [post]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--achievements", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--copies", type=int, default=2, help="times each achievement is posted")
    parser.add_argument("--workers", type=int, default=2, help="in-process app instances sharing the store")
    parser.add_argument("--upgrades", type=float, default=0.0,
                        help="share of the achievements also posted with a result (racing the registration)")
    parser.add_argument("--store", default=None, help="store URL (default: a fresh SQLite file)")
    parser.add_argument("--app", default=None, help="URL of a running service to post to")
    parser.add_argument("--key", default=None, help="a frontend API key of that service")
    parser.add_argument("--participants", type=int, default=5_000, help="crowd size of a fresh store")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.app is not None and (args.store is None or args.key is None):
        parser.error("--app needs --store (its database) and --key (a frontend key)")

    with tempfile.TemporaryDirectory(prefix="bench-achievements-") as tmp:
        url = args.store or f"sqlite:///{Path(tmp) / 'bench.db'}"
        with Store(url, snapshot_dir=Path(tmp) / "snapshot", quarantine_dir=Path(tmp) / "quarantine") as store:
            store.migrate()
            if count_rows(store, AIF_TABLES["participants"]) == 0:  # an empty database gets the crowd
                seed(store, crowd(args.participants, 40))
            run = uuid.uuid4().hex[:8]
            items = plan(store, args.achievements, run, args.seed)
            results = upgrades(items, args.upgrades)
            check_graphs: Callable[[], bool | None] = lambda: None  # noqa: E731
            if args.app is not None:
                posts = over_http(args.app, args.key)
            else:
                _, key = create_key(store.engine, f"bench-{run}", ["frontend"])
                posts, check_graphs = in_process(store, args.workers, key, run)
            pool = items + results
            answers, latencies, errors, seconds = hammer(posts, pool, args.clients, args.batch, args.copies)
            counts = count_stored(store, run)
            accepted = sum(a["accepted"] for a in answers)
            new_rows = sum(a.get("stored", a["accepted"]) for a in answers)
            once = counts["rows"] == counts["distinct_ids"] == counts["distinct_natural_keys"] == len(items)
            once &= counts["upgraded"] == len(results)
            print(json.dumps({
                "mode": "http" if args.app else f"in-process, {args.workers} workers",
                "store": store.masked_url, "clients": args.clients, "batch": args.batch,
                "posted": len(pool) * args.copies, "unique": len(items), "upgrades": len(results),
                "accepted": accepted, "accepted_stored": new_rows,
                "accepted_updated": sum(a.get("updated", 0) for a in answers),
                "duplicates": sum(a["duplicates"] for a in answers),
                "rejected": sum(a["rejected"] for a in answers), "failed_requests": len(errors),
                "stored": counts, "stored_exactly_once": once and new_rows == len(items),
                "seconds": round(seconds, 2), "stored_per_second": round(counts["rows"] / seconds, 1),
                "posted_per_second": round(len(pool) * args.copies / seconds, 1),
                "post_ms": {"p50": round(float(np.percentile(latencies, 50)), 1),
                            "p95": round(float(np.percentile(latencies, 95)), 1)} if latencies else {},
                "worker_graphs_hold_each_row_once": check_graphs(),
                "errors": errors[:3],
            }, indent=2))


if __name__ == "__main__":
    main()
