"""Time one `dispatch_due` pass in-process and EXPLAIN the queries it runs.

Run by the backlog scenario as a subprocess with the stack's environment (so
it talks to the bench database): python -m bench.probe --passes 5. It finds
the Celery task whose name ends in `dispatch_due`, runs its body in this
process (no broker round trip: the figure is the cost of the pass itself),
times a few passes, captures the SQL of one pass and runs
EXPLAIN (ANALYZE, BUFFERS) on every statement that touches the delivery table,
inside a transaction that is rolled back. Prints one JSON line.
"""

import argparse
import json
import os
import statistics
import time

_INDEX_NODES = ("Index Scan", "Index Only Scan", "Bitmap Index Scan")


class _Rollback(Exception):
    pass


def _find_dispatch_task():
    from webhooks_project.celery import app

    app.loader.import_default_modules()
    names = sorted(name for name in app.tasks if name.endswith("dispatch_due"))
    if not names:
        return None, sorted(
            name for name in app.tasks if not name.startswith("celery.")
        )
    return app.tasks[names[0]], names


def _explain(sql: str) -> str:
    from django.db import connection, transaction

    lines: list[str] = []
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
                lines = [row[0] for row in cursor.fetchall()]
            raise _Rollback
    except _Rollback:
        pass
    return "\n".join(lines)


def probe(passes: int) -> dict:
    import django

    django.setup()
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    task, names = _find_dispatch_task()
    if task is None:
        return {
            "error": "no Celery task whose name ends in dispatch_due",
            "tasks": names,
        }
    task()  # warm: imports, connection, prepared plans
    timings = []
    for _ in range(passes):
        start = time.perf_counter()
        task()
        timings.append((time.perf_counter() - start) * 1000)
    with CaptureQueriesContext(connection) as captured:
        task()
    queries = []
    for query in captured.captured_queries:
        sql = query["sql"]
        if "delivery_delivery" not in sql:
            continue
        verb = sql.lstrip().split(None, 1)[0].upper()
        plan = _explain(sql) if verb in ("SELECT", "UPDATE", "WITH", "DELETE") else ""
        queries.append({"sql": sql, "plan": plan})
    plans = [q["plan"] for q in queries if q["plan"]]
    seq_scan = any("Seq Scan on delivery_delivery" in plan for plan in plans)
    index_scan = (
        bool(plans)
        and not seq_scan
        and any(node in plan for plan in plans for node in _INDEX_NODES)
    )
    return {
        "task": task.name,
        "pass_ms": timings,
        "median_ms": statistics.median(timings),
        "queries": queries,
        "statements": len(captured.captured_queries),
        "index_scan": index_scan,
        "seq_scan": seq_scan,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--passes", type=int, default=5)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webhooks_project.settings")
    print(json.dumps(probe(args.passes)))


if __name__ == "__main__":
    main()
