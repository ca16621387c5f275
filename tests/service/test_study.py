"""The human A/B study without a browser, on a real SQLite file: studies and hashed
invites, one vote per pair, stored and balanced sides, win rates with a binomial p on
known votes, CSV/Parquet/lake exports and the report's section, deletion keeping votes
anonymous, the survey's checks, and the render worker resuming a job a crashed worker
left running (real persona engine and smoke diffusion model on the service lake)."""

from __future__ import annotations

import io
import random
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from PIL import Image
from typer.testing import CliRunner

from service.cold_start import COLD_METHODS
from service.limits import TokenBucket
from service.study.db import Database
from service.study.pairs import plan_pairs
from service.study.queue import JobQueue
from service.study.results import results, to_lake, vote_rows, write_votes
from service.study.store import AlreadyVoted, Store, StudyError
from service.study.survey import SurveyError, clean_answers, load_survey, new_user
from service.study.tokens import digest
from storage.lake import Lake

SURVEY = Path("conf/study_survey.yaml")
ANSWERS = {
    "communities": "AskReddit, r/no_such_sub_xyz",
    "about": "I post photos of misty harbours and old boats.",
    "visual": "Muted blues, soft fog; no neon.",
    "age": "25-34",
    "gender": "",
    "region": "Europe",
}


class Clock:
    """A clock the test moves (the store's only notion of time)."""

    def __init__(self, t: float = 1_000_000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


def _png(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), (10, 20, 30)).save(path)


def _open(store: Store, code: str) -> str:
    token = store.open_invite(code)
    return store.rater(token).id


def _voting(store: Store, queue: JobQueue, rater: str, answers: dict | None = None) -> None:
    """Take a rater through the survey and the queue (a persona dict and a PNG per image
    stand in for the models, which the worker test below runs for real)."""
    row = store.db.one("SELECT study FROM raters WHERE id = ?", (rater,))
    study = store.study(row["study"])
    pairs = plan_pairs(len(study["prompts"]), study["methods"], study["votes_per_rater"])
    kept = {"answers": answers or {"communities": ["AskReddit"]}, "persona_input": {}}
    store.start(rater, kept, pairs)
    while (job := queue.claim()) is not None:
        if job.kind == "persona":
            assert queue.persona_done(job, {"text": "I like fog."})
        else:
            file = store.image_folder(study["id"], job.rater) / f"{job.image}.png"
            _png(file)
            rel = file.relative_to(store.db.folder).as_posix()
            assert queue.image_done(job, "a rewritten prompt", None, rel, file)


@contextmanager
def running(app) -> Iterator[str]:
    """A real uvicorn server of `app` on a free port of 127.0.0.1; yields its URL."""
    import uvicorn

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


@pytest.fixture
def store(tmp_path) -> Store:
    return Store(Database(tmp_path / "study" / "study.sqlite", clock=Clock()))


def test_a_study_keeps_only_digests_of_its_invites_in_a_wal_store(store, tmp_path):
    study, codes = store.create_study(
        "fog", ["zero_shot", "none"], ["a harbour", "a boat"], 2, 3, COLD_METHODS
    )
    assert store.db.journal_mode() == "wal"
    assert len(codes) == 3 and len(set(codes)) == 3 and all(len(c) >= 40 for c in codes)
    found = store.study(study)
    assert found["methods"] == ["zero_shot", "none"] and found["prompts"] == ["a harbour", "a boat"]
    stored = {r[0] for r in store.db.all("SELECT code_digest FROM invites")}
    assert stored == {digest(c) for c in codes}
    raw = b"".join(p.read_bytes() for p in (tmp_path / "study").glob("study.sqlite*"))
    assert not any(c.encode() in raw for c in codes)  # no code in the file or its WAL
    # an invite opened twice is one rater (resume); its sessions are digests too
    t1, t2 = store.open_invite(codes[0]), store.open_invite(codes[0])
    assert t1 != t2 and store.rater(t1) == store.rater(t2)
    assert store.rater(t1).id.startswith("r_") and codes[0] not in store.rater(t1).id
    assert not any(t.encode() in raw for t in (t1, t2))
    assert store.rater("not-a-session") is None
    with pytest.raises(StudyError, match="not valid") as e:
        store.open_invite(codes[0][:-1] + ("A" if codes[0][-1] != "A" else "B"))
    assert e.value.status == 404


@pytest.mark.parametrize(
    ("methods", "prompts", "votes", "message"),
    [
        (["zero_shot", "k_shot"], ["p"], 1, "unknown method 'k_shot'"),
        (["none", "none"], ["p"], 1, "at least two methods"),
        (["none", "viper"], [], 1, "1 to 200 prompts"),
        (["none", "viper"], ["x" * 301], 1, "at most 300 characters"),
        (["none", "viper"], ["p"], 0, "votes per rater"),
    ],
)
def test_a_study_is_validated(store, methods, prompts, votes, message):
    with pytest.raises(StudyError, match=message):
        store.create_study("s", methods, prompts, votes, 1, COLD_METHODS)


def test_one_vote_per_pair_per_rater_is_the_stores_rule(store):
    study, codes = store.create_study("s", ["none", "zero_shot"], ["a", "b"], 2, 2, COLD_METHODS)
    queue = JobQueue(store.db)
    r1, r2 = _open(store, codes[0]), _open(store, codes[1])
    with pytest.raises(StudyError, match="cannot vote now"):
        store.vote(r1, "p_x", "left")  # before the survey
    _voting(store, queue, r1)
    _voting(store, queue, r2)
    pairs = store.pairs(r1)
    assert len(pairs) == 2 and all(p.left_image and p.right_image for p in pairs)
    store.vote(r1, pairs[0].id, "left")
    with pytest.raises(AlreadyVoted, match="already voted on this pair"):
        store.vote(r1, pairs[0].id, "right")
    with pytest.raises(StudyError, match="no such pair"):
        store.vote(r2, pairs[1].id, "left")  # another rater's pair
    with pytest.raises(StudyError, match="one of left, right, cant_tell"):
        store.vote(r1, pairs[1].id, "both")
    # the rule is the table's: a direct second insert fails on the UNIQUE constraint
    c = store.db.connect()
    with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
        c.execute("INSERT INTO votes VALUES (?, ?, 'right', 0)", (pairs[0].id, r1))
    c.close()
    assert store.db.one("SELECT count(*) FROM votes")[0] == 1
    store.vote(r1, pairs[1].id, "cant_tell")
    assert store.db.one("SELECT state FROM raters WHERE id = ?", (r1,))[0] == "done"


def test_sides_are_random_stored_and_balanced(store):
    methods = ["none", "zero_shot", "viper"]
    for seed in range(40):
        pairs = plan_pairs(4, methods, 12, random.Random(seed))
        assert (
            len(pairs) == 12
            and len({(p.position, *sorted((p.left, p.right))) for p in pairs}) == 12
        )
        for a, b in [("none", "viper"), ("none", "zero_shot"), ("viper", "zero_shot")]:
            mine = [p for p in pairs if {p.left, p.right} == {a, b}]
            assert sum(p.left == a for p in mine) == len(mine) // 2  # 4 each: 2 on each side
    firsts = {plan_pairs(2, ["none", "zero_shot"], 2, random.Random(s))[0].left for s in range(20)}
    assert firsts == {"none", "zero_shot"}  # which side is drawn, not fixed
    assert len(plan_pairs(2, ["none", "zero_shot"], 99)) == 2  # capped at every pair once
    # stored: the same order and sides on every read
    study, codes = store.create_study("s", methods, ["a", "b", "c"], 6, 1, COLD_METHODS)
    rater = _open(store, codes[0])
    _voting(store, JobQueue(store.db), rater)
    first = store.pairs(rater)
    assert store.pairs(rater) == first and len(first) == 6
    sides = store.db.all(
        "SELECT left_method, right_method FROM pairs WHERE rater = ? ORDER BY ordinal", (rater,)
    )
    assert all(s["left_method"] != s["right_method"] for s in sides)
    # images only for what the pairs show, one per (prompt, method)
    assert store.db.one("SELECT count(*) FROM images WHERE rater = ?", (rater,))[0] <= 9


def _vote_for(store: Store, rater: str, pair_id: str, winner: str | None) -> None:
    left = store.db.one("SELECT left_method FROM pairs WHERE id = ?", (pair_id,))[0]
    vote = "cant_tell" if winner is None else ("left" if left == winner else "right")
    store.vote(rater, pair_id, vote)


@pytest.fixture
def voted(store):
    """4 raters, 3 pairs each (zero_shot vs none): zero_shot chosen 8 times, none 2,
    can't tell 2."""
    study, codes = store.create_study(
        "fog", ["zero_shot", "none"], ["a", "b", "c"], 3, 4, COLD_METHODS
    )
    queue = JobQueue(store.db)
    plan = iter(["zero_shot"] * 8 + ["none"] * 2 + [None] * 2)
    raters = []
    for code in codes:
        rater = _open(store, code)
        _voting(store, queue, rater)
        for p in store.pairs(rater):
            store.db.clock.t += 1
            _vote_for(store, rater, p.id, next(plan))
        raters.append(rater)
    return store, study, codes, raters


def test_win_rates_and_a_two_sided_binomial_p_on_known_votes(voted):
    store, study, _, _ = voted
    table = results(store.db, study)
    assert len(table) == 1
    row = table.iloc[0].to_dict()
    assert (row["method"], row["vs"]) == ("zero_shot", "none")
    assert (row["votes"], row["wins"], row["losses"], row["ties"], row["raters"]) == (
        12,
        8,
        2,
        2,
        4,
    )
    assert row["win_rate"] == pytest.approx(0.8)
    assert row["p_value"] == pytest.approx(112 / 1024)  # 2 * P(X >= 8), X ~ Bin(10, 1/2)


def test_exports_csv_parquet_and_the_lake_table_the_report_reads(voted, tmp_path):
    from evaluation.stages.report import table_html
    from evaluation.study_section import study_section

    store, study, codes, raters = voted
    table = vote_rows(store.db, study)
    assert table.num_rows == 12
    csv = write_votes(table, tmp_path / "out" / "votes.csv")
    par = write_votes(table, tmp_path / "out" / "votes.parquet")
    with pytest.raises(ValueError, match=r"\.csv or \.parquet"):
        write_votes(table, tmp_path / "votes.json")
    text = csv.read_text()
    assert text.splitlines()[0].replace('"', "") == (
        "study,pair,prompt,method_left,method_right,vote,winner,rater,time"
    )
    assert not any(c in text for c in codes)  # raters by random id, never the invite
    back = pq.read_table(par).to_pandas()
    assert set(back["rater"]) == set(raters) and set(back["study"]) == {study}
    assert pacsv.read_csv(csv).num_rows == 12
    for r in back.to_dict("records"):
        side = {"left": r["method_left"], "right": r["method_right"]}
        assert r["winner"] == side.get(r["vote"])  # None for cant_tell
        assert {r["method_left"], r["method_right"]} == {"zero_shot", "none"}
    assert (back["winner"] == "zero_shot").sum() == 8 and back["winner"].isna().sum() == 2
    assert back["time"].is_monotonic_increasing
    # the lake table and the report's section
    lake_root = tmp_path / "lake"
    assert to_lake(table, lake_root) == 12
    votes = Lake(lake_root).read("bench/study_votes").to_pandas()
    assert len(votes) == 12
    out = tmp_path / "report"
    out.mkdir()
    section = study_section(votes, out, table_html)
    assert "<h2>Human A/B study</h2>" in section and "zero_shot" in section and "0.109" in section
    assert (out / "study.png").stat().st_size > 1000
    assert pd.read_parquet(out / "study.parquet")["wins"].tolist() == [8]
    assert study_section(votes.iloc[:0], out, table_html) == ""


def test_deleting_a_raters_data_keeps_their_votes_under_the_random_id(voted):
    store, study, codes, raters = voted
    rater = raters[0]
    token = store.open_invite(codes[0])
    files = list(store.image_folder(study, rater).glob("*.png"))
    assert files and store.survey(rater) and store.persona(rater)
    assert store.delete_rater(rater) == len(files)
    assert not store.image_folder(study, rater).exists()
    assert store.survey(rater) is None and store.persona(rater) is None
    assert store.db.one("SELECT count(*) FROM images WHERE rater = ?", (rater,))[0] == 0
    assert store.rater(token) is None  # every session of theirs ended
    with pytest.raises(StudyError, match="closed") as e:
        store.open_invite(codes[0])
    assert e.value.status == 410
    kept = vote_rows(store.db, study).to_pandas()
    assert len(kept) == 12 and (kept["rater"] == rater).sum() == 3
    assert store.progress(study)["raters_deleted"] == 1


def test_the_survey_file_and_the_answers_are_checked():
    survey = load_survey(SURVEY)
    ids = [q.id for q in survey.questions]
    assert {"communities", "about", "visual", "age", "gender", "region"} <= set(ids)
    answers = clean_answers(survey, ANSWERS | {"unasked": "x"})
    assert answers["communities"] == ["AskReddit", "r/no_such_sub_xyz"]
    assert "unasked" not in answers
    bad = [
        ({"communities": ""}, "please answer"),
        ({"communities": ", ".join(f"s{i}" for i in range(21))}, "at most 20 entries"),
        ({"communities": "cats; <script>"}, "not a community name"),
        ({"about": "x" * 1001}, "at most 1000 characters"),
        ({"age": "12"}, "choose one of the options"),
    ]
    for change, message in bad:
        with pytest.raises(SurveyError, match=message):
            clean_answers(survey, ANSWERS | change)


def test_a_broken_survey_file_is_refused(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text("questions:\n  - {id: a, kind: text, label: A}\n")
    with pytest.raises(ValueError, match="use: subreddits"):
        load_survey(f)
    f.write_text("questions:\n  - {id: a, kind: list, label: A, use: subreddits, extra: 1}\n")
    with pytest.raises(ValueError, match="extra"):
        load_survey(f)


# -- with the real persona engine and diffusion model (the service lake) -----------------


@pytest.fixture(scope="module")
def renderer_cfg(service_lake, tmp_path_factory):
    from jobs.config import load_config

    db = tmp_path_factory.mktemp("study") / "study.sqlite"
    return load_config("conf/local.yaml", [*service_lake["args"], f"study.db={db}"])


def test_the_survey_becomes_the_cold_starts_new_user(renderer_cfg):
    from service.cold_start import PersonaEngine

    engine = PersonaEngine(renderer_cfg)
    survey = load_survey(SURVEY)
    answers = clean_answers(survey, ANSWERS)
    user = new_user(survey, answers, engine.resolve)
    assert user.subreddits == ("AskReddit", "r/no_such_sub_xyz")
    texts = [t for s, t in user.comments]
    assert all(s == "AskReddit" for s, _ in user.comments)  # the first known one
    assert texts == [
        ANSWERS["about"],
        ANSWERS["visual"],
        "I am in my early thirties. I live in Europe.",
    ]
    out = engine.persona(user)
    assert out.status == "done" and out.unknown_subreddits == ["r/no_such_sub_xyz"]
    assert out.persona["demographics"]["age"] == "25-34"
    with pytest.raises(SurveyError, match="none of the communities") as e:
        new_user(
            survey,
            clean_answers(survey, ANSWERS | {"communities": "zzz_1, zzz_2"}),
            engine.resolve,
            ["AskReddit", "pics"],
        )
    assert "AskReddit" in str(e.value)


def test_the_worker_resumes_a_job_a_crashed_worker_left_running(renderer_cfg):
    from service.study.render import StudyRenderer, stored_user
    from service.study.server import open_store
    from service.study.worker import Worker

    clock = Clock()
    store = open_store(renderer_cfg)
    store.db.clock = clock
    study, codes = store.create_study(
        "resume", list(COLD_METHODS), ["a lighthouse at dawn"], 3, 1, COLD_METHODS
    )
    rater = _open(store, codes[0])
    survey = load_survey(SURVEY)
    renderer = StudyRenderer(renderer_cfg, store)
    answers = clean_answers(survey, ANSWERS)
    user = new_user(survey, answers, renderer.engine.resolve)
    store.start(
        rater,
        {
            "answers": answers,
            "persona_input": {"subreddits": list(user.subreddits), "comments": user.comments},
        },
        plan_pairs(1, list(COLD_METHODS), 3),
    )
    queue = JobQueue(store.db, lease_s=60, max_attempts=3)
    crashed = queue.claim()  # a worker takes the persona job, then dies
    assert crashed.kind == "persona" and crashed.attempts == 1
    assert queue.claim() is None  # leased: no one else takes it meanwhile
    clock.t += 61  # the lease passes (a restart finds it running)
    worker = Worker(queue, renderer)
    assert worker.drain() == 4  # the persona again, then its three images
    job = store.db.one("SELECT state, attempts FROM jobs WHERE id = ?", (crashed.id,))
    assert (job["state"], job["attempts"]) == ("done", 2)
    assert queue.counts(study) == {"pending": 0, "running": 0, "done": 4, "failed": 0}
    # the crashed worker finishing late changes nothing
    assert not queue.persona_done(crashed, {"text": "stale"})
    assert store.persona(rater)["text"] != "stale"
    assert store.db.one("SELECT state FROM raters WHERE id = ?", (rater,))[0] == "voting"
    pair = store.pairs(rater)[0]
    rows = store.db.all("SELECT * FROM images WHERE rater = ?", (rater,))
    prompts = {r["method"]: (r["prompt"], r["negative"]) for r in rows}
    assert prompts["zero_shot"] != prompts["none"]  # the persona made a difference
    assert prompts["viper"][0].startswith("a lighthouse at dawn, ")  # its likes appended
    assert prompts["none"][1] is None  # no negative prompt but viper's (its dislikes)
    made = {r["method"]: (store.db.folder / r["path"]).read_bytes() for r in rows}
    for data in made.values():
        im = Image.open(io.BytesIO(data))
        assert im.format == "PNG" and im.size[0] >= 8
    assert made["zero_shot"] != made["none"]  # one seed for both, two prompts: two images
    assert store.image_file(rater, pair.left_image) is not None
    assert store.image_file("r_someone_else", pair.left_image) is None
    # viper's preferences: one cold-start call per rater, dropped when they delete
    kept = renderer.preferences(rater, stored_user(store.survey(rater)))
    assert renderer.preferences(rater, stored_user(store.survey(rater))) is kept
    renderer.forget(rater)
    assert renderer.preferences(rater, stored_user(store.survey(rater))) is not kept


def test_the_cli_creates_prints_invites_once_exports_and_shows_results(tmp_path):
    from jobs.cli import app

    db, lake = tmp_path / "s" / "study.sqlite", tmp_path / "lake"
    args = [f"study.db={db}", f"lake.root={lake}", "study.public_url=https://study.example/"]
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("# two prompts\na harbour at dawn\n\na red boat\n")
    run = CliRunner().invoke
    out = run(
        app,
        [
            "study",
            "create",
            "--methods",
            "zero_shot,none",
            "--prompts",
            str(prompts),
            "--raters",
            "2",
            "--name",
            "fog",
            *args,
        ],
    )
    assert out.exit_code == 0, out.output
    links = [line for line in out.output.splitlines() if line.startswith("https://")]
    assert len(links) == 2 and all(link.startswith("https://study.example/i/") for link in links)
    assert "2 votes per rater" in out.output  # every prompt x method pair by default
    store = Store(Database(db))
    (study,) = store.studies()
    for link in links:
        rater = _open(store, link.rsplit("/", 1)[1])
        _voting(store, JobQueue(store.db), rater)
        for p in store.pairs(rater):
            _vote_for(store, rater, p.id, "zero_shot")
    out = run(app, ["study", "results", *args])
    assert out.exit_code == 0, out.output
    assert "raters finished: 2" in out.output and "votes: 4" in out.output
    assert "zero_shot" in out.output and "0.125" in out.output  # 4 of 4: p = 2 / 16
    target = tmp_path / "votes.parquet"
    out = run(app, ["study", "export", "--out", str(target), "--lake", *args])
    assert out.exit_code == 0, out.output
    assert pq.read_table(target).num_rows == 4 == Lake(lake).read("bench/study_votes").num_rows
    out = run(
        app,
        [
            "study",
            "create",
            "--methods",
            "zero_shot,k_shot",
            "--prompts",
            str(prompts),
            "--raters",
            "1",
            *args,
        ],
    )
    assert out.exit_code == 2 and "unknown method 'k_shot'" in out.output
    assert run(app, ["study", "export", *args]).exit_code == 2  # nothing asked


def test_refusals_over_real_http(tmp_path, monkeypatch):
    """Hostile or wrong requests to a real server: JSON {"error", "detail"}, no trace."""
    import httpx

    from jobs.config import load_config
    from service.study.app import create_app
    from service.study.server import build_state

    token = "a-long-admin-token-0123456789"
    cfg = load_config("conf/local.yaml", [f"study.db={tmp_path / 'study.sqlite'}"])
    monkeypatch.delenv("ZIPP_STUDY_ADMIN_TOKEN", raising=False)
    with running(create_app(build_state(cfg), run_worker=False)) as url:
        off = httpx.get(f"{url}/admin/studies/x", headers={"Authorization": f"Bearer {token}"})
        assert off.status_code == 503 and "ZIPP_STUDY_ADMIN_TOKEN" in off.json()["detail"]
    monkeypatch.setenv("ZIPP_STUDY_ADMIN_TOKEN", token)
    state = build_state(cfg)
    with running(create_app(state, run_worker=False)) as url, httpx.Client(base_url=url) as c:
        bearer = {"Authorization": f"Bearer {token}"}
        assert c.get("/admin").status_code == 401
        wrong = c.get("/admin", headers={"Authorization": "Bearer not-the-token-at-all"})
        assert wrong.status_code == 401 and wrong.json()["error"] == "not allowed"
        made = c.post(
            "/admin/studies",
            headers=bearer,
            data={"methods": ["none", "zero_shot"], "prompts": "a\nb", "raters": "1"},
        )
        assert made.status_code == 200, made.text
        bad = c.post(
            "/admin/studies", headers=bearer, data={"methods": ["none", "k_shot"], "prompts": "a"}
        )
        assert bad.status_code == 400 and "unknown method" in bad.json()["detail"]
        invite = made.json()["invites"][0]
        assert c.get("/i/not-an-invite").status_code == 404
        opened = c.get(invite.removeprefix(url), follow_redirects=False)
        assert opened.status_code == 303 and opened.headers["location"] == "/study"
        cookie = opened.cookies["zipp_study"]
        assert "httponly" in opened.headers["set-cookie"].lower()
        page = c.get("/study", headers={"Accept": "text/html"})  # the client keeps the cookie
        assert page.status_code == 200 and "id='survey'" in page.text
        assert page.headers["referrer-policy"] == "no-referrer"
        assert "frame-ancestors" in page.headers["content-security-policy"]
        csrf = state.store.csrf(cookie)
        cases = [
            ({"csrf": "forged", "communities": "pics"}, {}, 403, "form expired"),
            ({"csrf": csrf, "x": "y" * 70_000}, {}, 413, "body too large"),
            ("{}", {"content-type": "application/json"}, 415, "unsupported body"),
        ]
        for body, headers, status, error in cases:
            r = c.post(
                "/study/survey",
                data=body if isinstance(body, dict) else None,
                content=body if isinstance(body, str) else None,
                headers=headers,
            )
            assert r.status_code == status and r.json()["error"] == error, r.text
            assert "Traceback" not in r.text
        no = httpx.post(f"{url}/study/vote", data={"pair": "p", "vote": "left"})
        assert no.status_code == 401 and no.json()["error"] == "no session"
        assert c.get("/study/image/i_x").status_code == 404
        missing = c.get("/nowhere")
        assert missing.status_code == 404 and set(missing.json()) == {"error", "detail"}
        assert c.get("/healthz").json()["ok"] is True
        # login guesses from one address: the bucket's burst, then 429 with Retry-After
        state.login_attempts = TokenBucket(1 / 12, 2)
        guesses = [c.post("/admin/login", data={"token": f"guess-{i}"}) for i in range(3)]
        assert [g.status_code for g in guesses] == [401, 401, 429]
        assert int(guesses[2].headers["retry-after"]) >= 1
        good = c.post("/admin/login", data={"token": token}, follow_redirects=False)
        assert good.status_code == 429  # the right token waits its turn too


def test_the_zipbench_report_has_a_human_ab_study_section_from_the_lake(voted, tmp_path):
    """`zipp study export --lake` -> bench/study_votes -> the report stage's section."""
    from rich.console import Console

    from evaluation.stages import report, score
    from jobs.runner import is_current, run_stage
    from tests.evaluation.test_report import _config, write_lake

    store, study, _, raters = voted
    root = tmp_path / "report" / "lake"
    write_lake(root)
    lake, cfg = Lake(root), _config(root)
    quiet = Console(file=io.StringIO())
    for stage in (score.STAGE, report.STAGE):
        run_stage(stage, cfg, lake, quiet)
    html = (root / "reports/zipbench/index.html").read_text()
    assert "Human A/B study" not in html  # no votes, no section
    to_lake(vote_rows(store.db, study), root)
    assert not is_current(report.STAGE, cfg, lake)[0]  # the votes are the report's input
    run_stage(report.STAGE, cfg, lake, quiet)
    out = root / "reports/zipbench"
    html = (out / "index.html").read_text()
    section = html[html.index("<h2>Human A/B study</h2>") :]
    section = section[: section.index("<h2>", 5)]
    assert "<table class='study'>" in section and "<td>zero_shot</td><td>none</td>" in section
    assert "12 votes by 4 raters" in section and "<td>0.8</td>" in section
    assert (out / "study.png").stat().st_size > 1000
    assert not any(r in html for r in raters)  # the raters' ids stay in the votes table
