"""``polydiff serve``'s HTTP API through FastAPI's TestClient: every endpoint, the bad inputs of
the issue, cancellation, durability across a restart, micro-batching equal to running alone."""
from __future__ import annotations

import base64
import io
import json
import time

import polydiff
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
from fastapi.testclient import TestClient  # noqa: E402
from polydiff.serve.app import Settings, create_app  # noqa: E402
from polydiff.serve.store import JobStore  # noqa: E402

POINTS = {"modality": "points2d", "prompt": "north", "n": 2, "steps": 3}


@pytest.fixture
def client(tmp_path, polydiff_single_thread):
    with TestClient(create_app(data=tmp_path, batch_wait_s=0.3)) as c:
        yield c


def wait(client, job_id, timeout=60.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}").json()
        if job["status"] in ("done", "failed", "cancelled"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish: {job}")


def _job_folders(data) -> list:
    return sorted((data / "jobs").iterdir()) if (data / "jobs").exists() else []


def _png(array) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def test_health_modalities_and_openapi(client):
    assert client.get("/healthz").json()["ok"] is True
    mods = {m["name"]: m for m in client.get("/v1/modalities").json()["modalities"]}
    inpaint = {t["name"]: t for t in mods["points2d"]["tasks"]}["inpaint"]
    assert "x" in inpaint["options_schema"]["properties"]
    assert "/v1/jobs" in client.get("/openapi.json").json()["paths"]


@pytest.mark.parametrize("base, name", [(POINTS, "points.csv"),
                                         ({"modality": "image", "prompt": "a red circle", "n": 1, "steps": 2},
                                          "generate-000.png")])
def test_micro_batched_jobs_equal_each_run_alone(client, tmp_path, base, name):
    # image: n=1 is where one network call over the whole batch would change the bits (see batching.py)
    ids = [client.post("/v1/jobs", json={**base, "seed": 40 + 7 * k}).json()["id"] for k in range(3)]
    jobs = [wait(client, i) for i in ids]
    assert [j["status"] for j in jobs] == ["done"] * 3
    assert max(client.app.state.workers.batches) >= 2 * base["n"], "compatible jobs were not sampled together"
    for k, job in enumerate(jobs):
        alone = polydiff.generate(**{**base, "seed": 40 + 7 * k})
        files = {f["name"]: f for f in job["files"]}
        written = [p for p in alone.save(tmp_path / f"alone-{k}") if p.name == name][0]
        served = client.get(files[name]["url"])
        assert served.headers["content-type"].split(";")[0] == {".csv": "text/csv", ".png": "image/png"}[written.suffix]
        assert served.content == written.read_bytes()
        assert job["progress"] == {"step": base["steps"], "steps": base["steps"]}


def test_sample_together_makes_one_sample_call_bit_identical_to_each_alone(polydiff_single_thread, monkeypatch):
    import polydiff.loop
    import torch
    from polydiff.request import GenerateRequest
    from polydiff.serve import batching

    calls = []
    real = polydiff.loop.sample
    monkeypatch.setattr(polydiff.loop, "sample", lambda *a, **k: calls.append(a[1]) or real(*a, **k))
    requests = [GenerateRequest.build(modality="image", prompt=p, n=n, steps=2, seed=s)
                for p, n, s in (("a red circle", 1, 3), ("a blue square", 2, 4), ("a red circle", 1, 11))]
    together = batching.sample_together(requests)
    assert calls == [(4, 3, 32, 32)]
    for r, result in zip(requests, together):
        alone = polydiff.generate("image", prompt=r.prompt, n=r.n, steps=2, seed=r.seed)
        assert torch.equal(result.samples, alone.samples)
        assert result.metadata["request"]["seed"] == r.seed


def test_plans_with_constraints_are_not_batched(polydiff_single_thread):
    from polydiff.request import GenerateRequest
    from polydiff.serve.batching import sample_together

    requests = [GenerateRequest.build(**POINTS, task="inpaint", options={"x": 1.0}, seed=s) for s in (1, 2)]
    assert sample_together(requests) is None


def test_a_seed_is_chosen_and_recorded_when_none_is_given(client):
    job = wait(client, client.post("/v1/jobs", json=POINTS).json()["id"])
    meta = client.get(f"/v1/jobs/{job['id']}/files/metadata.json").json()
    assert isinstance(job["request"]["seed"], int) and meta["request"]["seed"] == job["request"]["seed"]


def test_image_inpaint_from_uploads_multipart_and_base64(client):
    import numpy as np

    init = np.zeros((32, 32, 3), np.uint8)
    init[8:24, 4:16, 0] = 255
    mask = np.zeros((32, 32), np.uint8)
    mask[:, 16:] = 255
    request = {"modality": "image", "task": "inpaint", "prompt": "a red circle", "steps": 2, "seed": 3}
    a = client.post("/v1/jobs", data={"request": json.dumps(request)},
                    files={"init": ("photo.png", _png(init), "image/png"), "mask": ("m.png", _png(mask), "image/png")})
    b = client.post("/v1/jobs", json={**request, "inputs": {
        "init": {"name": "photo.png", "data": base64.b64encode(_png(init)).decode()},
        "mask": base64.b64encode(_png(mask)).decode()}})
    done = [wait(client, r.json()["id"]) for r in (a, b)]
    assert [d["status"] for d in done] == ["done", "done"], done
    pngs = [client.get(f"/v1/jobs/{d['id']}/files/inpaint-000.png") for d in done]
    assert pngs[0].headers["content-type"] == "image/png" and pngs[0].content == pngs[1].content


@pytest.mark.parametrize("body, status, words", [
    (b"{not json", 400, "body: not valid JSON"),
    (b"[1, 2]", 400, "expected a JSON object"),
    (json.dumps({"modality": "nope"}).encode(), 400, "unknown modality 'nope'"),
    (json.dumps({**POINTS, "steps": -1}).encode(), 400, "steps:"),
    (json.dumps({**POINTS, "colour": "red"}).encode(), 400, "colour: not a request field"),
    (json.dumps({**POINTS, "options": {"x": 1.0}}).encode(), 400, "x: not an option"),
    (json.dumps({**POINTS, "task": "inpaint", "options": {"x": 1.0}, "init": "/etc/passwd"}).encode(), 400,
     "init:"),
    (json.dumps({**POINTS, "model": "/etc"}).encode(), 400, "model: the server runs only models its operator named"),
    (json.dumps({**POINTS, "sampler": "ddim", "sampler_options": {"eta": "x"}}).encode(), 400,
     "sampler_options: eta must be a number"),
])
def test_bad_requests_get_one_line_and_leave_nothing(client, tmp_path, body, status, words):
    reply = client.post("/v1/jobs", content=body, headers={"content-type": "application/json"})
    assert reply.status_code == status and words in reply.json()["detail"], reply.json()
    assert "\n" not in reply.json()["detail"]
    assert client.get("/v1/queue").json() == {"queued": [], "running": []}
    assert _job_folders(tmp_path) == []


def test_a_non_image_upload_is_refused_before_it_is_queued(client, tmp_path):
    request = {"modality": "image", "task": "img2img", "prompt": "a red circle", "steps": 2}
    reply = client.post("/v1/jobs", data={"request": json.dumps(request)},
                        files={"init": ("photo.png", b"this is not a picture", "image/png")})
    assert reply.status_code == 400 and reply.json()["detail"].startswith("init: cannot read"), reply.json()
    assert _job_folders(tmp_path) == []


def test_unknown_jobs_and_file_names_outside_the_results(client):
    assert client.get("/v1/jobs/0123abc").status_code == 404
    assert client.delete("/v1/jobs/" + "0" * 32).json()["detail"].endswith("no such job")
    job = wait(client, client.post("/v1/jobs", json=POINTS).json()["id"])
    for name in ("../../jobs.sqlite3", "..%2F..%2Fjobs.sqlite3", "/etc/passwd", "inputs/x"):
        assert client.get(f"/v1/jobs/{job['id']}/files/{name}").status_code == 404


def test_a_too_big_upload_is_413_and_leaves_nothing(tmp_path, polydiff_single_thread):
    with TestClient(create_app(data=tmp_path, max_body_bytes=4096, run_workers=False)) as c:
        request = {"modality": "image", "task": "img2img", "prompt": "a red circle", "steps": 2}
        reply = c.post("/v1/jobs", data={"request": json.dumps(request)},
                       files={"init": ("big.png", b"\0" * 10_000, "image/png")})
        assert reply.status_code == 413 and reply.json()["detail"].startswith("body: over the limit")
        assert c.get("/v1/queue").json() == {"queued": [], "running": []}
    assert _job_folders(tmp_path) == []


def test_body_limit_queue_limit_and_token(tmp_path, polydiff_single_thread):
    settings = Settings(tmp_path, max_body_bytes=2000, max_queue=1, run_workers=False, token="s3cret")
    with TestClient(create_app(settings)) as c:
        assert c.get("/v1/queue").status_code == 401
        auth = {"Authorization": "Bearer s3cret"}
        big = c.post("/v1/jobs", json={**POINTS, "prompt": "x" * 5000}, headers=auth)
        assert big.status_code == 413 and "over the limit" in big.json()["detail"]
        assert c.post("/v1/jobs", json=POINTS, headers=auth).status_code == 202
        full = c.post("/v1/jobs", json=POINTS, headers=auth)
        assert full.status_code == 429 and full.json()["detail"].startswith("queue full")
        assert c.get("/healthz").status_code == 200


def test_cancel_a_queued_job_at_once_and_a_running_one_at_its_next_step(client):
    slow = client.post("/v1/jobs", json={"modality": "image", "prompt": "a red circle", "steps": 400}).json()["id"]
    queued = client.post("/v1/jobs", json={**POINTS, "task": "inpaint", "options": {"x": 1.0}}).json()["id"]
    deadline = time.monotonic() + 60
    while client.get(f"/v1/jobs/{slow}").json()["progress"]["step"] < 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert client.delete(f"/v1/jobs/{queued}").json() == {"id": queued, "status": "cancelled"}
    client.delete(f"/v1/jobs/{slow}")
    job = wait(client, slow)
    assert job["status"] == "cancelled" and job["progress"]["step"] < 400 and job["files"] == []
    assert client.get(f"/v1/jobs/{queued}").json()["status"] == "cancelled"


def test_events_stream_progress_until_the_job_ends(client):
    job_id = client.post("/v1/jobs", json={**POINTS, "steps": 6}).json()["id"]
    events = []
    with client.stream("GET", f"/v1/jobs/{job_id}/events") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        for line in stream.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
    assert events[-1]["status"] == "done" and events[-1]["files"]
    assert len(events) >= 2 and events[0]["status"] in ("queued", "running")


def test_jobs_survive_a_restart(tmp_path, polydiff_single_thread):
    with TestClient(create_app(data=tmp_path, run_workers=False)) as c:   # accepted, never run
        waiting = c.post("/v1/jobs", json={**POINTS, "seed": 1}).json()["id"]
        crashed = c.post("/v1/jobs", json={**POINTS, "seed": 2}).json()["id"]
    store = JobStore(tmp_path / "jobs.sqlite3")
    store.claim([crashed])                      # as if the server died while running it
    store.close()
    with TestClient(create_app(data=tmp_path)) as c:
        assert [wait(c, i)["status"] for i in (waiting, crashed)] == ["done", "done"]
        first = c.get(f"/v1/jobs/{waiting}/files/points.csv").content
    with TestClient(create_app(data=tmp_path, run_workers=False)) as c:   # results still served
        assert c.get(f"/v1/jobs/{waiting}/files/points.csv").content == first
        assert c.get(f"/v1/jobs/{crashed}").json()["status"] == "done"


def test_a_job_running_at_two_crashes_is_failed_clearly(tmp_path):
    store = JobStore(tmp_path / "jobs.sqlite3")
    job_id = store.add({**POINTS, "seed": 0})
    for _ in range(2):
        store.claim([job_id])
        store.recover()
    job = store.get(job_id)
    assert job["status"] == "failed" and "interrupted" in job["error"]


def test_jobs_that_cannot_share_a_run_run_alone_each_to_its_own_end(client):
    inpaint = {**POINTS, "task": "inpaint", "options": {"x": 1.0}}   # constraints: never batched
    ids = [client.post("/v1/jobs", json={**inpaint, "seed": s}).json()["id"] for s in (1, 2)]
    assert [wait(client, i)["status"] for i in ids] == ["done", "done"]
    assert client.app.state.workers.batches == [2, 2]
