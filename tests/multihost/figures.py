"""Where the time goes while the cluster delivers (docs/scaling.md's figures):
CPU seconds per role, PostgreSQL's costliest statements (pg_stat_statements),
the broker's commands (Redis' commandstats), PgBouncer's pool (clients,
server connections, waits).

    figures = Figures(cluster, bouncer=..., redis=..., postgres=...)
    figures.start()          # counters reset, pool sampled every 0.2 s
    ...                      # the traffic
    figures.print(deliveries=10_000)
"""

import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.faults.servers import PrivatePostgres, PrivateRedis
from tests.multihost.cluster import DATABASE, Cluster
from tests.support.pgbouncer import PgBouncer

TICK = os.sysconf("SC_CLK_TCK")
# pg_stat_statements keeps one entry per statement shape (a VALUES list of 50
# rows is not one of 51): summed by what they do.
KINDS = [
    (
        "publish (events + deliveries)",
        r'^WITH new_events AS \(INSERT INTO "events_event"',
    ),
    ("claim", r"^UPDATE delivery_delivery SET next_attempt_at"),
    ("claimed rows' load", r'^SELECT "delivery_delivery"\."id"'),
    ("attempt INSERT", r'^INSERT INTO "?delivery_attempt"?'),
    ("result UPDATE", r'^UPDATE "delivery_delivery" AS d SET status'),
    ("due count (sweep)", r"^SELECT COUNT\("),
    ("foreign key checks", r"^SELECT \$\d+ FROM ONLY"),
]


def _kind(query: str) -> str:
    for name, pattern in KINDS:
        if re.search(pattern, query):
            return name
    return re.sub(r"\s+", " ", query)[:60]


def cpu_seconds(root: int) -> float:
    """User + system CPU of a process and all its descendants, now."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # the command name may hold spaces: the fields follow its ")"
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue  # exited meanwhile
        pid = int(stat.parent.name)
        parents[pid] = int(fields[1])
        times[pid] = (int(fields[11]) + int(fields[12])) / TICK
    tree, grew = {root}, True
    while grew:  # to a fixpoint: a child's pid may be lower than its parent's
        grew = False
        for pid, parent in parents.items():
            if parent in tree and pid not in tree:
                tree.add(pid)
                grew = True
    return sum(times.get(pid, 0.0) for pid in tree)


@dataclass
class Figures:
    cluster: Cluster
    bouncer: PgBouncer
    redis: PrivateRedis
    postgres: PrivatePostgres
    pools: list[dict[str, Any]] = field(default_factory=list)

    def start(self) -> None:
        with self.cluster.net.inside(DATABASE):
            connection = self.postgres.connect(self._database())
            with connection.cursor() as cursor:
                cursor.execute(
                    "CREATE EXTENSION IF NOT EXISTS pg_stat_statements; "
                    "SELECT pg_stat_statements_reset()"
                )
            connection.close()
            self.redis.client().config_resetstat()
            self._stats_before = self.bouncer.show("STATS")
        self._cpu_before = self._cpu()
        self._done = threading.Event()
        with self.cluster.net.inside(DATABASE):  # the sampler stays on d
            self._sampler = threading.Thread(target=self._sample, daemon=True)
            self._sampler.start()

    def print(self, *, deliveries: int) -> None:
        self._done.set()
        self._sampler.join(timeout=10)
        per_thousand = 1000 / deliveries
        cpu = {
            role: (after - self._cpu_before[role]) * per_thousand
            for role, after in self._cpu().items()
        }
        print(
            "figures: CPU seconds per 1,000 deliveries: "
            + ", ".join(f"{role} {seconds:.2f}" for role, seconds in cpu.items())
        )
        kinds: dict[str, list[float]] = {}
        for calls, total, rows, query in self.cluster.query(
            "SELECT calls, total_exec_time, rows, query "
            "FROM pg_stat_statements JOIN pg_database d ON d.oid = dbid "
            "WHERE d.datname = current_database()"
        ):
            kind = kinds.setdefault(_kind(query), [0, 0.0, 0])
            kind[0] += calls
            kind[1] += total
            kind[2] += rows
        for name, (calls, total, rows) in sorted(kinds.items(), key=lambda k: -k[1][1])[
            :7
        ]:
            print(
                f"figures: statement {name}: {total:.0f} ms, {calls} calls, "
                f"{rows} rows ({1000 * total / deliveries:.0f} ms per 1,000 deliveries)"
            )
        with self.cluster.net.inside(DATABASE):
            commands = self.redis.client().info("commandstats")
            stats = self.bouncer.show("STATS")
        broker = sorted(commands.items(), key=lambda kv: -kv[1]["usec"])[:4]
        print(
            "figures: broker "
            + ", ".join(
                f"{name[8:]} {c['calls']} calls {c['usec'] / 1000:.0f} ms"
                for name, c in broker
            )
        )
        mine = self._database_row(stats)
        before = self._database_row(self._stats_before)
        xacts = int(mine["total_xact_count"] - before["total_xact_count"])
        wait = float(mine["total_wait_time"] - before["total_wait_time"]) / 1e6
        held = float(mine["total_xact_time"] - before["total_xact_time"]) / 1e3
        busiest = max(self.pools, key=lambda p: p["cl_active"] + p["cl_waiting"])
        print(
            f"figures: pgbouncer {xacts} transactions ({held / max(xacts, 1):.2f} ms "
            f"each on a server connection), clients waited {wait:.1f} s "
            f"in all; busiest sample: {busiest['cl_active']} clients active, "
            f"{busiest['cl_waiting']} waiting, {busiest['sv_active']} server "
            f"connections active, {busiest['sv_idle'] + busiest['sv_used']} idle; "
            f"longest wait {max(p['maxwait'] for p in self.pools)} s"
        )

    def _cpu(self) -> dict[str, float]:
        workers = {
            p.name: p.pid
            for p in self.cluster.stack.processes
            if p.name.startswith("worker")
        }
        postmaster = int((self.postgres.data / "postmaster.pid").read_text().split()[0])
        roles = {
            "web": self.cluster.web.pid,
            **workers,
            "postgres": postmaster,
            "pgbouncer": self.bouncer.process.pid,
            "redis": self.redis.process.pid,
        }
        return {role: cpu_seconds(pid) for role, pid in roles.items()}

    def _sample(self) -> None:
        while not self._done.wait(0.2):
            self.pools.append(self._database_row(self.bouncer.show("POOLS")))

    def _database_row(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        return next(row for row in rows if row["database"] == self._database())

    def _database(self) -> str:
        return self.cluster.database_url.rsplit("/", 1)[1]
