"""The two reference figures of a run: the sink's own ceiling, the bare client's."""

import re
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench import payloads, procs
from bench.api import Api
from bench.payloads import delivery_request
from bench.sink_client import Sink
from bench.stack import ROOT

_ENV = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin"}


def _lua_string(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def sink_ceiling(
    sink: Sink, *, seconds: float, log: Path, connections: int = 64
) -> dict:
    """Requests/s the sink answers on one core, by wrk (or the in-house client)."""
    url = sink.url("/fast/ceiling")
    timeout = seconds + 30
    wrk = shutil.which("wrk")
    if wrk is None:
        result = procs.run_json(
            [
                sys.executable,
                "-m",
                "bench.loadgen",
                "--url",
                url,
                "--seconds",
                str(seconds),
                "--connections",
                str(connections),
            ],
            env=_ENV,
            cwd=ROOT,
            log=log,
            timeout=timeout,
        )
        result["tool"] = f"bench.loadgen, {connections} connections (a lower bound)"
        return result
    body, headers = delivery_request()
    script = ['wrk.method = "POST"', f"wrk.body = {_lua_string(body.decode())}"]
    script += [
        f"wrk.headers[{_lua_string(k)}] = {_lua_string(v)}" for k, v in headers.items()
    ]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write("\n".join(script) + "\n")
    try:
        process = procs.spawn(
            [
                wrk,
                "-t1",
                f"-c{connections}",
                f"-d{max(1, round(seconds))}s",
                "-s",
                handle.name,
                url,
            ],
            env=_ENV,
            cwd=ROOT,
            log=log,
            capture_stdout=True,
        )
        try:
            out, _ = process.communicate(timeout=timeout)
        finally:
            procs.stop(process, grace=1)
    finally:
        Path(handle.name).unlink(missing_ok=True)
    text = out.decode()
    match = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if not match:
        raise RuntimeError(f"wrk printed no Requests/sec:\n{text}")
    total = re.search(r"(\d+) requests in", text)
    return {
        "rate": float(match.group(1)),
        "requests": int(total.group(1)) if total else None,
        "seconds": seconds,
        "tool": f"wrk, 1 thread, {connections} connections",
    }


def bare_ceiling(sink: Sink, *, seconds: float, log: Path) -> dict:
    """POSTs/s of one process with a pooled requests.Session (trust_env=False)."""
    return procs.run_json(
        [
            sys.executable,
            "-m",
            "bench.bare",
            "--url",
            sink.url("/fast/bare"),
            "--seconds",
            str(seconds),
        ],
        env=_ENV,
        cwd=ROOT,
        log=log,
        timeout=seconds + 60,
    )


def publisher_ceiling(sink: Sink, *, threads: int, seconds: float) -> dict:
    """Requests/s the bench's publishing threads reach against the sink, which
    answers at once: shows the publisher is not what a scenario measures."""
    api = Api(sink.url(""), "not-a-key")
    counts = [0] * threads
    end = time.monotonic() + seconds

    def publish(slot: int) -> None:
        while time.monotonic() < end:
            api.publish(payloads.event(seq=counts[slot]))
            counts[slot] += 1

    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(publish, range(threads)))
    elapsed = time.monotonic() - start
    return {
        "requests": sum(counts),
        "seconds": elapsed,
        "rate": sum(counts) / elapsed,
        "threads": threads,
    }
