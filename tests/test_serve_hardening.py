"""The server under an adversarial tester, on 127.0.0.1 only, bounded in sockets and seconds.

- slow clients (a request head trickled a byte at a time, a body that never finishes, a
  connection that sends nothing) are answered 408 and closed once the read deadline passes,
  while ordinary requests keep being served;
- only loopback Host names are answered by default (DNS rebinding);
- with a token, nothing is answered without it;
- a bounded load of valid /classify requests with retrieval (cached after the first pass)
  gets no 4xx/5xx.
"""

from __future__ import annotations

import http.client
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest

pytest.importorskip("fastapi", reason="the server needs fastapi (a project dependency)")
pytest.importorskip("uvicorn", reason="the server needs uvicorn (a project dependency)")

import helpers_model as h  # noqa: E402
from instructprotein.infer.model import Model  # noqa: E402
from instructprotein.serve import create_app, running_server  # noqa: E402
from instructprotein.serve.run import default_allowed_hosts, free_port, is_loopback  # noqa: E402

SEQ = h.SEQUENCES["P20001"][:80]
READ_TIMEOUT = 1.0


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    yield from h.one_thread()


@pytest.fixture(scope="module")
def model():
    return Model.load(h.model_path(), device="cpu")


def port_of(url: str) -> int:
    return int(urlsplit(url).port or 0)


def request(port: int, method: str, path: str, body: dict | None = None, headers: dict | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        data = json.dumps(body).encode() if body is not None else None
        hdrs = {"Content-Type": "application/json", **(headers or {})} if data else dict(headers or {})
        conn.request(method, path, body=data, headers=hdrs)
        r = conn.getresponse()
        text = r.read().decode()
        return r.status, dict(r.getheaders()), text
    finally:
        conn.close()


def closed_by_server(sock: socket.socket, wait: float) -> tuple[bool, bytes]:
    """Whether the server closed ``sock`` within ``wait`` seconds, and what it sent before."""
    got = b""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        ready, _, _ = select.select([sock], [], [], 0.1)
        if ready:
            try:
                chunk = sock.recv(4096)
            except ConnectionResetError:
                return True, got
            if not chunk:
                return True, got
            got += chunk
    return False, got


def test_slow_clients_are_closed_and_others_still_served(model):
    app = create_app(model)
    with running_server(app, read_timeout=READ_TIMEOUT) as url:
        port = port_of(url)
        silent, trickle, short_body = [], [], []
        try:
            for _ in range(20):  # bounded: 60 sockets in all
                s = socket.create_connection(("127.0.0.1", port))
                silent.append(s)
                s = socket.create_connection(("127.0.0.1", port))
                s.sendall(b"POST /classify HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                trickle.append(s)
                s = socket.create_connection(("127.0.0.1", port))
                s.sendall(
                    b"POST /classify HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                    b'Content-Length: 1000\r\n\r\n{"sequ'
                )
                short_body.append(s)
            start = time.monotonic()
            while time.monotonic() - start < READ_TIMEOUT * 1.5:  # a byte now and then: never a whole head
                for s in trickle:
                    try:
                        s.sendall(b"X")
                    except OSError:
                        pass
                time.sleep(0.2)
            # while they hang on, an ordinary request is answered
            status, _, _ = request(port, "GET", "/health")
            assert status == 200
            results = [closed_by_server(s, READ_TIMEOUT * 3) for s in silent + trickle + short_body]
            assert time.monotonic() - start < 15
        finally:
            for s in silent + trickle + short_body:
                s.close()
        assert all(closed for closed, _ in results), sum(not c for c, _ in results)
        answered = [got for _, got in results if got]
        assert answered and all(got.startswith(b"HTTP/1.1 408") for got in answered), answered[:2]
        assert sum(1 for got in answered) >= 40  # the silent and the short-body ones at least
        status, _, text = request(port, "POST", "/classify", {"sequence": SEQ, "question": "q?", "options": ["a", "b"]})
        assert status == 200, text


def test_a_slow_answer_is_not_cut_by_the_read_deadline(model):
    """The deadline covers receiving the request only: a design that takes longer is answered."""
    app = create_app(model)
    with running_server(app, read_timeout=0.2) as url:
        status, _, text = request(
            port_of(url), "POST", "/design", {"description": "binds zinc ion", "n": 2, "max_len": 60}
        )
        assert status == 200, text


@pytest.mark.parametrize(
    ("host", "status"),
    [
        ("127.0.0.1", 200),
        ("localhost", 200),
        ("LOCALHOST", 200),
        ("[::1]", 200),
        ("evil.example", 400),
        ("127.0.0.1.evil.example", 400),
        ("", 400),
    ],
)
def test_only_loopback_host_names_are_answered(model, host, status):
    with running_server(create_app(model)) as url:
        port = port_of(url)
        got, _, _ = request(port, "GET", "/health", headers={"Host": f"{host}:{port}" if host else ""})
        assert got == status


def test_allowed_hosts_are_configurable(model):
    with running_server(create_app(model, allowed_hosts=["protein.lab"])) as url:
        port = port_of(url)
        assert request(port, "GET", "/health", headers={"Host": "protein.lab"})[0] == 200
        assert request(port, "GET", "/health", headers={"Host": "127.0.0.1"})[0] == 400


def test_token(model):
    with running_server(create_app(model, token="s3cret-token")) as url:
        port = port_of(url)
        status, _, text = request(port, "GET", "/health")
        assert status == 401 and "token" in json.loads(text)["error"]
        assert request(port, "GET", "/health", headers={"Authorization": "Bearer wrong"})[0] == 401
        assert request(port, "GET", "/health", headers={"Authorization": "Bearer s3cret-token"})[0] == 200
        status, head, _ = request(port, "GET", "/?token=s3cret-token")
        assert status == 200
        cookie = head.get("set-cookie", "")
        assert "instructprotein_token=s3cret-token" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
        assert request(port, "GET", "/health", headers={"Cookie": cookie.split(";")[0]})[0] == 200
        assert request(port, "GET", "/static/app.js")[0] == 401


def test_loopback_and_default_hosts():
    assert is_loopback("127.0.0.1") and is_loopback("127.0.0.2") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("::") and not is_loopback("192.168.1.5")
    assert default_allowed_hosts("127.0.0.1") == ["localhost", "127.0.0.1", "[::1]"]
    assert "192.168.1.5" in default_allowed_hosts("192.168.1.5")


def test_serve_prints_the_token_and_requires_it(tmp_path):
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "INSTRUCTPROTEIN_TOKEN": "tok-123"}
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
            "--read-timeout",
            "2",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None
            try:
                status = request(port, "GET", "/health")[0]
                break
            except OSError:
                assert time.monotonic() < deadline
                time.sleep(0.2)
        assert status == 401
        assert request(port, "GET", "/health", headers={"Authorization": "Bearer tok-123"})[0] == 200
        s = socket.create_connection(("127.0.0.1", port))  # --read-timeout reaches the server
        closed, got = closed_by_server(s, 6)
        s.close()
        assert closed and got.startswith(b"HTTP/1.1 408")
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    assert f"http://127.0.0.1:{port}/?token=tok-123" in out and "Traceback" not in out


def test_classify_under_load_with_cached_retrieval_has_no_errors(model):
    """A bounded load (120 requests, 6 connections) of valid /classify calls with retrieval on."""
    kg_model = Model(model.model, model.tokenizer, kg=h.kg_path(), path=model.path)
    seqs = [h.SEQUENCES[a][:n] for a in sorted(h.SEQUENCES)[:6] for n in (60, 120)]
    bodies = [
        {
            "sequence": seqs[i % len(seqs)],
            "question": "What cellular components is the protein located in?",
            "options": [" nucleus", " cytoplasm", " mitochondrion"],
            "prefix": "The protein is located in",
        }
        for i in range(120)
    ]
    try:
        with running_server(create_app(kg_model)) as url:
            port = port_of(url)
            with ThreadPoolExecutor(6) as pool:
                results = list(pool.map(lambda b: request(port, "POST", "/classify", b), bodies))
    finally:
        kg_model.kg.close()
    bad = [(s, t[:200]) for s, _, t in results if s != 200]
    assert not bad, bad[:3]
    answers = {}
    for b, (_, _, t) in zip(bodies, results):  # the same input gets the same answer however busy the server is
        answers.setdefault(b["sequence"], set()).add(json.loads(t)["answer"])
    assert all(len(a) == 1 for a in answers.values())
