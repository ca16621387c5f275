"""The persona service over real HTTP: a uvicorn server on a free loopback port in a
thread, the session's small real lake, the template LLM and the smoke model. Personas,
lake personas by pseudonym, rewrites, images, metrics, and every refusal: tokens, rate
limit, body and count caps, hostile image URLs, errors as JSON."""

from __future__ import annotations

import io
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pyarrow.compute as pc
import pytest
import uvicorn
from fastapi import FastAPI
from PIL import Image

from exports.pseudonyms import pseudonymise
from jobs.config import load_config
from service.api import create_app
from service.auth import token_hash
from service.cold_start import NewUser, PersonaEngine
from service.errors import CatchAll
from storage.lake import Lake
from tests.static_server import serve_folder

TOKEN = "svc-test-token-7f3a"  # $ZIPP_SERVE_TOKENS (plain, hashed on load)
FILE_TOKEN = "svc-file-token-91c2"  # its hash in the tokens file
KEY = "svc-test-pseudonym-key"
LIMITED = ("lim-a-5d1e", "lim-b-5d1e", "lim-c-5d1e")  # the second app's tokens
FIELDS = {"demographics", "interests", "affective_traits", "visual_interests", "text", "llm"}


@contextmanager
def running(app: FastAPI) -> Iterator[str]:
    """`app` under uvicorn on a free 127.0.0.1 port in a thread; yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # NODELAY
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)


def client(url: str, token: str | None = TOKEN) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=url, headers=headers, timeout=60)


def assert_error(r: httpx.Response, status: int, code: str) -> dict:
    """A JSON error of that status and code, with a message and no stack trace."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert set(body) == {"error", "detail"} and body["error"] == code and body["detail"]
    assert "Traceback" not in r.text and 'File "' not in r.text
    return body


@pytest.fixture(scope="module")
def env(service_lake, tmp_path_factory):
    tokens = tmp_path_factory.mktemp("serve") / "tokens.txt"
    tokens.write_text(f"# name:sha256hex\nops:{token_hash(FILE_TOKEN)}\n")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ZIPP_SERVE_TOKENS", TOKEN)
        mp.setenv("ZIPP_PSEUDONYM_KEY", KEY)
        mp.setenv("ZIPP_TEST_LIMITED_TOKENS", ",".join(LIMITED))
        yield {"tokens_file": tokens}


@pytest.fixture(scope="module")
def engine(service_lake, env):
    engine = PersonaEngine(service_lake["config"])
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def url(service_lake, env, engine):
    args = [
        *service_lake["args"],
        f"serve.tokens_file={env['tokens_file']}",
        "serve.rate_per_s=1000",
        "serve.burst=1000",
        "serve.max_body_kb=64",
    ]
    with running(create_app(load_config("conf/local.yaml", args), engine)) as base:
        yield base


@pytest.fixture(scope="module")
def limited(service_lake, env, engine):
    """A second app: three tokens at 0.2 requests/s with a burst of 3, loopback images
    allowed, no pseudonym key in its environment variable."""
    args = [
        *service_lake["args"],
        "serve.tokens_env=ZIPP_TEST_LIMITED_TOKENS",
        "serve.rate_per_s=0.2",
        "serve.burst=3",
        "serve.image_allow_hosts=[127.0.0.1]",
        "export.key_env=ZIPP_TEST_NO_SUCH_KEY",
    ]
    with running(create_app(load_config("conf/local.yaml", args), engine)) as base:
        yield base


@pytest.fixture(scope="module")
def lake_user(service_lake):
    """(author, pseudonym, their gold/personas row) of a user with a done persona."""
    lake = Lake(service_lake["root"])
    personas = lake.read("gold/personas")
    row = personas.filter(pc.equal(personas["status"], "done")).slice(0, 1).to_pylist()[0]
    users = lake.read("silver/users", ["user_id", "author"])
    author = users.filter(pc.equal(users["user_id"], row["user_id"]))["author"][0].as_py()
    return author, pseudonymise([author], KEY)[0], row, users["author"].to_pylist()


def niche_subreddit(engine) -> str:
    return engine.subreddits.sort_by([("users", "ascending")])["subreddit"][0].as_py()


def test_a_cold_start_persona_round_trip(url, engine):
    niche = niche_subreddit(engine)
    body = {
        "subreddits": [niche, "r/AskReddit", "no_such_subreddit_xyz"],
        "comments": [{"subreddit": niche, "text": "my quokkazebra came out great"}],
        "prompt": "a lighthouse at dawn",
    }
    with client(url) as c:
        r = c.post("/v1/personas", json=body)
        assert r.status_code == 200, r.text
        out = r.json()
        assert out["status"] == "done" and out["llm"] == "template:template"
        assert out["unknown_subreddits"] == ["no_such_subreddit_xyz"]
        assert {s["name"] for s in out["subreddits"]} == {niche, "AskReddit"}
        assert "quokkazebra" in out["persona"]["visual_interests"]
        assert set(out["rewrites"]) == {"none", "zero_shot", "viper"}
        assert "quokkazebra" in out["rewrites"]["zero_shot"]
        assert out["images_fetched"] == 0 and out["images_refused"] == []
        assert "embedding" not in out and "evidence" not in out
        one = c.post("/v1/personas", json=body | {"methods": ["zero_shot"]}).json()
        assert set(one["rewrites"]) == {"zero_shot"}
        assert one["persona"] == out["persona"]  # nothing stored between calls
        none = c.post("/v1/personas", json={"subreddits": ["nothing_here_1"]})
        assert "none of the subreddits" in assert_error(none, 422, "invalid_request")["detail"]


def test_a_lake_persona_by_its_pseudonym_never_by_name_or_id(url, lake_user):
    author, pseudonym, row, authors = lake_user
    with client(url) as c:
        r = c.get(f"/v1/personas/{pseudonym}")
        assert r.status_code == 200, r.text
        persona = r.json()
        assert set(persona) == FIELDS
        assert persona["interests"] == row["interests"] and persona["text"] == row["text"]
        assert not any(a in r.text for a in authors)  # no author of silver/users
        for other in ("u_0123456789abcdef", author, str(row["user_id"]), "u_" + author):
            assert_error(c.get(f"/v1/personas/{other}"), 404, "not_found")


def test_lake_personas_need_the_pseudonym_key(limited):
    with client(limited, LIMITED[0]) as c:
        body = assert_error(c.get("/v1/personas/u_0123456789abcdef"), 503, "unavailable")
        assert "ZIPP_TEST_NO_SUCH_KEY" in body["detail"]


def test_rewrites_by_a_persona_object_and_by_a_pseudonym(url, lake_user):
    _, pseudonym, row, _ = lake_user
    persona = {
        "text": "I build tiny boats out of driftwood.",
        "interests": ["driftwood boats"],
        "visual_interests": ["driftwood", "harbour fog"],
    }
    with client(url) as c:
        r = c.post("/v1/rewrite", json={"persona": persona, "prompt": "a quiet bay"})
        assert r.status_code == 200, r.text
        out = r.json()
        assert out["method"] == "zero_shot" and out["prompt"].startswith("a quiet bay")
        assert "driftwood" in out["prompt"]
        none = c.post(
            "/v1/rewrite", json={"persona": persona, "prompt": "a quiet bay", "method": "none"}
        ).json()
        assert "driftwood" not in none["prompt"]
        mine = c.post("/v1/rewrite", json={"pseudonym": pseudonym, "prompt": "a quiet bay"})
        assert mine.status_code == 200, mine.text
        words = [*row["visual_interests"], *row["interests"]]
        assert any(w in mine.json()["prompt"] for w in words)
        viper = c.post(
            "/v1/rewrite",
            json={"persona": persona, "prompt": "a bay", "method": "viper", "likes": ["fog"]},
        ).json()
        assert "fog" in viper["prompt"]
        refusals = [
            {"persona": persona, "pseudonym": pseudonym, "prompt": "x"},  # both
            {"prompt": "x"},  # neither
            {"persona": {"text": "..."}, "prompt": "x"},  # a placeholder, not a persona
            {"persona": persona, "prompt": "x", "method": "k_shot"},  # not for a new user
        ]
        for body in refusals:
            assert_error(c.post("/v1/rewrite", json=body), 422, "invalid_request")
        unknown = c.post("/v1/rewrite", json={"pseudonym": "u_0123456789abcdef", "prompt": "x"})
        assert_error(unknown, 404, "not_found")


def test_images_are_pngs_from_the_smoke_model(url, service_lake):
    with client(url) as c:
        r = c.post("/v1/images", json={"prompt": "a red boat", "seed": 7})
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "image/png"
        image = Image.open(io.BytesIO(r.content))
        image.load()
        side = service_lake["config"].smoke.size
        assert image.format == "PNG" and image.size == (side, side)
        again = c.post("/v1/images", json={"prompt": "a red boat", "seed": 7}).content
        other = c.post("/v1/images", json={"prompt": "a red boat", "seed": 8}).content
        assert again == r.content and other != r.content  # seeded
        assert_error(c.post("/v1/images", json={"prompt": ""}), 422, "invalid_request")


def test_hostile_image_urls_are_reported_not_fetched(url, engine):
    urls = [
        "http://169.254.169.254/latest/meta-data/",
        "http://127.0.0.1:1/x.png",
        "file:///etc/passwd",
    ]
    body = {"subreddits": [niche_subreddit(engine)], "image_urls": urls}
    with client(url) as c:
        r = c.post("/v1/personas", json=body)
        assert r.status_code == 200, r.text
        refused = {x["url"]: x["reason"] for x in r.json()["images_refused"]}
        assert refused == {
            urls[0]: "blocked_address",
            urls[1]: "blocked_address",
            urls[2]: "scheme",
        }
        assert r.json()["images_fetched"] == 0
        assert c.get("/healthz").json()["status"] == "ok"


def test_an_allowlisted_image_is_fetched(limited, engine, service_lake):
    image = next(p for p in sorted(service_lake["data"].rglob("*.png")))
    with serve_folder(service_lake["data"]) as base, client(limited, LIMITED[1]) as c:
        link = f"{base}/{image.relative_to(service_lake['data']).as_posix()}"
        body = {"subreddits": [niche_subreddit(engine)], "image_urls": [link]}
        r = c.post("/v1/personas", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["images_fetched"] == 1 and r.json()["images_refused"] == []


def test_tokens_are_required_and_checked(url):
    body = {"subreddits": ["x"]}
    with client(url, None) as anon:
        r = anon.post("/v1/personas", json=body)
        assert_error(r, 401, "unauthorized")
        assert r.headers["www-authenticate"] == "Bearer"
        basic = anon.post("/v1/personas", json=body, headers={"Authorization": "Basic eDp5"})
        assert_error(basic, 401, "unauthorized")
        assert anon.get("/healthz").status_code == 200  # no token needed
        assert anon.get("/metrics").status_code == 200
        assert "/v1/rewrite" in anon.get("/openapi.json").json()["paths"]
    with client(url, "not-a-token") as wrong:
        assert_error(wrong.post("/v1/personas", json=body), 403, "forbidden")
        assert_error(wrong.get("/v1/personas/u_0123456789abcdef"), 403, "forbidden")
    with client(url, token_hash(TOKEN)) as hashed:  # the hash is not the token
        assert_error(hashed.get("/v1/personas/u_0123456789abcdef"), 403, "forbidden")
    with client(url, FILE_TOKEN) as from_file:
        assert_error(from_file.get("/v1/personas/u_0123456789abcdef"), 404, "not_found")


def test_the_rate_limit_is_per_token(limited):
    with client(limited, LIMITED[2]) as c, client(limited, LIMITED[0]) as other:
        codes = [c.get("/v1/personas/u_0123456789abcdef").status_code for _ in range(4)]
        assert codes == [503, 503, 503, 429]  # the burst (no pseudonym key on this app)
        r = c.get("/v1/personas/u_0123456789abcdef")
        assert_error(r, 429, "rate_limited")
        assert int(r.headers["retry-after"]) >= 1
        assert other.get("/v1/personas/u_0123456789abcdef").status_code == 503  # its own


def test_bodies_over_the_cap_are_refused(url):
    big = json.dumps({"subreddits": ["a" * 50] * 1400})  # ~75 KiB > 64 KiB
    with client(url) as c:
        assert_error(c.post("/v1/personas", content=big), 413, "too_large")

        def chunks():  # no Content-Length: counted as it arrives
            for i in range(0, len(big), 8192):
                yield big[i : i + 8192].encode()

        chunked = c.post("/v1/personas", content=chunks())
        assert_error(chunked, 413, "too_large")


def test_counts_and_lengths_over_the_caps_are_422(url, engine):
    sub = niche_subreddit(engine)
    bad = {
        "subreddits": {"subreddits": [sub] * 201},
        "comments": {"subreddits": [sub], "comments": [{"subreddit": sub, "text": "x"}] * 201},
        "comments.0.text": {
            "subreddits": [sub],
            "comments": [{"subreddit": sub, "text": "y" * 2001}],
        },
        "image_urls": {"subreddits": [sub], "image_urls": ["http://example.com/a.png"] * 9},
        "prompt": {"subreddits": [sub], "prompt": "p" * 1001},
        "methods.0": {"subreddits": [sub], "methods": ["k_shot"]},
    }
    with client(url) as c:
        for field, body in bad.items():
            detail = assert_error(c.post("/v1/personas", json=body), 422, "invalid_request")
            assert detail["detail"].startswith(f"{field}: "), detail
        assert "200" in c.post("/v1/personas", json=bad["subreddits"]).json()["detail"]
        empty = c.post("/v1/personas", json={"subreddits": []})
        assert_error(empty, 422, "invalid_request")


def test_errors_are_json_without_a_stack_trace(url):
    with client(url) as c:
        malformed = c.post(
            "/v1/personas", content=b"{not json", headers={"content-type": "application/json"}
        )
        assert_error(malformed, 422, "invalid_request")
        assert_error(c.get("/v1/nowhere"), 404, "not_found")
        assert_error(c.get("/v1/rewrite"), 405, "method_not_allowed")
        assert_error(c.post("/v1/personas", json=["a list"]), 422, "invalid_request")


def test_an_unexpected_exception_is_a_json_500(caplog):
    app = FastAPI()

    @app.get("/boom")
    async def boom():
        raise RuntimeError("secret detail /home/someone")

    app.add_middleware(CatchAll)
    caplog.set_level(logging.INFO, logger="zipp.serve")
    with running(app) as base, client(base, None) as c:
        r = c.get("/boom")
    assert_error(r, 500, "internal")
    assert "secret" not in r.text and "secret" not in caplog.text
    assert "RuntimeError on GET /boom" in caplog.text


def test_metrics_count_requests_per_route_without_user_content(url, lake_user):
    _, pseudonym, _, _ = lake_user
    with client(url) as c:
        c.get(f"/v1/personas/{pseudonym}")
        c.post("/v1/personas", json={"subreddits": ["no_such_subreddit_metrics"]})
    with client(url, None) as anon:
        anon.post("/v1/rewrite", json={})
        text = anon.get("/metrics").text
    wanted = [
        'zipp_serve_requests_total{method="GET",route="/v1/personas/{pseudonym}",status="200"}',
        'zipp_serve_requests_total{method="POST",route="/v1/personas",status="422"}',
        'zipp_serve_requests_total{method="POST",route="/v1/rewrite",status="401"}',
        'zipp_serve_request_seconds_bucket{le="0.25",method="GET",'
        'route="/v1/personas/{pseudonym}",status="200"}',
        'zipp_serve_engine_seconds_count{op="persona"}',
    ]
    for line in wanted:
        assert line in text, line
    assert pseudonym not in text and "no_such_subreddit_metrics" not in text
    assert TOKEN not in text


def test_logs_name_no_token_username_or_pseudonym(url, lake_user, caplog):
    author, pseudonym, _, _ = lake_user
    for name in ("zipp", "uvicorn"):  # the server's loggers (the test client logs URLs)
        caplog.set_level(logging.DEBUG, logger=name)
    with client(url) as c:
        assert c.get(f"/v1/personas/{pseudonym}").status_code == 200
        c.post("/v1/rewrite", json={"pseudonym": pseudonym, "prompt": "a quiet bay"})
    with client(url, "wrong-token-x") as wrong:
        wrong.get(f"/v1/personas/{pseudonym}")
    server = "\n".join(
        r.getMessage() for r in caplog.records if r.name.startswith(("zipp", "uvicorn"))
    )
    assert "GET /v1/personas/{pseudonym} 200" in server  # the requests were logged
    assert "GET /v1/personas/{pseudonym} 403" in server
    for secret in (TOKEN, "wrong-token-x", token_hash(TOKEN), author, pseudonym):
        assert secret not in server


def test_the_engine_in_a_process_of_its_own_answers_the_same(service_lake, env, engine):
    """`serve.engine_process` (what `zipp serve` uses): the same persona and rewrite as the
    in-process engine, a client's unknown subreddits still a 422."""
    from service.engine_process import EngineProcess

    config = load_config("conf/local.yaml", [*service_lake["args"], "serve.rate_per_s=1000"])
    apart = EngineProcess(config)
    try:
        niche = niche_subreddit(engine)
        body = {"subreddits": [niche, "r/AskReddit"], "prompt": "a red kite"}
        with running(create_app(config, apart)) as base, client(base) as c:
            got = c.post("/v1/personas", json=body)
            assert got.status_code == 200, got.text
            here = engine.persona(NewUser((niche, "r/AskReddit")), "a red kite")
            assert got.json()["persona"] == here.persona
            assert got.json()["rewrites"] == here.rewrites
            assert_error(
                c.post("/v1/personas", json={"subreddits": ["zz_no"]}), 422, "invalid_request"
            )
    finally:
        apart.close()


def test_rewrites_through_an_endpoint_are_in_flight_side_by_side(service_lake, env, engine):
    """With an OpenAI-compatible LLM the service sends rewrites from its event loop: 8
    clients at once reach the (real, local) LLM server together, not one after another."""
    from concurrent.futures import ThreadPoolExecutor

    from tests.llm_server import ChatServer

    niche = niche_subreddit(engine)
    persona = engine.persona(NewUser((niche,))).persona
    with ChatServer(latency=0.4) as server:
        args = [
            *service_lake["args"],
            "serve.rate_per_s=1000",
            "serve.burst=1000",
            "llm.backend=openai",
            "llm.model=test-model",
            f"llm.base_url={server.url}",
        ]
        with running(create_app(load_config("conf/local.yaml", args), engine)) as base:

            def one(i: int) -> httpx.Response:
                body = {"persona": persona, "prompt": f"a boat number {i}", "method": "zero_shot"}
                with client(base) as c:
                    return c.post("/v1/rewrite", json=body, timeout=30)

            with ThreadPoolExecutor(8) as pool:
                answers = list(pool.map(one, range(8)))
    assert [r.status_code for r in answers] == [200] * 8, answers[0].text
    assert all(r.json()["prompt"] for r in answers)
    assert server.max_inflight >= 4  # side by side, not queued behind one thread
