"""ZIPBench generation on the tiny random pipeline (`diffusion.model`, a fixture): every
planned image made once, stored by content hash, the same after a kill -9 and resume;
media/ holds only what bench/images references (a deleted user's images disappear);
held-out references (all images of a held-out post) never reach the personas' evidence,
the rewriters' examples or Pigeon's conditioning images."""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from PIL import Image
from rich.console import Console

from jobs.config import load_config
from jobs.dag import BY_NAME
from jobs.runner import is_current, run_stage, stage_io
from storage.lake import Lake, RowLog
from tests.jobs.test_llm_stages import write_world
from tests.static_server import serve_folder

BEFORE = [BY_NAME[n] for n in ("split", "prompts", "personas", "preferences", "rewrite")]
GENERATE = BY_NAME["generate"]
SCORE_REPORT = [BY_NAME["score"], BY_NAME["report"]]
#: the random tiny pipeline (a fixture: its images are noise), built once per run
TINY = Path(tempfile.gettempdir()) / f"zipp-test-tiny-sd-{os.getpid()}"
ARGS = [
    f"diffusion.model={TINY}",
    "ray.num_cpus=2",
    "bench.users=4",
    "bench.prompts_per_user=2",
    "personas.snippets_per_subreddit=6",
    "diffusion.steps=3",
    "diffusion.batch_size=4",
    "diffusion.seeds=1",
]


def _run(root: Path, stages, *extra: str, force: bool = False) -> None:
    cfg = load_config(None, [f"lake.root={root}", *ARGS, *extra])
    for stage in stages:
        run_stage(stage, cfg, Lake(root), Console(file=io.StringIO()), force=force)


def _pixels(root: Path, sha256: str) -> np.ndarray:
    """An image of the lake's media/ by its hash, as int16 pixels."""
    with Image.open(root / "media" / sha256[:2] / f"{sha256}.png") as im:
        return np.asarray(im.convert("RGB"), np.int16)


def _hashes(root: Path) -> dict[tuple, str]:
    """(user, prompt, method, llm, seed index, image id) -> sha256 of every image."""
    cols = ("user_id", "prompt_id", "method", "llm", "seed_index", "image_id")
    t = Lake(root).read("bench/images")
    keys = zip(*(t[c].to_pylist() for c in cols), strict=True)
    return dict(zip(keys, t["sha256"].to_pylist(), strict=True))


@pytest.fixture(scope="module")
def lakes(tmp_path_factory):
    """Two copies of one lake, up to the rewrites; the first generated without a break."""
    from tests.tiny_diffusion import build_tiny_pipeline

    build_tiny_pipeline(TINY)
    base = tmp_path_factory.mktemp("gen")
    first, second = base / "a", base / "b"
    write_world(first)
    _run(first, BEFORE)
    shutil.copytree(first, second)
    _run(first, [GENERATE])
    return first, second


def test_every_planned_image_is_made_once_and_stored_by_its_hash(lakes):
    root, _ = lakes
    lake = Lake(root)
    images = lake.read("bench/images")
    prompts, rewrites = lake.read("bench/prompts"), lake.read("bench/rewrites")
    assert images.num_rows == prompts.num_rows + rewrites.num_rows  # base + each rewrite
    assert len(set(images["image_id"].to_pylist())) == images.num_rows
    done = images.filter(pc.equal(images["status"], "done")).to_pylist()
    failed_rewrites = rewrites.filter(pc.equal(rewrites["status"], "failed")).num_rows
    assert len(done) == images.num_rows - failed_rewrites
    for r in done:
        path = root / r["path"]
        assert path.is_file() and r["path"] == f"media/{r['sha256'][:2]}/{r['sha256']}.png"
        import hashlib

        assert hashlib.sha256(path.read_bytes()).hexdigest() == r["sha256"]
        assert (r["width"], r["height"]) == (32, 32) and not r["smoke_model"]
    by = {}
    for r in done:  # same user and prompt: every method starts from the same seed
        by.setdefault((r["user_id"], r["prompt_id"]), set()).add(r["seed"])
    assert all(len(seeds) == 1 for seeds in by.values())
    assert {r["method"] for r in done} >= {"base", "none", "zero_shot", "viper"}


def test_a_killed_generation_resumes_to_the_same_image_hashes(lakes):
    first, second = lakes
    cmd = [
        sys.executable,
        "-m",
        "jobs.generate",
        f"lake.root={second}",
        *ARGS,
        "diffusion.batch_size=1",
    ]
    proc = subprocess.Popen(
        cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    log = RowLog(Lake(second), "generate", "bench/images", key="image_id")
    deadline = time.time() + 180
    while log.read().num_rows < 3 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    made_before_kill = log.read().num_rows
    assert 3 <= made_before_kill < len(_hashes(first)), "the run was not killed part-way"
    _run(second, [GENERATE])
    # the same images, none lost or made twice; pixels equal up to float rounding, since
    # a resumed run batches the rest differently (CPU kernels round per batch shape)
    a, b = _hashes(first), _hashes(second)
    assert a.keys() == b.keys()
    differ = [k for k in a if a[k] != b[k]]
    assert len(differ) <= len(a) // 10, differ
    for k in differ:
        x, y = (_pixels(root, h) for root, h in ((first, a[k]), (second, b[k])))
        assert np.abs(x - y).max() <= 2, k
    assert not log.dir.exists()
    cfg = load_config(None, [f"lake.root={second}", *ARGS])
    assert is_current(GENERATE, cfg, Lake(second))[0]


def test_references_stay_out_of_evidence_and_examples(lakes):
    root, _ = lakes
    lake = Lake(root)
    refs = {r["user_id"]: r["references"] for r in lake.read("bench/users").to_pylist()}
    assert refs and all(len(v) == 1 for v in refs.values())
    titles = {r["post_id"]: r["title"] for r in lake.read("silver/user_images").to_pylist()}
    personas = {r["user_id"]: r for r in lake.read("gold/personas").to_pylist()}
    for user, keys in refs.items():
        post = keys[0].split(":")[0]
        assert post not in personas[user]["evidence_ids"]
        others = [f"p{user}_{i}" for i in range(3) if f"p{user}_{i}" != post]
        assert set(others) <= set(personas[user]["evidence_ids"])  # history titles are in
    for r in lake.read("bench/rewrites").to_pylist():
        post = refs[r["user_id"]][0].split(":")[0]
        assert titles[post] not in (r["examples"] or [])


def _chromium_dom(page: Path) -> str:
    """The page's DOM after load, from Debian's headless Chromium (`make test` installs it)."""
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    assert exe, "Chromium is missing: `make test` installs it (apt-get install chromium)"
    cmd = [
        exe,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--virtual-time-budget=10000",
        "--dump-dom",
        page.as_uri(),
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True).stdout


def test_the_report_renders_its_table_and_image_grids_in_chromium(lakes):
    import re

    root, _ = lakes
    _run(root, SCORE_REPORT, "judge.backend=template")  # whatever the profile's default
    lake = Lake(root)
    scores = lake.read("bench/scores")
    done = lake.read("bench/images").filter(pc.equal(lake.read("bench/images")["status"], "done"))
    assert scores.num_rows == done.num_rows  # one score row per made image
    assert set(scores["llm"].to_pylist()) == {"template:template"}
    assert all("template judge, not an LLM" in r for r in scores["judge_reason"].to_pylist())
    index = root / "reports/zipbench/index.html"
    dom = _chromium_dom(index)
    body = re.search(r"<body([^>]*)>", dom).group(1)
    total = int(re.search(r'data-images-total="(\d+)"', body).group(1))
    loaded = int(re.search(r'data-images-loaded="(\d+)"', body).group(1))
    assert total > 0 and loaded == total  # every plot and grid image decoded
    table = re.search(r"<table class=\"methods\">(.*?)</table>", dom, re.S).group(1)
    methods = re.findall(r"<tr><td>([a-z_]+)</td>", table)
    assert {"base", "none", "zero_shot", "k_shot", "viper"} <= set(methods)
    assert "CS win vs swapped" in table and "pref win vs swapped" in table and "pref ↑" in table
    assert all(0 <= p <= 1 for p in scores["preference"].to_pylist() if p is not None)
    grids = re.findall(r'<div class="grid">', dom)
    assert len(grids) == 4  # one per benchmark user (report.grids=6, 4 users)
    assert dom.count("<figure>") >= 4 * 5
    # the random pipeline is a fixture named by its path, not the trained smoke model
    assert "Smoke model" not in dom and "Judge: template, not an LLM" in dom
    assert "http://" not in dom.split("<body", 1)[1].replace("http://127.0.0.1:1/", "")


def test_bench_build_freezes_a_manifest_a_rebuild_reproduces(lakes, tmp_path):
    import json

    from typer.testing import CliRunner

    from jobs.cli import app

    root = tmp_path / "built"
    shutil.copytree(lakes[0], root)
    args = [f"lake.root={root}", *ARGS]
    first = CliRunner().invoke(app, ["bench", "build", *args])
    assert first.exit_code == 0, first.output
    frozen = root / "_manifests/zipbench.json"
    data = json.loads(frozen.read_text())
    assert len(data["users"]) == 4 and data["models"] == [str(TINY)]
    assert data["config"]["bench"]["users"] == 4
    kept = tmp_path / "zipbench.json"
    kept.write_text(frozen.read_text())
    again = CliRunner().invoke(
        app, ["bench", "build", "--manifest", str(kept), f"lake.root={root}"]
    )
    assert again.exit_code == 0 and "rebuild matches" in again.output, again.output
    other = CliRunner().invoke(
        app, ["bench", "build", "--manifest", str(kept), f"lake.root={root}", "bench.users=3"]
    )
    assert other.exit_code == 2 and "rebuild differs" in other.output and "users" in other.output


def test_an_llm_judge_sees_the_persona_and_the_image(lakes, tmp_path, monkeypatch):
    from tests.llm_server import ChatServer

    first, _ = lakes
    lake = tmp_path / "judged"
    shutil.copytree(first, lake)
    monkeypatch.setenv("ZIPP_TEST_JUDGE_KEY", "sk-judge-5e1f")

    def plan(key: str, attempt: int) -> str | None:
        return "bad_json" if int(key, 16) % 4 == 0 else None  # a quarter never parses

    with ChatServer(api_key="sk-judge-5e1f", plan=plan) as server:
        judge = [
            "judge.backend=openai",
            "judge.model=vision-model",
            f"judge.base_url={server.url}",
            "judge.api_key_env=ZIPP_TEST_JUDGE_KEY",
        ]
        _run(lake, SCORE_REPORT, *judge)
    scores = Lake(lake).read("bench/scores")
    done = scores.filter(pc.equal(scores["status"], "done"))
    failed = scores.num_rows - done.num_rows
    assert done.num_rows > 0 and failed > 0
    assert set(scores["llm"].to_pylist()) == {"openai:vision-model"}
    assert set(done["judge_score"].to_pylist()) == {7.0}  # 1 would mean no image was sent
    assert set(done["judge_reason"].to_pylist()) == {"saw an image: True"}
    assert all(t > 0 for t in done["prompt_tokens"].to_pylist())
    # a failed judge call costs the image its judge score only, not its CLIPScore or CMMD
    assert scores.filter(pc.is_null(scores["clip_ref"])).num_rows == 0
    summary = pq.read_table(Lake(lake).path("reports/zipbench") / "summary.parquet")
    assert sum(summary["images"].to_pylist()) == scores.num_rows
    assert set(summary["judge"].to_pylist()) == {7.0}


def test_pigeon_renders_from_history_images_and_its_ids_follow_the_adapter(lakes, tmp_path):
    """The Pigeon baseline through the stage: a tiny IP-Adapter, history images fetched
    from a local server; a new adapter scale remakes the pigeon images only."""
    import pyarrow as pa
    from PIL import Image

    from tests.tiny_diffusion import build_tiny_ip_adapter

    first, _ = lakes
    root = tmp_path / "pigeon"
    shutil.copytree(first, root)
    lake = Lake(root)
    www = tmp_path / "www"
    www.mkdir()
    images = lake.read("silver/user_images")
    urls = []
    for i, url in enumerate(images["image_url"].to_pylist()):
        name = url.rsplit("/", 1)[1]
        Image.new("RGB", (16, 16), (40 * i % 256, 90, 200)).save(www / name)
        urls.append(name)
    adapter = build_tiny_ip_adapter(tmp_path / "adapter")
    extra = [f"diffusion.ip_adapter={adapter}", "images.allow_hosts=[127.0.0.1]"]
    with serve_folder(www) as base:
        column = images.schema.get_field_index("image_url")
        served = pa.array([f"{base}/{u}" for u in urls], pa.string())
        lake.write_table("silver/user_images", images.set_column(column, "image_url", served))
        _run(root, [GENERATE], *extra)
        rows = lake.read("bench/images").to_pylist()
        _run(root, [GENERATE], *extra, "diffusion.ip_adapter_scale=0.1")
        again = lake.read("bench/images").to_pylist()
    pigeon = [r for r in rows if r["method"] == "pigeon"]
    assert pigeon and all(r["status"] == "done" for r in pigeon), pigeon[:2]
    assert len(pigeon) == lake.rows("bench/prompts")  # one per base prompt and seed
    ids = {r["image_id"] for r in rows if r["method"] != "pigeon"}
    assert ids == {r["image_id"] for r in again if r["method"] != "pigeon"}  # kept as made
    remade = {r["image_id"]: r["sha256"] for r in again if r["method"] == "pigeon"}
    assert len(remade) == len(pigeon) and not set(remade) & {r["image_id"] for r in pigeon}
    assert set(remade.values()) != {r["sha256"] for r in pigeon}  # the scale was applied


def _generate_io(root: Path, *extra: str):
    cfg = load_config(None, [f"lake.root={root}", *ARGS, *extra])
    return stage_io(GENERATE, cfg, Lake(root), Console(file=io.StringIO()))


def test_media_keeps_only_what_bench_images_references(lakes, tmp_path):
    """A deleted user's prompts and rewrites are gone upstream: the next generate drops
    their rows and their files, and any stray file under media/, and counts them."""
    from generation.stages.generate import generate

    root = tmp_path / "deleted"
    shutil.copytree(lakes[0], root)
    lake = Lake(root)
    stray = root / "media/zz/stray.png"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"not an image of any row")
    before = lake.read("bench/images")
    gone = before["user_id"][0].as_py()
    for name in ("bench/prompts", "bench/rewrites"):
        t = lake.read(name)
        lake.write_table(name, t.filter(pc.not_equal(t["user_id"], gone)))
    theirs = {r["path"] for r in before.to_pylist() if r["user_id"] == gone and r["path"]}
    others = {r["path"] for r in before.to_pylist() if r["user_id"] != gone and r["path"]}
    assert theirs - others
    io_ = _generate_io(root)
    generate(io_)  # nothing left to render: the other images resume as they were made
    after = lake.read("bench/images")
    assert gone not in after["user_id"].to_pylist()
    assert after.num_rows == before.num_rows - sum(
        1 for u in before["user_id"].to_pylist() if u == gone
    )
    files = {p.relative_to(root).as_posix() for p in (root / "media").rglob("*") if p.is_file()}
    assert files == {p for p in after["path"].to_pylist() if p}
    assert not stray.exists() and not stray.parent.exists()
    assert io_.details["removed"] == {"media files": len(theirs - others) + 1}


def test_pigeon_conditioning_comes_from_history_only(lakes, tmp_path, monkeypatch):
    """Every image of a held-out reference post is held out, gallery siblings included:
    none is ever a Pigeon conditioning image."""
    import pyarrow as pa

    import media.fetch
    from generation.stages.generate import history_images

    root = tmp_path / "gallery"
    shutil.copytree(lakes[0], root)
    lake = Lake(root)
    refs = lake.read("bench/references")
    user, post = refs["user_id"][0].as_py(), refs["post_id"][0].as_py()
    images = lake.read("silver/user_images")
    sibling = [r for r in images.to_pylist() if r["post_id"] == post][0] | {
        "position": 1,
        "image_url": "http://127.0.0.1:1/sibling.png",
    }
    lake.write_table(
        "silver/user_images",
        pa.concat_tables([images, pa.Table.from_pylist([sibling], schema=images.schema)]),
    )
    lake.write_table(  # the split holds the whole post out (as `split` writes it)
        "bench/references",
        pa.concat_tables(
            [
                refs,
                pa.Table.from_pylist([{k: sibling.get(k) for k in refs.schema.names}], refs.schema),
            ]
        ),
    )
    monkeypatch.setattr(media.fetch, "fetch_image", lambda url, *a, **k: url.encode())
    io_ = _generate_io(root, "diffusion.history_images=10", "diffusion.history_filter=false")
    got = history_images(io_, [{"user_id": user, "prompt_id": "p", "prompt": "a photo"}])
    held = {r["image_url"] for r in lake.read("bench/references").to_pylist()}
    mine = {r["image_url"] for r in images.to_pylist() if r["user_id"] == user}
    assert {b.decode() for b in got[user, "p"]} == mine - held and len(mine - held) == 2
