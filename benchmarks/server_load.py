"""Requests/s of the HTTP server under a bounded local load, against calling the model in-process.

One model folder (the tiny preset's shape, random weights, a BPE on real GO text; its
position table widened to ``--context``, 2,048 as OPT-1.3B's) is saved once and used by both sides:

1. **baseline, in-process**: ``Model.classify`` on each input, one after another, in this
   process: the model's own time, no HTTP;
2. **server, /classify**: ``python -m instructprotein.serve`` (the same code as
   ``instructprotein serve``) in a subprocess on 127.0.0.1, ``--requests`` POSTs from
   ``--concurrency`` client threads, each on its own keep-alive connection: the same inputs
   (DeepLoc test sequences from the packaged set, the paper's location question, its 10
   options, rule ``sum``), so the ratio to (1) is the cost of serving: HTTP, JSON, validation,
   the hop to the model's worker thread;
3. **server, /health**: the same load on an endpoint that never touches the model: what
   the HTTP layer alone can do here. During phase 2 one more client also polls /health
   every 50 ms: its latency shows whether the API stays responsive while the model is busy.

4. **server, /classify with cached retrieval** (with ``--kg``): the server loaded with a
   knowledge graph, so every prompt carries its homologs' evidence; one pass over the
   distinct sequences first (each is searched once with MMseqs2 and its hits cached), then
   the measured load over the same sequences: the cost of retrieval once its search is
   cached, p99 latency and every non-200 status counted (valid requests must get none).

The model runs on one worker thread (it is not thread-safe for generation), so with
concurrency C a /classify request waits for up to C-1 others: its latency is about C times
the model's, while requests/s stays near the model's rate. The load is bounded: at most
``--requests`` per phase and ``--max-seconds`` in all; loopback only.

    python benchmarks/server_load.py [--requests 300] [--concurrency 8] [--threads 1] [--kg WORKDIR/kg.sqlite]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

HOST = "127.0.0.1"


def percentiles(values: list[float]) -> str:
    if not values:
        return "no samples"
    v = sorted(values)

    def q(p: float) -> float:  # nearest rank
        return v[min(len(v) - 1, max(0, round(p / 100 * len(v) + 0.5) - 1))]

    return (
        f"p50 {1000 * q(50):7.1f} ms  p90 {1000 * q(90):7.1f} ms  p99 {1000 * q(99):7.1f} ms  "
        f"max {1000 * v[-1]:7.1f} ms"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def load(
    port: int, jobs: list[tuple[str, str, bytes | None]], concurrency: int, deadline: float
) -> tuple[float, list[float], list[tuple[int, Any]]]:
    """Send ``jobs`` (method, path, body) from ``concurrency`` threads, one keep-alive connection each.

    Returns (wall seconds, per-request latencies, (status, parsed body) in job order). Jobs
    not started by ``deadline`` are skipped (status 0)."""
    results: list[tuple[int, Any]] = [(0, None)] * len(jobs)
    latencies: list[float] = []
    lock = threading.Lock()
    next_job = iter(range(len(jobs)))

    def worker() -> None:
        conn = http.client.HTTPConnection(HOST, port, timeout=120)
        try:
            while time.monotonic() < deadline:
                with lock:
                    i = next(next_job, None)
                if i is None:
                    return
                method, path, body = jobs[i]
                headers = {"Content-Type": "application/json"} if body is not None else {}
                t = time.perf_counter()
                try:
                    conn.request(method, path, body=body, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                    status = resp.status
                except (OSError, http.client.HTTPException) as exc:
                    conn.close()
                    conn = http.client.HTTPConnection(HOST, port, timeout=120)
                    status, data = -1, str(exc).encode()
                elapsed = time.perf_counter() - t
                try:
                    parsed = json.loads(data)
                except ValueError:
                    parsed = data[:200]
                with lock:
                    latencies.append(elapsed)
                    results[i] = (status, parsed)
        finally:
            conn.close()

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    t = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return time.perf_counter() - t, latencies, results


def probe_health(port: int, latencies: list[float], stop: threading.Event, every: float = 0.05) -> None:
    """GET /health every ``every`` seconds until ``stop``: does the API answer while the model is busy?"""
    conn = http.client.HTTPConnection(HOST, port, timeout=60)
    try:
        while not stop.wait(every):
            t = time.perf_counter()
            conn.request("GET", "/health")
            conn.getresponse().read()
            latencies.append(time.perf_counter() - t)
    finally:
        conn.close()


def start_server(model_dir: Path, port: int, threads: int, log: Path, kg: Path | None = None) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    cmd = [
        sys.executable,
        "-m",
        "instructprotein.serve",
        "--model",
        str(model_dir),
        "--port",
        str(port),
        "--host",
        HOST,
        "--device",
        "cpu",
        "--log-level",
        "warning",
    ]
    if kg is not None:
        cmd += ["--kg", str(kg)]
    proc = subprocess.Popen(cmd, stdout=log.open("w"), stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 120
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited while starting:\n{log.read_text()}")
        try:
            conn = http.client.HTTPConnection(HOST, port, timeout=5)
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                conn.close()
                return proc
        except OSError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            raise SystemExit("the server did not answer /health within 120 s")
        time.sleep(0.2)


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=300, help="requests per server phase (and baseline calls)")
    parser.add_argument("--concurrency", type=int, default=8, help="client threads, one connection each")
    parser.add_argument("--threads", type=int, default=1, help="torch threads, in-process and in the server")
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--context", type=int, default=2048, help="model positions (OPT's 2,048 by default)")
    parser.add_argument("--sequences", type=int, default=100, help="distinct DeepLoc test sequences, cycled")
    parser.add_argument("--max-seconds", type=float, default=600, help="stop sending after this long, in all")
    parser.add_argument(
        "--kg",
        type=Path,
        default=None,
        help="knowledge graph: adds the /classify phase with retrieval (searches cached after one pass)",
    )
    args = parser.parse_args()
    if args.kg is not None and not args.kg.is_file():
        raise SystemExit(f"--kg {args.kg}: no such file")
    if not (1 <= args.requests <= 5000 and 1 <= args.concurrency <= 64):
        raise SystemExit("--requests must be 1..5000 and --concurrency 1..64 (a bounded local load)")
    deadline = time.monotonic() + args.max_seconds

    import torch

    from _models import random_model
    from instructprotein.formats.benchmarks import read_labelled_sequences
    from instructprotein.infer.inputs import clean_sequence
    from instructprotein.infer.model import Model
    from instructprotein.infer.prompts import LOCATION_LABELS, LOCATION_PREFIX, LOCATION_QUESTION
    from instructprotein.model.factory import save_model
    from instructprotein.sources.packaged import packaged_benchmark

    print("command: python " + " ".join(shlex.quote(a) for a in sys.argv))
    torch.set_num_threads(args.threads)
    records = read_labelled_sequences(packaged_benchmark("deeploc_subcellular_test"))[: args.sequences]
    sequences = [clean_sequence(r.sequence) for r in records]
    inputs = [sequences[i % len(sequences)] for i in range(args.requests)]
    options = list(LOCATION_LABELS)

    with tempfile.TemporaryDirectory(prefix="ip-server-load-") as tmp:
        model, tok, preset = random_model(args.preset, {"model.context_length": args.context})
        model_dir = save_model(model, tok, Path(tmp) / "model")
        del model
        m = Model.load(model_dir, device="cpu")
        print(
            f"model: {preset.name} shape (hidden {preset.model.hidden_size}, {preset.model.num_layers} layers), "
            f"random weights, {args.context} positions; cpu, torch threads {args.threads} (server too); "
            f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}, Python {platform.python_version()}"
        )
        lengths = [min(len(s), 1000) for s in sequences]
        print(
            f"inputs: {args.requests} /classify requests over {len(sequences)} DeepLoc test sequences "
            f"(residues read: mean {sum(lengths) / len(lengths):.0f}, max {max(lengths)}), the location question, "
            f"{len(options)} options, rule sum; concurrency {args.concurrency}"
        )

        # 1. baseline: the model in this process, one call after another
        for s in inputs[:3]:  # warm-up
            m.classify(s, LOCATION_QUESTION, options, prefix=LOCATION_PREFIX)
        base_lat: list[float] = []
        base_answers = []
        t0 = time.perf_counter()
        for s in inputs:
            dt, c = timed(lambda s=s: m.classify(s, LOCATION_QUESTION, options, prefix=LOCATION_PREFIX))  # noqa: F821 (called before the del below)
            base_lat.append(dt)
            base_answers.append(c.answer)
        base_wall = time.perf_counter() - t0
        base_rate = len(inputs) / base_wall
        del m

        # 2 and 3. the server in its own process, loaded from outside
        port = free_port()
        proc = start_server(model_dir, port, args.threads, Path(tmp) / "server.log")
        try:
            bodies = [
                json.dumps(
                    {"sequence": s, "question": LOCATION_QUESTION, "options": options, "prefix": LOCATION_PREFIX}
                ).encode()
                for s in inputs
            ]
            load(
                port, [("POST", "/classify", b) for b in bodies[: args.concurrency]], args.concurrency, deadline
            )  # warm-up
            probe_lat: list[float] = []  # /health from one more client while /classify keeps the model busy
            stop = threading.Event()
            probe = threading.Thread(target=probe_health, args=(port, probe_lat, stop))
            probe.start()
            try:
                cls_wall, cls_lat, cls_res = load(
                    port, [("POST", "/classify", b) for b in bodies], args.concurrency, deadline
                )
            finally:
                stop.set()
                probe.join()
            health_wall, health_lat, health_res = load(
                port, [("GET", "/health", None)] * args.requests, args.concurrency, deadline
            )
        finally:
            stop_server(proc)

        # 4. with a knowledge graph: retrieval, its searches cached by one first pass
        ret_res: list[tuple[int, Any]] = []
        ret_lat: list[float] = []
        ret_wall = first_wall = 0.0
        if args.kg is not None:
            port = free_port()
            proc = start_server(model_dir, port, args.threads, Path(tmp) / "server-kg.log", kg=args.kg)
            try:
                distinct = list(dict.fromkeys(bodies))
                first_wall, _, first_res = load(
                    port, [("POST", "/classify", b) for b in distinct], args.concurrency, deadline
                )
                ret_wall, ret_lat, ret_res = load(
                    port, [("POST", "/classify", b) for b in bodies], args.concurrency, deadline
                )
                ret_res = first_res + ret_res
            finally:
                stop_server(proc)

    cls_ok = sum(1 for s, _ in cls_res if s == 200)
    health_ok = sum(1 for s, _ in health_res if s == 200)
    cls_rate = cls_ok / cls_wall
    health_rate = health_ok / health_wall
    agree = sum(1 for (s, body), want in zip(cls_res, base_answers) if s == 200 and body["answer"] == want)
    other = sorted({s for s, _ in cls_res + health_res if s != 200})
    print()
    print(
        f"baseline, Model.classify in-process, sequential: {len(inputs):4d} calls in {base_wall:6.2f} s  "
        f"{base_rate:7.1f} calls/s   {percentiles(base_lat)}"
    )
    print(
        f"server POST /classify, concurrency {args.concurrency:2d}:        {cls_ok:4d} ok   in {cls_wall:6.2f} s  "
        f"{cls_rate:7.1f} req/s     {percentiles(cls_lat)}"
    )
    print(
        f"server GET /health, concurrency {args.concurrency:2d}:           {health_ok:4d} ok   in {health_wall:6.2f} s  "
        f"{health_rate:7.1f} req/s     {percentiles(health_lat)}"
    )
    print(
        f"  /health from one more client during the /classify load: {len(probe_lat):4d} probes   "
        f"{percentiles(probe_lat)}"
    )
    print(
        f"ratio server /classify req/s to in-process calls/s: {cls_rate / base_rate:.2f} "
        f"(serving costs {100 * (1 - cls_rate / base_rate):.0f} % of the throughput)"
    )
    print(f"answers agree with in-process: {agree}/{len(inputs)}; non-200 statuses: {other if other else 'none'}")
    if args.kg is not None:
        ok = [s for s, _ in ret_res if s == 200]
        bad: dict[int, int] = {}
        for s, _body in ret_res:
            if s != 200:
                bad[s] = bad.get(s, 0) + 1
        measured = len(ret_lat)
        print(
            f"server POST /classify with retrieval ({args.kg.name}), searches cached: {measured:4d} requests in "
            f"{ret_wall:6.2f} s  {measured / ret_wall if ret_wall else 0:7.1f} req/s     {percentiles(ret_lat)}"
        )
        print(
            f"  first pass (each distinct sequence searched once): {first_wall:6.2f} s; "
            f"{len(ok)}/{len(ret_res)} answered 200; 4xx/5xx: {bad if bad else 'none'}"
        )
        for s, body in ret_res:
            if s != 200:
                print(f"  e.g. {s}: {body.get('error') if isinstance(body, dict) else body}")
                break


if __name__ == "__main__":
    main()
