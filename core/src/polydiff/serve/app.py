"""The HTTP API (FastAPI; imported only by ``polydiff serve``): jobs in, status and files out, the page at ``/``.

A request is validated by the same ``GenerateRequest`` and task plan as the Python API and the
CLI before it is accepted, so a bad field is a 4xx naming it, never a failed job later. The
server reads and writes only inside its data folder, and names result files itself.
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import json
import random
import re
import shutil
import uuid
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse

from ..contract import INPUTS
from ..errors import PolydiffError, one_line
from .jobs import REQUEST_FIELDS, request_fields
from .store import FINAL, JobStore
from .worker import Workers

STATIC = Path(__file__).with_name("static")
_SUFFIX = re.compile(r"^(\.[A-Za-z0-9]{1,5}){1,2}$")  # .png, .wav, .nii.gz: kept so readers know the format
_JOB_ID = re.compile(r"^[0-9a-f]{32}$")


class Settings:
    def __init__(self, data="out/serve", *, token: str | None = None, max_queue: int = 1000,
                 max_body_bytes: int = 64 * 2**20, batch_size: int = 8, batch_wait_s: float = 0.05,
                 workers: int = 1, run_workers: bool = True) -> None:
        self.data = Path(data).resolve()
        self.token, self.max_queue, self.max_body_bytes = token, max_queue, max_body_bytes
        self.batch_size, self.batch_wait_s, self.workers, self.run_workers = batch_size, batch_wait_s, workers, run_workers


def create_app(settings: Settings | None = None, **kwargs) -> FastAPI:
    """The FastAPI application over ``settings`` (or ``Settings(**kwargs)``)."""
    from .. import __version__

    settings = settings or Settings(**kwargs)

    @asynccontextmanager
    async def lifespan(app):
        settings.data.mkdir(parents=True, exist_ok=True)
        store = JobStore(settings.data / "jobs.sqlite3")
        store.recover()
        workers = Workers(store, settings.data, count=settings.workers, batch_size=settings.batch_size,
                          batch_wait_s=settings.batch_wait_s)
        app.state.store, app.state.workers = store, workers
        if settings.run_workers:
            workers.start()
        try:
            yield
        finally:
            workers.stop()
            store.close()

    app = FastAPI(title="polydiff", version=__version__, lifespan=lifespan,
                  description="The polydiff generate API over HTTP: a durable job queue with progress, "
                              "cancellation and result files.")

    @app.exception_handler(PolydiffError)
    async def _user_error(request, exc):
        return JSONResponse({"detail": one_line(exc)}, status_code=400)

    @app.exception_handler(HTTPException)
    async def _http_error(request, exc):
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _bug(request, exc):
        return JSONResponse({"detail": f"internal error: {type(exc).__name__}"}, status_code=500)

    @app.exception_handler(RequestValidationError)
    async def _bad_request(request, exc):
        errors = exc.errors()
        where = ".".join(str(p) for p in errors[0].get("loc", ())[1:]) if errors else ""
        message = errors[0].get("msg", "invalid request") if errors else "invalid request"
        return JSONResponse({"detail": f"{where}: {message}" if where else message}, status_code=422)

    @app.middleware("http")
    async def _auth_and_limits(request: Request, call_next):
        if request.url.path.startswith("/v1/") and settings.token:
            if request.headers.get("authorization", "") != f"Bearer {settings.token}":
                return JSONResponse({"detail": "authorization: a bearer token is required"}, status_code=401,
                                    headers={"WWW-Authenticate": "Bearer"})
        if request.method in ("POST", "PUT", "PATCH"):
            length = request.headers.get("content-length")
            if length is None:
                return JSONResponse({"detail": "content-length: required"}, status_code=411)
            if not length.isdigit() or int(length) > settings.max_body_bytes:
                return JSONResponse({"detail": f"body: over the limit of {settings.max_body_bytes:,} bytes"},
                                    status_code=413)
        return await call_next(request)

    def store(request: Request) -> JobStore:
        return request.app.state.store

    def job_or_404(request: Request, job_id: str) -> dict:
        job = store(request).get(job_id) if _JOB_ID.match(job_id) else None
        if job is None:
            raise HTTPException(404, f"job {job_id}: no such job")
        return job

    @app.get("/healthz")
    def healthz(request: Request):
        s = store(request)
        return {"ok": True, "version": __version__, "queued": s.count("queued"), "running": s.count("running")}

    @app.get("/v1/modalities")
    def modalities():
        from ..registries import components

        out = []
        for m in components().modalities.values():
            tasks = [{"name": t.name, "description": t.description, "needs": list(t.needs),
                      "options_schema": t.schema()["options"]} for t in m.tasks]
            out.append({"name": m.name, "description": m.description, "default_backend": m.default_backend,
                        "tasks": tasks})
        return {"modalities": out}

    @app.post("/v1/jobs", status_code=202)
    async def submit(request: Request):
        s = store(request)
        if s.count("queued") >= settings.max_queue:
            raise HTTPException(429, f"queue full: {settings.max_queue} jobs are waiting; try again later")
        fields, uploads = await _read_submission(request)
        job_id = uuid.uuid4().hex
        job_dir = settings.data / "jobs" / job_id
        try:
            stored = _stored_request(fields, uploads, job_dir)
            await asyncio.to_thread(_validate, stored, job_dir)
        except BaseException:
            shutil.rmtree(job_dir, ignore_errors=True)
            raise
        s.add(stored, job_id)
        request.app.state.workers.wake.set()
        return {"id": job_id, "status": "queued", "position": s.get(job_id)["position"]}

    @app.get("/v1/jobs/{job_id}")
    def status(request: Request, job_id: str):
        return _public(job_or_404(request, job_id))

    @app.delete("/v1/jobs/{job_id}")
    def cancel(request: Request, job_id: str):
        job_or_404(request, job_id)
        return {"id": job_id, "status": store(request).cancel(job_id)}

    @app.get("/v1/jobs/{job_id}/files/{name:path}")
    def file(request: Request, job_id: str, name: str):
        job = job_or_404(request, job_id)
        listed = {f["name"]: f for f in job["files"]}
        if name not in listed:  # only names the server wrote: no client path is ever opened
            raise HTTPException(404, f"file {name!r}: job {job_id} has no such file")
        return FileResponse(settings.data / "jobs" / job_id / "out" / name, media_type=listed[name]["content_type"],
                            filename=Path(name).name)

    @app.get("/v1/jobs/{job_id}/events")
    async def events(request: Request, job_id: str):
        job_or_404(request, job_id)

        async def stream():
            last = None
            while True:
                job = _public(store(request).get(job_id))
                seen = (job["status"], job["progress"]["step"], job["position"])
                if seen != last:
                    yield f"data: {json.dumps(job)}\n\n"
                    last = seen
                if job["status"] in FINAL or await request.is_disconnected():
                    return
                await asyncio.sleep(0.1)

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    @app.get("/v1/queue")
    def queue(request: Request):
        s = store(request)
        return {"queued": s.ids("queued"), "running": s.ids("running")}

    @app.get("/", include_in_schema=False)
    def page():
        index = STATIC / "index.html"
        if not index.is_file():
            raise HTTPException(404, "the web page is not installed")
        return FileResponse(index, media_type="text/html")

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str):
        path = STATIC / name
        if "/" in name or name.startswith(".") or not path.is_file():
            raise HTTPException(404, f"static file {name!r}: not found")
        return FileResponse(path)

    return app


async def _read_submission(request) -> tuple[dict, dict]:
    """(request fields, uploads {name: (client file name, bytes)}) from JSON or multipart."""
    kind = request.headers.get("content-type", "")
    uploads = {}
    if kind.startswith("multipart/form-data"):
        form = await request.form(max_files=len(INPUTS), max_fields=8)
        text = form.get("request")
        if not isinstance(text, str):
            raise HTTPException(400, "request: the multipart form needs a 'request' field holding the JSON request")
        fields = _json(text)
        for name in INPUTS:
            part = form.get(name)
            if part is not None and not isinstance(part, str):
                uploads[name] = (part.filename or "", await part.read())
        unknown = [k for k in form if k not in ("request", *INPUTS)]
        if unknown:
            raise HTTPException(400, f"{unknown[0]}: not a field of the form (request, {', '.join(INPUTS)})")
    elif kind.startswith("application/json") or not kind:
        fields = _json((await request.body()).decode("utf-8", "replace"))
        for name, given in (fields.pop("inputs", None) or {}).items():
            if name not in INPUTS:
                raise HTTPException(400, f"inputs.{name}: not an input (one of {', '.join(INPUTS)})")
            filename, data = (given.get("name", ""), given.get("data")) if isinstance(given, dict) else ("", given)
            if not isinstance(data, str):
                raise HTTPException(400, f"inputs.{name}: expected base64 text or {{\"name\", \"data\"}}")
            try:
                uploads[name] = (str(filename), base64.b64decode(data, validate=True))
            except (binascii.Error, ValueError):
                raise HTTPException(400, f"inputs.{name}: not valid base64") from None
    else:
        raise HTTPException(415, f"content-type: {kind!r} is not application/json or multipart/form-data")
    return fields, uploads


def _json(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise HTTPException(400, f"body: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    if not isinstance(value, dict):
        raise HTTPException(400, "body: expected a JSON object (a request)")
    return value


def _stored_request(fields: dict, uploads: dict, job_dir: Path) -> dict:
    """The request as stored: known fields, a server-chosen seed if none, uploads saved under
    names the server picks (the client's name only lends its suffix)."""
    unknown = [k for k in fields if k not in (*REQUEST_FIELDS, *INPUTS)]
    if unknown:
        raise HTTPException(400, f"{unknown[0]}: not a request field (task options go in \"options\")")
    stored = {k: fields[k] for k in REQUEST_FIELDS if k in fields}
    if stored.get("model") is not None:
        from ..user_models import registered_models

        if stored["model"] not in registered_models():
            raise HTTPException(400, "model: the server runs only models its operator named with "
                                     "`polydiff models add NAME FOLDER`; it reads no folder a client names")
    if stored.get("seed") is None:
        stored["seed"] = random.SystemRandom().randrange(2**31)
    inputs = {}
    for name in INPUTS:
        if name in fields and name in uploads:
            raise HTTPException(400, f"{name}: given both inline and as an upload")
        if name in fields:
            value = fields[name]
            if isinstance(value, str) and Path(value).expanduser().exists():
                raise HTTPException(400, f"{name}: the server reads no paths; upload the file instead")
            inputs[name] = {"value": value}
    for name, (filename, data) in uploads.items():
        suffix = "".join(Path(filename).suffixes[-2:]).lower()
        target = f"{name}{suffix if _SUFFIX.match(suffix) else ''}"
        (job_dir / "inputs").mkdir(parents=True, exist_ok=True)
        (job_dir / "inputs" / target).write_bytes(data)
        inputs[name] = {"file": f"inputs/{target}"}
    if inputs:
        stored["inputs"] = inputs
    return stored


def _validate(stored: dict, job_dir: Path) -> None:
    """The request model, then the task's plan (inputs read, options checked, memory budget), so
    a job is accepted only if it can run."""
    from ..builtin.generation import check_budget
    from ..generation import Context
    from ..request import GenerateRequest

    request = GenerateRequest.build(**request_fields(stored, job_dir))
    context = Context(request)
    check_budget(request.n, context.task.plan(request, context), context.modality)


def _public(job: dict) -> dict:
    files = [{**f, "url": f"/v1/jobs/{job['id']}/files/{f['name']}"} for f in job["files"]]
    return {"id": job["id"], "status": job["status"], "position": job["position"],
            "progress": {"step": job["step"], "steps": job["steps"]}, "error": job["error"],
            "request": job["request"], "created": job["created"], "started": job["started"],
            "finished": job["finished"], "files": files}

