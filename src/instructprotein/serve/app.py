"""The HTTP API and the web page: ``create_app(model_path, kg_path=None, limits=Limits())``.

Endpoints (JSON in, JSON out; the OpenAPI schema is at ``/openapi.json``, browsable at ``/docs``):

- ``GET /health``: the model is loaded, its folder, vocabulary size, context, device,
  whether a knowledge graph (GO terms, design checks, retrieval) is there, and the limits;
- ``POST /describe`` ``{"sequence": ...}`` or ``{"fasta": ...}``: function, location and GO
  terms per sequence (:meth:`~instructprotein.infer.model.Model.describe_many`);
- ``POST /design`` ``{"description", "n", "temperature", "top_p", "seed", "min_len", "max_len"}``:
  ``n`` checked designs and their FASTA (:meth:`~instructprotein.infer.model.Model.design`);
- ``POST /classify`` ``{"sequence", "question", "options", "prefix", "rule"}``: the option the
  model finds most likely (:meth:`~instructprotein.infer.model.Model.classify`);
- ``GET /``: a page (static HTML + vanilla JS, nothing fetched from elsewhere) to paste a
  sequence or a description and read the answer and the checks.

Errors are JSON ``{"error": "<message>"}``, never a traceback:

- 400: the input is wrong for the model (:class:`~instructprotein.errors.InputError`: an
  empty sequence, a digit at position 5, a prompt longer than the model's context...);
- 413: the request body is larger than ``Limits.max_body_bytes``;
- 422: the request is malformed (missing field, wrong type, invalid JSON) or above one of
  the server's limits (sequence length, number of designs, description length, options);
  ``detail`` then lists every problem;
- 503: more than ``Limits.max_pending`` requests are already waiting for the model
  (``Retry-After`` says when to try again);
- 500: a bug; the message names the exception type, the traceback goes to the server log.

Concurrency: the model is not thread-safe for generation, so every call into it runs on one
worker thread, in arrival order; the event loop stays free, so ``/health`` and the page
answer while a design is running. Requests beyond ``max_pending`` are refused rather than
queued without bound.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import math
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from instructprotein.errors import InputError, InstructProteinError
from instructprotein.formats.fasta import parse_fasta_text
from instructprotein.infer.inputs import MAX_DESCRIPTION_CHARS, Query, check_description, clean_sequence
from instructprotein.infer.params import check_classify, check_design, field

log = logging.getLogger("instructprotein.serve")

STATIC = Path(__file__).parent / "static"
T = TypeVar("T")


@dataclass(frozen=True)
class Limits:
    """What one request may ask for; above it the server answers 413 (body) or 422 (a field)."""

    max_body_bytes: int = 256 * 1024
    """Request body size; a larger one is refused before it is read (413)."""
    max_sequence_length: int = 10_000
    """Residues per sequence, whitespace not counted. Longer than the model reads is cut by
    the paper's rule (above 1,024 keep the last 1,000) before this limit matters; this one
    bounds the work of parsing and prompting."""
    max_sequences: int = 16
    """Records per describe request (FASTA)."""
    max_designs: int = 16
    """``n`` of a design request."""
    max_design_length: int = 1000
    """``max_len`` of a design request (residues)."""
    max_description_chars: int = MAX_DESCRIPTION_CHARS
    """Characters of a design request."""
    max_options: int = 64
    """Options of a classify request."""
    max_option_chars: int = 200
    """Characters of one option."""
    max_question_chars: int = 1000
    """Characters of a classify question or prefix."""
    max_new_tokens: int = 256
    """Tokens per describe answer."""
    max_pending: int = 32
    """Requests waiting for (or being served by) the model; one more is answered 503."""


# -- request bodies --------------------------------------------------------------------------------------


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DescribeRequest(_Body):
    """One sequence (plain residues, whitespace allowed) or FASTA text (one or more records)."""

    sequence: str | None = Field(
        None,
        description="Residue letters; whitespace and line breaks are dropped.",
        examples=["MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQAPILSRVGDGTQDNLSGAEKAVQVKVKALPDAQ"],
    )
    fasta: str | None = Field(None, description="FASTA text: '>id' header lines, then residues.")
    retrieval: bool | None = Field(
        None, description="Homologs' annotations in the prompt (default: on with a knowledge graph)."
    )
    max_new_tokens: int = field("max_new_tokens", 128)


class DesignRequest(_Body):
    """A text request and how to sample from it."""

    description: str = Field(
        ...,
        description="What the protein should do, e.g. 'binds zinc ion and is located in nucleus'.",
        examples=["binds zinc ion and is located in nucleus"],
    )
    n: int = field("n", 4, description="Number of sequences.")
    temperature: float = field("temperature", 1.0)
    top_p: float = field("top_p", 0.95)
    seed: int = field(
        "seed",
        0,
        description="The same seed gives the same designs; design i depends only on "
        "the seed and i, so n=2 gives the first two of n=4.",
    )
    min_len: int = field("min_len", 30, description="Fewest residues (</protein> is masked before).")
    max_len: int | None = field(
        "max_len",
        None,
        description="Most residues (</protein> is forced there); default "
        "400, or less where the model's context or the server's limit leaves less.",
    )
    length: int | None = field("length", None, description="A length hint written into the instruction.")
    strategy: Literal["auto", "exemplar", "sample"] = Field(
        "auto",
        description="exemplar: rewrite known proteins that carry the requested GO terms (~60 % identity); "
        "sample: from the request alone; auto: exemplar where the graph has such proteins.",
    )
    candidates: int | None = Field(
        None, ge=1, description="Generate this many, keep the best n (default 2 n with a graph)."
    )


class ClassifyRequest(_Body):
    """Pick one of ``options`` for one sequence by the model's likelihood."""

    sequence: str = Field(..., examples=["MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQAPILSRVGDGTQDNLSGAEKAVQVKVKALPDAQ"])
    question: str = Field(..., examples=["What cellular components is the protein located in?"])
    options: list[str] = Field(..., examples=[["nucleus", "cytoplasm", "mitochondrion"]])
    prefix: str = Field("", description="Text after 'Output:' before the option, e.g. 'The protein is located in'.")
    rule: Literal["first_token", "sum", "mean"] = Field("sum", description="Scoring rule (see infer/classify.py).")
    retrieval: bool | None = None


class Problem(BaseModel):
    field: str
    message: str


class ErrorBody(BaseModel):
    """Every error: a message for a person; ``detail`` lists each problem of a 422."""

    error: str
    detail: list[Problem] | None = None


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {
        "model": ErrorBody,
        "description": "The input is wrong for the model (empty sequence, a digit, too long for its context...)",
    },
    413: {"model": ErrorBody, "description": "The request body is over the server's limit"},
    422: {"model": ErrorBody, "description": "Malformed request, or a field over the server's limits"},
    503: {
        "model": ErrorBody,
        "description": "Too many requests waiting for the model; retry after Retry-After seconds",
    },
}


# -- helpers ---------------------------------------------------------------------------------------------


class LimitError(Exception):
    """A request the schema accepts but the server's limits do not: 422, ``field: message``."""

    def __init__(self, field: str, message: str):
        self.field = field
        self.message = message if field == "body" else f"{field}: {message}"
        super().__init__(self.message)
        self.problem = message


def _error(status: int, message: str, **extra: Any) -> JSONResponse:
    headers = extra.pop("headers", None)
    return JSONResponse({"error": message, **extra}, status_code=status, headers=headers)


def finite(obj: Any) -> Any:
    """``obj`` with every NaN / infinite float replaced by ``None`` (JSON has neither)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    return obj


def _residue_count(text: str) -> int:
    return sum(1 for ch in text if not ch.isspace())


def sequence_queries(req: DescribeRequest, limits: Limits) -> list[Query]:
    """The request's sequences, checked and normalised (never read from a file: a path is just text)."""
    if (req.sequence is None) == (req.fasta is None):
        raise LimitError("body", "give exactly one of 'sequence' (residue letters) or 'fasta' (FASTA text)")
    text = req.sequence if req.sequence is not None else req.fasta
    assert text is not None
    if req.fasta is not None or text.lstrip().startswith(">"):
        if not text.lstrip().startswith(">"):
            raise InputError("fasta: FASTA text starts with a '>' header line (or send plain residues as 'sequence')")
        records = parse_fasta_text(text.strip(), source="fasta", alphabet=None)
        if not records:
            raise InputError("fasta: no records")
        if len(records) > limits.max_sequences:
            raise LimitError("fasta", f"{len(records)} records, at most {limits.max_sequences} per request")
        queries = []
        seen: dict[str, int] = {}
        for rec in records:
            _check_length(rec.sequence, f"record {rec.id!r}", limits)
            k = seen[rec.id] = seen.get(rec.id, 0) + 1
            rid = rec.id if k == 1 else f"{rec.id}#{k}"
            queries.append(Query(rid, clean_sequence(rec.sequence, f"record {rec.id!r}")))
        return queries
    _check_length(text, "sequence", limits)
    return [Query("query", clean_sequence(text, "sequence"))]


def _check_length(text: str, name: str, limits: Limits) -> None:
    n = _residue_count(text)
    if n > limits.max_sequence_length:
        raise LimitError(name, f"{n} residues, at most {limits.max_sequence_length} accepted by this server")


def _check_text(text: str, name: str, limit: int) -> None:
    if len(text) > limit:
        raise LimitError(name, f"{len(text)} characters, at most {limit} accepted")


def _validation_message(exc: RequestValidationError) -> tuple[str, list[dict[str, Any]]]:
    problems = []
    for e in exc.errors():
        loc = list(e.get("loc", ()))
        kind = e.get("type", "")
        if kind == "json_invalid":
            at = f" at character {loc[-1]}" if loc and isinstance(loc[-1], int) else ""
            why = (e.get("ctx") or {}).get("error", "")
            problems.append({"field": "body", "message": f"not valid JSON{at}" + (f" ({why})" if why else "")})
            continue
        if loc == ["body"] and kind in ("missing", "model_attributes_type", "dict_type"):
            problems.append({"field": "body", "message": "expected a JSON object (Content-Type: application/json)"})
            continue
        field = ".".join(str(x) for x in loc if x != "body")
        problems.append({"field": field or "body", "message": e.get("msg", "invalid")})
    text = "; ".join(f"{p['field']}: {p['message']}" for p in problems) or "invalid request"
    return f"invalid request: {text}", problems


class BodyLimit:
    """ASGI middleware: a body over ``max_bytes`` is answered 413 (by its Content-Length before
    reading, or while reading a chunked one); a smaller body is passed on unchanged.

    Before refusing, up to ``drain_bytes`` more of the body are read and dropped: a server that
    closes with unread bytes in its socket makes the kernel reset the connection, and a client
    still sending then loses the 413 it was owed. A body larger still is cut off unread."""

    def __init__(self, app: Any, max_bytes: int, drain_bytes: int = 1 << 20):
        self.app = app
        self.max_bytes = max_bytes
        self.drain_bytes = drain_bytes

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                await _error(400, "invalid Content-Length header")(scope, receive, send)
                return
            if size > self.max_bytes:
                await self._too_large(size, scope, receive, send)
                return
        # read the whole body (bounded), then replay it: also catches a chunked body with no length
        chunks, total = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            total += len(chunk)
            if total > self.max_bytes:
                await self._too_large(None, scope, receive, send, finished=not message.get("more_body", False))
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        sent = False

        async def replay() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, size: int | None, scope: Any, receive: Any, send: Any, finished: bool = False) -> None:
        if not finished and (size is None or size <= self.max_bytes + self.drain_bytes):
            drained = 0
            while drained <= self.drain_bytes:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                drained += len(message.get("body", b""))
                if not message.get("more_body", False):
                    break
        if size is not None:
            message = f"request body too large: {size:,} bytes, at most {self.max_bytes:,} bytes accepted"
        else:
            message = f"request body too large: more than the {self.max_bytes:,} bytes accepted"
        response = _error(413, message, headers={"Connection": "close"})
        await response(scope, receive, send)


class TokenGuard:
    """ASGI middleware: 401 unless the request carries ``token`` (header, cookie or ``?token=``).

    For a server bound beyond loopback, where anyone on the network could otherwise use it.
    ``?token=`` on a page load sets an HttpOnly, SameSite=Strict cookie, so the page's own
    calls carry it without the token in any script. Compared in constant time.
    """

    def __init__(self, app: Any, token: str):
        self.app = app
        self.token = token.encode()

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        from http.cookies import CookieError, SimpleCookie
        from urllib.parse import parse_qs

        headers = {k.decode("latin-1"): v for k, v in scope.get("headers") or []}
        given: list[bytes] = []
        auth = headers.get("authorization", b"")
        if auth[:7].lower() == b"bearer ":
            given.append(auth[7:].strip())
        cookie: SimpleCookie = SimpleCookie()
        try:
            cookie.load(headers.get("cookie", b"").decode("latin-1"))
        except CookieError:  # a malformed cookie header is no token
            cookie = SimpleCookie()
        if TOKEN_COOKIE in cookie:
            given.append(cookie[TOKEN_COOKIE].value.encode())
        query = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token", [])
        from_query = [q.encode() for q in query]
        if any(hmac.compare_digest(g, self.token) for g in given):
            await self.app(scope, receive, send)
            return
        if any(hmac.compare_digest(g, self.token) for g in from_query):

            async def send_with_cookie(message: dict[str, Any]) -> None:
                if message["type"] == "http.response.start":
                    value = f"{TOKEN_COOKIE}={self.token.decode()}; Path=/; HttpOnly; SameSite=Strict"
                    message = {**message, "headers": [*message.get("headers", []), (b"set-cookie", value.encode())]}
                await send(message)

            await self.app(scope, receive, send_with_cookie)
            return
        await _error(
            401,
            "this server needs its token: open the address it printed (with ?token=...) "
            "or send 'Authorization: Bearer TOKEN'",
        )(scope, receive, send)


# -- the app ---------------------------------------------------------------------------------------------


LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")
"""The Host headers a loopback server answers by default: a page on another site that points
a name it controls at 127.0.0.1 (DNS rebinding) sends its own name and is refused."""
TOKEN_COOKIE = "instructprotein_token"


def create_app(
    model_path: Any,
    kg_path: str | Path | None = None,
    limits: Limits = Limits(),
    *,
    device: str | None = None,
    retrieval: bool | None = None,
    allowed_hosts: Sequence[str] | None = LOOPBACK_HOSTS,
    token: str | None = None,
) -> FastAPI:
    """The API for one model folder (or an already loaded :class:`~instructprotein.infer.model.Model`).

    The model is loaded here, before any socket is opened: a missing folder or graph is an
    :class:`~instructprotein.errors.InputError` at once, not a server that answers 500.

    ``allowed_hosts``: Host header names answered (Starlette's ``TrustedHostMiddleware``;
    ``None`` or ``["*"]``: any). ``token``: when set, every request must carry it
    (``Authorization: Bearer TOKEN``, or ``?token=TOKEN`` once, which sets a cookie for the
    page, as Jupyter does); without it the answer is 401.
    """
    if isinstance(model_path, (str, Path)) and not Path(model_path).expanduser().exists():
        raise InputError("model folder not found", model_path)  # before importing torch: a typo fails in a blink
    from instructprotein.infer.classify import context_length
    from instructprotein.infer.generate import default_max_len
    from instructprotein.infer.model import Model

    if isinstance(model_path, Model):
        model = model_path
        if kg_path is not None:
            raise ValueError("give kg_path to Model.load, not beside an already loaded Model")
    else:
        model = Model.load(model_path, kg=kg_path, device=device, retrieval=retrieval)

    worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="instructprotein-model")
    state = {"pending": 0, "served": 0}

    @asynccontextmanager
    async def lifespan(_: FastAPI):  # type: ignore[no-untyped-def]
        yield
        worker.shutdown(wait=True, cancel_futures=True)

    docs_assets = _swagger_assets()
    app = FastAPI(
        title="InstructProtein",
        summary="Describe proteins, design proteins from text, classify by likelihood.",
        version=_version(),
        lifespan=lifespan,
        docs_url=None if docs_assets else "/docs",
        redoc_url=None,
    )
    app.state.model = model
    app.state.limits = limits
    app.add_middleware(BodyLimit, max_bytes=limits.max_body_bytes)
    if token:
        app.add_middleware(TokenGuard, token=token)
    if allowed_hosts is not None and "*" not in allowed_hosts:  # added last: runs first
        from starlette.middleware.trustedhost import TrustedHostMiddleware

        app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts), www_redirect=False)

    async def run_model(fn: Callable[[], T]) -> T:
        """``fn`` on the model's one worker thread; 503 when too many wait already."""
        if state["pending"] >= limits.max_pending:
            raise _Busy(state["pending"])
        state["pending"] += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(worker, fn)
        finally:
            state["pending"] -= 1
            state["served"] += 1

    # -- errors ------------------------------------------------------------------------------------------
    @app.exception_handler(InstructProteinError)
    async def _input_error(_: Request, exc: InstructProteinError) -> JSONResponse:
        return _error(400, str(exc))

    @app.exception_handler(LimitError)
    async def _limit_error(_: Request, exc: LimitError) -> JSONResponse:
        return _error(422, exc.message, detail=[{"field": exc.field, "message": exc.problem}])

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        message, problems = _validation_message(exc)
        return _error(422, message, detail=problems)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(_Busy)
    async def _busy(_: Request, exc: _Busy) -> JSONResponse:
        return _error(
            503,
            f"server busy: {exc.pending} requests are waiting for the model; retry later",
            headers={"Retry-After": "1"},
        )

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return _error(500, f"internal error ({type(exc).__name__}); the server log has the details")

    # -- endpoints ---------------------------------------------------------------------------------------
    @app.get("/health", tags=["server"])
    async def health() -> dict[str, Any]:
        """Whether the model is loaded, what it is, and the limits of a request."""
        m = model
        return {
            "status": "ok",
            "model_loaded": True,
            "model_path": m.path.name if m.path is not None else None,  # a name, not where it lives on disk
            "vocab_size": len(m.tokenizer),
            "context_length": context_length(m.model),
            "device": str(m.model.device),
            "knowledge_graph": Path(m.kg.path).name if m.kg is not None else None,
            "go_terms": m.kg is not None,
            "retrieval": bool(m.retrieval),
            "limits": asdict(limits),
            "pending": state["pending"],
            "served": state["served"],
        }

    @app.post("/describe", tags=["model"], responses=ERRORS)
    async def describe(req: DescribeRequest) -> JSONResponse:
        """Function, location and GO terms of each sequence."""
        if req.max_new_tokens > limits.max_new_tokens:
            raise LimitError("max_new_tokens", f"{req.max_new_tokens}, at most {limits.max_new_tokens}")
        queries = sequence_queries(req, limits)
        start = time.perf_counter()
        results = await run_model(
            lambda: model.describe_many(queries, retrieval=req.retrieval, max_new_tokens=req.max_new_tokens)
        )
        out = [{**d.to_dict(), "text": d.to_text()} for d in results]
        return JSONResponse(finite({"results": out, "seconds": round(time.perf_counter() - start, 3)}))

    @app.post("/design", tags=["model"], responses=ERRORS)
    async def design(req: DesignRequest) -> JSONResponse:
        """``n`` sequences for a text request, each checked (alphabet, length, low complexity, closest protein)."""
        _check_text(req.description, "description", limits.max_description_chars)
        check_description(req.description, limits.max_description_chars)  # empty: 400 before waiting in the queue
        if req.n > limits.max_designs:
            raise LimitError("n", f"{req.n} designs asked, at most {limits.max_designs} per request")
        if req.candidates is not None and req.candidates > 4 * limits.max_designs:
            raise LimitError("candidates", f"{req.candidates} asked, at most {4 * limits.max_designs} per request")
        max_len = req.max_len
        if max_len is None:  # design's default (at most 400: what the model's context leaves), within the limit
            max_len = min(
                default_max_len(model.model, model.tokenizer, req.description, req.length, req.min_len),
                limits.max_design_length,
            )
        if max_len > limits.max_design_length:
            raise LimitError("max_len", f"{max_len}, at most {limits.max_design_length} residues")
        if req.min_len > max_len:
            raise LimitError("min_len", f"{req.min_len} is above max_len {max_len}")
        check_design(
            n=req.n,
            temperature=req.temperature,
            top_p=req.top_p,
            seed=req.seed,
            min_len=req.min_len,
            max_len=max_len,
            length=req.length,
        )  # the CLI's rules (the schema holds the same bounds)
        start = time.perf_counter()
        run = await run_model(
            lambda: model.design(
                req.description,
                n=req.n,
                temperature=req.temperature,
                top_p=req.top_p,
                seed=req.seed,
                min_len=req.min_len,
                max_len=max_len,
                length=req.length,
                strategy=req.strategy,
                candidates=req.candidates,
            )
        )
        body = run.to_dict()
        body["fasta"] = "".join(
            f">{d.id} length={len(d.sequence)} ended_by={d.ended_by}\n"
            + "".join(d.sequence[i : i + 60] + "\n" for i in range(0, len(d.sequence), 60))
            for d in run.designs
        )
        body["seconds"] = round(time.perf_counter() - start, 3)
        return JSONResponse(finite(body))

    @app.post("/classify", tags=["model"], responses=ERRORS)
    async def classify(req: ClassifyRequest) -> JSONResponse:
        """The option the model finds most likely after the question, with every option's probability."""
        _check_length(req.sequence, "sequence", limits)
        _check_text(req.question, "question", limits.max_question_chars)
        _check_text(req.prefix, "prefix", limits.max_question_chars)
        if not 2 <= len(req.options) <= limits.max_options:
            raise LimitError("options", f"{len(req.options)} given, between 2 and {limits.max_options} accepted")
        for i, o in enumerate(req.options):
            if not o.strip():
                raise LimitError(f"options.{i}", f"option {i + 1} is empty")
            _check_text(o, f"options.{i}", limits.max_option_chars)
        check_classify(req.question, req.options, req.prefix)  # the CLI's rules
        seq = clean_sequence(req.sequence, "sequence")
        choice = await run_model(
            lambda: model.classify(
                seq, req.question, req.options, prefix=req.prefix, rule=req.rule, retrieval=req.retrieval
            )
        )
        return JSONResponse(finite(choice.to_dict()))

    # -- the page and the docs ---------------------------------------------------------------------------
    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers=PAGE_HEADERS)

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    if docs_assets:
        _local_docs(app, docs_assets)
    return app


PAGE_HEADERS = {
    # everything the page uses comes from this server; no inline script, no other origin
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}


class _Busy(Exception):
    def __init__(self, pending: int):
        super().__init__(pending)
        self.pending = pending


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("instructprotein")
    except Exception:  # pragma: no cover - not installed
        return "0"


def _swagger_assets() -> Path | None:
    """Swagger UI's files where the optional ``swagger-ui-bundle-v2`` package is installed, so /docs
    works without reaching a CDN; without it FastAPI's default /docs (assets from jsDelivr)."""
    try:
        import swagger_ui_bundle
    except ImportError:
        return None
    folder = Path(swagger_ui_bundle.swagger_ui_path)
    return folder if (folder / "swagger-ui-bundle.js").is_file() else None


def _local_docs(app: FastAPI, assets: Path) -> None:
    from fastapi.openapi.docs import get_swagger_ui_html

    app.mount("/docs-assets", StaticFiles(directory=assets), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> Any:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} API",
            swagger_js_url="/docs-assets/swagger-ui-bundle.js",
            swagger_css_url="/docs-assets/swagger-ui.css",
            swagger_favicon_url="/docs-assets/favicon-32x32.png",
        )
