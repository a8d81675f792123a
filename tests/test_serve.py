"""The HTTP API over a real socket: a uvicorn server on 127.0.0.1 with a random tiny model.

Requests go through ``urllib`` / ``http.client`` (the standard library), so what is tested is
what any client sees: status codes, JSON bodies, and that no error ever carries a traceback.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest

pytest.importorskip("fastapi", reason="the server needs fastapi (a project dependency)")
pytest.importorskip("uvicorn", reason="the server needs uvicorn (a project dependency)")

import helpers_model as h  # noqa: E402
from instructprotein.errors import InputError  # noqa: E402
from instructprotein.infer.model import Model  # noqa: E402
from instructprotein.serve import Limits, create_app, running_server  # noqa: E402
from instructprotein.serve.run import free_port  # noqa: E402

AMINO = set("ACDEFGHIKLMNPQRSTVWY")
LIMITS = Limits(
    max_body_bytes=16 * 1024,
    max_sequence_length=2000,
    max_designs=4,
    max_design_length=300,
    max_description_chars=300,
    max_options=8,
)
SEQ = h.SEQUENCES["P20001"][:80]


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    yield from h.one_thread()


@pytest.fixture(scope="module")
def model():
    return Model.load(h.model_path(), device="cpu")


@pytest.fixture(scope="module")
def base(model):
    with running_server(create_app(model, limits=LIMITS)) as url:
        yield url


def call(base: str, method: str, path: str, body=None, *, raw: bytes | None = None, headers=None):
    """(status, headers, parsed JSON or text) of one request; error statuses are returned, not raised."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    hdrs = {"Content-Type": "application/json", **(headers or {})} if data is not None else dict(headers or {})
    req = urllib.request.Request(base + path, data=data, method=method, headers=hdrs)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            status, head, text = r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as e:
        status, head, text = e.code, dict(e.headers), e.read().decode()
    if head.get("content-type", "").startswith("application/json"):
        return status, head, json.loads(text)
    return status, head, text


def post(base, path, body):
    status, _, data = call(base, "POST", path, body)
    return status, data


# -- what works ------------------------------------------------------------------------------------------


def test_health(base):
    status, _, h_ = call(base, "GET", "/health")
    assert status == 200
    assert h_["status"] == "ok" and h_["model_loaded"] is True
    assert h_["model_path"] == h.model_path().name  # a name: no absolute path in an unauthenticated answer
    assert "/tmp" not in json.dumps(h_) and str(h.model_path()) not in json.dumps(h_)
    assert h_["vocab_size"] > 600 and h_["context_length"] == 512
    assert h_["knowledge_graph"] is None and h_["retrieval"] is False and h_["go_terms"] is False
    assert h_["limits"]["max_designs"] == 4


def test_describe_sequence_and_fasta(base):
    status, data = post(base, "/describe", {"sequence": SEQ})
    assert status == 200, data
    (d,) = data["results"]
    assert d["id"] == "query" and d["length"] == len(SEQ)
    assert isinstance(d["function"], str) and isinstance(d["location"], str)
    assert set(d["go_answers"]) == {"F", "P", "C"}
    assert abs(sum(d["location_scores"]["probabilities"].values()) - 1) < 1e-3
    assert d["go_terms"] is None  # no knowledge graph: the model's text only
    assert d["text"].startswith(f"# query ({len(SEQ)} residues)")
    # FASTA as a person pastes it: lower case, line breaks, spaces, a final '*'
    fasta = f">first some words\n{SEQ[:40].lower()}\n{SEQ[40:]} *\n>second\n{SEQ[::-1]}\n"
    status, data = post(base, "/describe", {"fasta": fasta, "max_new_tokens": 8})
    assert status == 200, data
    assert [r["id"] for r in data["results"]] == ["first", "second"]
    assert [r["length"] for r in data["results"]] == [len(SEQ), len(SEQ)]
    # pasted FASTA in the 'sequence' field is read as FASTA too
    status, data = post(base, "/describe", {"sequence": ">p1\n" + SEQ, "max_new_tokens": 4})
    assert status == 200 and data["results"][0]["id"] == "p1"


def test_design_two_constrained_and_reproducible(base):
    body = {"description": "binds zinc ion and is located in nucleus", "n": 2, "seed": 3, "min_len": 10, "max_len": 40}
    status, run = post(base, "/design", body)
    assert status == 200, run
    assert len(run["designs"]) == 2
    for d in run["designs"]:
        assert d["sequence"] and set(d["sequence"]) <= AMINO, d["sequence"]
        assert 10 <= len(d["sequence"]) <= 40 and d["ended_by"] in ("model", "max_len")
        c = d["checks"]
        assert c["valid_alphabet"] is True and c["length_ok"] is True and c["closest_searched"] is False
        assert isinstance(d["verification"], float) and d["carries_request"] is None and d["closest"] is None
    assert run["settings"]["strategy"] == "sample"  # no graph on this server: no exemplars
    assert run["fasta"].count(">design") == 2
    assert run["settings"]["seed"] == 3 and run["prompt"].endswith("<protein>")
    again = post(base, "/design", body)[1]
    assert [d["sequence"] for d in again["designs"]] == [d["sequence"] for d in run["designs"]]


def test_classify(base):
    opts = ["nucleus", "cytoplasm", "mitochondrion"]
    body = {
        "sequence": SEQ,
        "question": "What cellular components is the protein located in?",
        "options": opts,
        "prefix": "The protein is located in",
    }
    status, c = post(base, "/classify", body)
    assert status == 200, c
    assert c["answer"] in opts and c["rule"] == "sum"
    assert [o["option"] for o in c["options"]] == opts
    assert abs(sum(o["probability"] for o in c["options"]) - 1) < 1e-4
    status, c2 = post(base, "/classify", {**body, "rule": "first_token"})
    assert status == 200 and c2["rule"] == "first_token"
    # ambiguity codes and rare residues are read as the tokenizer writes them, not refused
    status, c3 = post(base, "/classify", {**body, "sequence": "mktxbzuoj ayiak"})
    assert status == 200, c3


def test_openapi_docs_and_page(base):
    status, _, schema = call(base, "GET", "/openapi.json")
    assert status == 200
    assert {"/health", "/describe", "/design", "/classify"} <= set(schema["paths"])
    status, head, html = call(base, "GET", "/docs")
    assert status == 200 and "swagger" in html.lower()
    status, head, html = call(base, "GET", "/")
    assert status == 200 and head["content-type"].startswith("text/html")
    assert "default-src 'self'" in head["content-security-policy"]
    assert '<script src="/static/app.js"' in html and "http" not in html.split("<body>")[0]  # no CDN
    assert call(base, "GET", "/static/app.js")[0] == 200
    assert call(base, "GET", "/nope")[0] == 404


# -- bad input: a clear 4xx message, never a traceback -------------------------------------------------------

BAD = [
    # (path, body, status, words in the message)
    ("/describe", {"sequence": ""}, 400, "empty sequence"),
    ("/describe", {"sequence": "   \n "}, 400, "empty sequence"),
    ("/describe", {"sequence": "MKT1AYI"}, 400, "position 4 is a digit"),
    ("/describe", {"fasta": ">a\nMKTAYI\n10 MKT\n"}, 400, "digit"),
    ("/describe", {"sequence": "MKT@AYI"}, 400, "position 4"),
    ("/describe", {"sequence": "MKTAY-IA"}, 400, "alignment gap"),
    ("/describe", {"fasta": "MKTAYI"}, 400, "'>' header"),
    ("/describe", {"fasta": ">empty\n"}, 400, "empty sequence"),
    ("/describe", {"sequence": "A" * 2001}, 422, "2001 residues, at most 2000"),
    ("/describe", {}, 422, "exactly one of 'sequence'"),
    ("/describe", {"sequence": "MKT", "fasta": ">a\nMKT"}, 422, "exactly one"),
    ("/describe", {"sequence": 42}, 422, "sequence: Input should be a valid string"),
    ("/describe", {"sequence": "MKT", "colour": "red"}, 422, "colour: Extra inputs are not permitted"),
    ("/describe", {"sequence": "MKT", "max_new_tokens": 100000}, 422, "max_new_tokens"),
    ("/design", {"description": ""}, 400, "description: empty"),
    ("/design", {"description": "  \n\t "}, 400, "description: empty"),
    ("/design", {"description": "x" * 301}, 422, "description: 301 characters, at most 300"),
    ("/design", {"description": "binds zinc", "n": 5}, 422, "n: 5 designs asked, at most 4"),
    ("/design", {"description": "binds zinc", "n": 0}, 422, "n: Input should be greater than or equal to 1"),
    ("/design", {"description": "binds zinc", "max_len": 301}, 422, "max_len: 301, at most 300"),
    ("/design", {"description": "binds zinc", "min_len": 50, "max_len": 20}, 422, "min_len: 50 is above max_len 20"),
    ("/design", {"description": "binds zinc", "temperature": 0}, 422, "temperature"),
    ("/design", {"description": "binds zinc", "top_p": 1.5}, 422, "top_p"),
    ("/design", {"description": "a <protein>MKT</protein>"}, 400, "<protein> tags"),
    ("/design", {"n": 2}, 422, "description: Field required"),
    ("/classify", {"sequence": "MKT", "question": "q?", "options": ["yes"]}, 422, "options: 1 given"),
    ("/classify", {"sequence": "MKT", "question": "q?", "options": ["a", " "]}, 422, "option 2 is empty"),
    ("/classify", {"sequence": "MKT", "question": " ", "options": ["a", "b"]}, 400, "question: empty"),
    ("/classify", {"sequence": "", "question": "q?", "options": ["a", "b"]}, 400, "empty sequence"),
    ("/classify", {"sequence": "MKT", "question": "q?", "options": ["a", "b"], "rule": "max"}, 422, "rule"),
]


@pytest.mark.parametrize(("path", "body", "status", "words"), BAD, ids=[f"{p}-{w}" for p, _, _, w in BAD])
def test_bad_input_is_a_clear_4xx(base, path, body, status, words):
    got, data = post(base, path, body)
    assert got == status, data
    assert isinstance(data, dict) and words in data["error"], data
    assert "Traceback" not in json.dumps(data)


def test_invalid_json_and_wrong_method(base):
    status, _, data = call(base, "POST", "/describe", raw=b'{"sequence": "MKT"')
    assert status == 422 and "JSON" in data["error"]
    status, _, data = call(base, "POST", "/describe", raw=b"sequence=MKT", headers={"Content-Type": "text/plain"})
    assert status == 422 and "expected a JSON object" in data["error"]
    status, _, data = call(base, "POST", "/describe", raw=b"")
    assert status == 422 and "expected a JSON object" in data["error"]
    status, _, data = call(base, "GET", "/describe")
    assert status == 405 and data["error"] == "Method Not Allowed"


def test_oversized_body_is_413(base):
    body = {"sequence": "A" * 20_000}  # over 16 KiB of body before any field is looked at
    status, data = post(base, "/describe", body)
    assert status == 413 and "at most 16,384 bytes" in data["error"]
    # a chunked body (no Content-Length) is counted while it is read
    u = urlsplit(base)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    # just over the limit: the client has sent everything by the time the server refuses, so
    # the refusal cannot race a client still writing (which a loaded machine turns into a reset)
    chunks = (b'{"sequence": "' if i == 0 else b"A" * 1024 for i in range(18))
    conn.request("POST", "/describe", body=chunks, headers={"Content-Type": "application/json"}, encode_chunked=True)
    resp = conn.getresponse()
    assert resp.status == 413 and "too large" in json.loads(resp.read())["error"]
    conn.close()
    assert call(base, "GET", "/health")[0] == 200  # the server is fine afterwards


# -- concurrency ---------------------------------------------------------------------------------------------


def test_concurrent_requests_all_succeed_and_match_sequential(base):
    def classify_body(i: int) -> dict:
        return {
            "sequence": h.SEQUENCES[f"P2000{1 + i % 8}"][:60],
            "question": "Where is it?",
            "options": ["nucleus", "cytoplasm", "membrane"],
        }

    design_body = {"description": "binds copper ion", "n": 2, "seed": 11, "min_len": 10, "max_len": 30}
    jobs = [("/classify", classify_body(i)) for i in range(5)]
    jobs += [("/design", design_body), ("/describe", {"sequence": SEQ, "max_new_tokens": 6}), ("/design", design_body)]
    expected = [post(base, p, b) for p, b in jobs]  # one at a time
    assert all(s == 200 for s, _ in expected)
    with ThreadPoolExecutor(len(jobs) + 2) as pool:
        health = [pool.submit(call, base, "GET", "/health") for _ in range(2)]
        futures = [pool.submit(post, base, p, b) for p, b in jobs]
        got = [f.result(timeout=120) for f in futures]
        assert all(f.result()[0] == 200 for f in health)
    assert [s for s, _ in got] == [200] * len(jobs)
    for (path, _), (_, want), (_, have) in zip(jobs, expected, got):
        if path == "/classify":
            assert have["answer"] == want["answer"]
            assert [o["probability"] for o in have["options"]] == pytest.approx(
                [o["probability"] for o in want["options"]], abs=1e-5
            )
        elif path == "/design":
            assert [d["sequence"] for d in have["designs"]] == [d["sequence"] for d in want["designs"]]
        else:
            assert have["results"][0]["function"] == want["results"][0]["function"]


def test_busy_server_answers_503(model):
    with running_server(create_app(model, limits=Limits(max_pending=1))) as url:
        slow = {"description": "binds zinc ion", "n": 8, "min_len": 250, "max_len": 250}
        result: dict = {}
        t = threading.Thread(target=lambda: result.update(slow=post(url, "/design", slow)))
        t.start()
        deadline = time.monotonic() + 30
        while call(url, "GET", "/health")[2]["pending"] < 1:  # health is answered while the model works
            assert time.monotonic() < deadline and t.is_alive()
            time.sleep(0.005)
        status, head, data = call(url, "POST", "/classify", {"sequence": "MKT", "question": "q", "options": ["a", "b"]})
        t.join(60)
        assert status == 503 and "busy" in data["error"] and head["retry-after"] == "1"
        assert result["slow"][0] == 200 and len(result["slow"][1]["designs"]) == 8


# -- with a knowledge graph; starting and failing from the command line -----------------------------------


def test_with_knowledge_graph_go_terms_are_mapped(model):
    m = Model(model.model, model.tokenizer, kg=h.kg_path(), path=model.path, retrieval=False)
    with running_server(create_app(m)) as url:
        status, _, health = call(url, "GET", "/health")
        assert health["knowledge_graph"] == h.kg_path().name and health["go_terms"] is True
        assert health["retrieval"] is False
        status, data = post(url, "/describe", {"sequence": SEQ, "max_new_tokens": 8})
        assert status == 200, data
        go = data["results"][0]["go_terms"]
        assert set(go) >= {"direct", "implied", "unmatched", "summary"}
        assert all(t["id"].startswith("GO:") for t in go["direct"])  # only ids the graph knows
    m.kg.close()


def test_missing_model_folder(tmp_path):
    with pytest.raises(InputError, match="model folder not found"):
        create_app(tmp_path / "no-model")
    r = subprocess.run(
        [sys.executable, "-m", "instructprotein.serve", "--model", str(tmp_path / "no-model")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2
    assert "error:" in r.stderr and "model folder not found" in r.stderr and "Traceback" not in r.stderr


def test_one_command_starts_and_stops(tmp_path):
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "instructprotein.serve",
            "--model",
            str(h.model_path()),
            "--port",
            str(port),
            "--device",
            "cpu",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            try:
                status, _, health = call(url, "GET", "/health")
                break
            except (urllib.error.URLError, ConnectionError):
                assert time.monotonic() < deadline, "the server did not answer within 90 s"
                time.sleep(0.2)
        assert status == 200 and health["model_loaded"] is True
        assert post(url, "/classify", {"sequence": SEQ, "question": "q?", "options": ["a", "b"]})[0] == 200
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
    assert proc.returncode == 0, out
    assert f"http://127.0.0.1:{port}/" in out and "Traceback" not in out
