"""``polydiff serve`` against fresh CLI calls, in one run, on a real uvicorn server on loopback:

1. warm latency (submit -> done) of an ``image`` n=4 batch and a 2 s ``audio`` clip, beside the
   wall time of the same ``polydiff generate`` command in a fresh process;
2. throughput of 16 concurrent clients of ``image`` n=1 (micro-batching on) against 16
   sequential CLI calls, with p50/p99 latency;
3. a load test: N jobs from 16 clients, some cancelled, with the server killed (SIGKILL) and
   restarted once in the middle: every accepted job must end done or cancelled, results are
   compared byte for byte with ``polydiff.generate`` of the same request alone, and the
   server's resident memory is sampled throughout.

    .venv/bin/python benchmarks/serve.py [--quick] [--out benchmarks/results]
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from common import RESULTS, load_note, machine

POLYDIFF = str(Path(sys.executable).with_name("polydiff"))
IMAGE = {"modality": "image", "prompt": "a red circle", "n": 4}
CROWD_POLL = 0.1  # concurrent clients poll at 10 Hz: 16 clients at 100 Hz would tax the server's one core
AUDIO = {"modality": "audio", "prompt": "a plucked string playing an A minor chord", "options": {"seconds": 2}}
CLI = {"image": ["generate", "image", "a red circle", "-n", "4"],
       "audio": ["generate", "audio", "a plucked string playing an A minor chord", "--seconds", "2"]}
# the same requests on the few-step students (4 unguided steps, benchmarks/few_step_image.py)
FEW_STEP = {"image": "shapes-turbo", "audio": "notes-turbo"}


def latency_requests() -> list[tuple[dict, list[str]]]:
    """(body, CLI argv) of each warm-latency row: the defaults, then each installed student."""
    import polydiff

    rows = [(IMAGE, CLI["image"]), (AUDIO, CLI["audio"])]
    for body, argv in list(rows):
        backend = FEW_STEP[body["modality"]]
        if backend in polydiff.components().backends:
            rows.append(({**body, "backend": backend}, [*argv, "--backend", backend]))
    return rows


class Server:
    def __init__(self, data: Path) -> None:
        self.data, self.proc = data, None
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen([POLYDIFF, "serve", "--port", str(self.port), "--data", str(self.data),
                                      "--max-queue", "2000"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                call(self.url, "GET", "/healthz")
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("the server did not start")

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")


def call(url: str, method: str, path: str, body: dict | None = None, timeout: float = 60):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url + path, data=data, method=method,
                                     headers={"content-type": "application/json"} if data else {})
    with urllib.request.urlopen(request, timeout=timeout) as reply:
        raw = reply.read()
        return json.loads(raw) if reply.headers.get("content-type", "").startswith("application/json") else raw


def run_job(url: str, body: dict, poll: float = 0.01) -> tuple[dict, float]:
    started = time.perf_counter()
    job_id = call(url, "POST", "/v1/jobs", body)["id"]
    while True:
        job = call(url, "GET", f"/v1/jobs/{job_id}")
        if job["status"] in ("done", "failed", "cancelled"):
            return job, time.perf_counter() - started
        time.sleep(poll)


def cli_seconds(argv: list[str], out: str, seed: int) -> float:
    started = time.perf_counter()
    subprocess.run([POLYDIFF, *argv, "--seed", str(seed), "--quiet", "-o", out], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def pct(values, q: float) -> float:
    """The q-quantile, interpolated between neighbours (q = 0.5 is the median)."""
    values = sorted(values)
    k = q * (len(values) - 1)
    lo = int(k)
    hi = min(lo + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def latency(server: Server, repeats: int, tmp: str) -> list[str]:
    rows = ["| request | server warm p50 (s) | server runs (s) | fresh CLI median (s) | ratio CLI / server | target |",
            "|---|---|---|---|---|---|"]
    for k, (body, argv) in enumerate(latency_requests()):
        run_job(server.url, {**body, "seed": 999})                    # warm-up: models load once
        warm = [run_job(server.url, {**body, "seed": i})[1] for i in range(repeats)]
        cli = [cli_seconds(argv, f"{tmp}/cli-{k}-{i}", i) for i in range(max(1, repeats // 2))]
        p50, median = statistics.median(warm), statistics.median(cli)
        shown = " ".join(a if " " not in a else f'"{a}"' for a in argv)
        rows.append(f"| `{shown}` | {p50:.3f} | {', '.join(f'{t:.3f}' for t in warm)} | {median:.2f} | "
                    f"{median / p50:.1f}x | p50 <= 0.5 s: {'yes' if p50 <= 0.5 else '**no**'} |")
        print(rows[-1], flush=True)
    return rows


def throughput(server: Server, clients: int, tmp: str) -> list[str]:
    latencies: list[float] = []
    lock = threading.Lock()

    def client(k: int) -> None:
        job, seconds = run_job(server.url, {"modality": "image", "prompt": "a blue square", "seed": 5000 + k},
                               poll=CROWD_POLL)
        assert job["status"] == "done", job
        with lock:
            latencies.append(seconds)

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    served = time.perf_counter() - started
    sequential = sum(cli_seconds(["generate", "image", "a blue square"], f"{tmp}/seq-{k}", 5000 + k)
                     for k in range(clients))
    return ["| way | wall (s) | images/s | p50 latency (s) | p99 latency (s) |", "|---|---|---|---|---|",
            f"| server, {clients} concurrent clients | {served:.2f} | {clients / served:.2f} | "
            f"{pct(latencies, 0.5):.2f} | {pct(latencies, 0.99):.2f} |",
            f"| {clients} sequential CLI calls | {sequential:.2f} | {clients / sequential:.2f} | "
            f"{sequential / clients:.2f} | - |",
            "", f"Throughput ratio server / sequential CLI: **{sequential / served:.1f}x** (target >= 3x: "
            f"{'met' if sequential / served >= 3 else '**missed**'})."]


def load_test(server: Server, jobs: int, clients: int, steps: int) -> list[str]:
    import polydiff

    accepted: dict[str, dict] = {}
    refused, cancelled_asked = [], set()
    lock = threading.Lock()
    rss = [server.rss_mb()]
    stop_sampling = threading.Event()

    def sample_memory() -> None:
        while not stop_sampling.wait(0.5):
            try:
                rss.append(server.rss_mb())
            except OSError:
                pass  # between the kill and the restart

    def client(k: int) -> None:
        for j in range(k, jobs, clients):
            body = {"modality": "image", "prompt": ["a red circle", "a green square", "a blue triangle"][j % 3],
                    "steps": steps, "seed": 10_000 + j}
            for _ in range(200):  # retried while the server is down; a lost reply may leave a duplicate
                try:
                    job_id = call(server.url, "POST", "/v1/jobs", body, timeout=30)["id"]
                    break
                except (OSError, urllib.error.URLError, http.client.HTTPException) as exc:  # a reply cut by the kill
                    if isinstance(exc, urllib.error.HTTPError) and exc.code < 500 and exc.code != 429:
                        refused.append((j, exc.code))
                        return
                    time.sleep(0.2)
            else:
                refused.append((j, "unreachable"))
                continue
            with lock:
                accepted[job_id] = body
            if j % 25 == 7:
                try:
                    call(server.url, "DELETE", f"/v1/jobs/{job_id}")
                    cancelled_asked.add(job_id)
                except (OSError, http.client.HTTPException):
                    pass

    sampler = threading.Thread(target=sample_memory, daemon=True)
    sampler.start()
    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    while len(accepted) < jobs // 2:
        time.sleep(0.05)
    server.kill()
    killed_at = len(accepted)
    server.start()
    for t in threads:
        t.join()
    final: dict[str, dict] = {}
    deadline = time.monotonic() + 1800
    while len(final) < len(accepted) and time.monotonic() < deadline:
        for job_id in [i for i in accepted if i not in final]:
            job = call(server.url, "GET", f"/v1/jobs/{job_id}")
            if job["status"] in ("done", "failed", "cancelled"):
                final[job_id] = job
        time.sleep(0.2)
    seconds = time.perf_counter() - started
    stop_sampling.set()
    statuses = [j["status"] for j in final.values()]
    lost = len(accepted) - len(final)
    identical, compared, worst = 0, 0, 0
    done = [(i, j) for i, j in final.items() if j["status"] == "done"]
    for job_id, _ in done:
        served = call(server.url, "GET", f"/v1/jobs/{job_id}/files/generate-000.png")
        alone = polydiff.generate(**accepted[job_id])
        with tempfile.TemporaryDirectory() as tmp:
            mine = (Path(alone.save(tmp)[0])).read_bytes()
        compared += 1
        identical += served == mine
        if served != mine:
            import io

            import numpy as np
            from PIL import Image

            a = np.asarray(Image.open(io.BytesIO(served)), dtype=int)
            b = np.asarray(Image.open(io.BytesIO(mine)), dtype=int)
            worst = max(worst, int(np.abs(a - b).max()))
    return [f"{jobs} jobs (`image` n=1, {steps} steps, seeds 10000+j) from {clients} clients, every 25th cancelled "
            f"by its client; the server was SIGKILLed after {killed_at} jobs had been accepted and restarted at once. "
            f"Wall time {seconds:.1f} s.", "",
            "| accepted | refused | done | cancelled | failed | lost | byte-identical to running alone | "
            "server RSS at start / max / end (MB) |", "|---|---|---|---|---|---|---|---|",
            f"| {len(accepted)} | {len(refused)} | {statuses.count('done')} | {statuses.count('cancelled')} | "
            f"{statuses.count('failed')} | {lost} | {identical}/{compared}"
            f"{f' (others differ by at most {worst}/255)' if identical < compared else ''} | "
            f"{rss[0]:.0f} / {max(rss):.0f} / {rss[-1]:.0f} |",
            "", f"Accepted jobs above {jobs} are submissions whose 202 was lost in the kill and were sent again: "
            "each is a job of its own and is counted."]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke test: few repeats, 40 load-test jobs")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    repeats, clients, jobs = (2, 4, 40) if args.quick else (7, 16, 500)
    lines = ["# polydiff serve: warm latency, throughput and a load test with a restart", "",
             f"Produced by `benchmarks/serve.py{' --quick' if args.quick else ''}` on {machine()}; "
             f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}; {load_note()}. One uvicorn server on "
             "loopback with its default batching (`polydiff serve`: --batch-size 8, --batch-wait-ms 50); latency is "
             f"submit -> done as a client polling every 10 ms (alone) or {CROWD_POLL * 1000:.0f} ms (among 16) sees "
             "it; default steps unless stated. Micro-batching calls the network per job inside the shared sampling "
             "run (core/src/polydiff/serve/batching.py); the load test below says how many results came out "
             "byte-identical to running each alone.", ""]
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(Path(tmp) / "serve")
        server.start()
        try:
            lines += ["## Warm latency", "", *latency(server, repeats, tmp), ""]
            lines += ["## Throughput, `image` n=1", "", *throughput(server, clients, tmp), ""]
            lines += ["## Load test", "", *load_test(server, jobs, clients, steps=4), ""]
        finally:
            server.stop()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "serve.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"saved {args.out / 'serve.md'}")


if __name__ == "__main__":
    main()
