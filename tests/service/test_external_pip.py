"""`zipp bench external pip` end to end on PIP files the test writes (one JSONL per user),
images served from 127.0.0.1: personas from each user's prompts alone (cold start,
history-only), rewrites, smoke-model images and scores in external/pip/bench/*, an
expired link counted as a failed reference, and the report's section."""

from __future__ import annotations

import json

import pyarrow.compute as pc
from PIL import Image
from typer.testing import CliRunner

from storage.lake import Lake
from tests.static_server import serve_folder

#: one word per user that only their prompts use
WORDS = ("quokkazebra", "walrusquill", "lanternmoth", "cobaltfern", "emberkoi")
COLOURS = ((220, 30, 30), (30, 200, 40), (30, 40, 220), (230, 220, 30), (200, 40, 200))


def write_pip(folder, url):
    """Five users, four generations each (the last held out), one NSFW row; user 0's
    held-out image is gone (an expired signed link: 404)."""
    (folder / "img").mkdir(parents=True)
    for u, (word, rgb) in enumerate(zip(WORDS, COLOURS, strict=True)):
        lines = []
        for i in range(4):
            name = f"u{u}-{i}.png"
            if not (u == 0 and i == 3):
                shade = tuple(max(0, c - 12 * i) for c in rgb)
                Image.new("RGB", (8, 8), shade).save(folder / "img" / name)
            lines.append(
                {
                    "result_url": f"{url}/img/{name}?X-Amz-Signature=secret",
                    "prompt": f"a {word} in the garden, study {i}",
                    "resolution_power": 1,
                    "NSFW": False,
                    "proportion": "1:1",
                    "user_id": f"user-{u}",
                    "id": f"g{u}-{i}",
                }
            )
        if u == 1:
            lines.insert(1, lines[0] | {"id": "g1-x", "NSFW": True, "prompt": "nsfw row"})
        (folder / f"user-{u}.jsonl").write_text("\n".join(json.dumps(r) for r in lines) + "\n")


def test_pip_end_to_end(service_lake, tmp_path):
    from jobs.cli import app

    root = service_lake["root"]
    before = Lake(root).fingerprint("bench/scores")
    data = tmp_path / "pip"
    data.mkdir()
    with serve_folder(data) as url:
        write_pip(data, url)
        out = CliRunner().invoke(
            app,
            ["bench", "external", "pip", "--path", str(data), "-c", "conf/local.yaml",
             *service_lake["args"], "diffusion.seeds=1"],
        )  # fmt: skip
    assert out.exit_code == 0, out.output
    got = json.loads(out.output[out.output.index("{") :])
    assert got["users"] == 5 and got["prompts"] == 5
    assert got["failed_references"] == 1 and got["nsfw_rows_skipped"] == 1
    assert got["images_failed"] == 0 and got["personas_failed"] == 0

    lake = Lake(root / "external" / "pip")
    scores = lake.read("bench/scores")
    assert scores.num_rows == 5 * 4  # base + none, zero_shot, viper per user
    assert set(scores["method"].to_pylist()) == {"base", "none", "zero_shot", "viper"}
    prompts = {r["user_id"]: r for r in lake.read("bench/prompts").to_pylist()}
    assert all(p["prompt"].endswith("study 3") for p in prompts.values())  # newest held out
    refs = lake.read("bench/references").to_pylist()
    assert not any("secret" in r["image_url"] for r in refs)  # a signed link's query
    assert {r["post_id"] for r in refs} == {f"g{u}-3" for u in range(5)}
    expired = next(u for u, p in prompts.items() if WORDS[0] in p["prompt"])
    mine = scores.filter(pc.equal(scores["user_id"], expired))
    assert mine["clip_ref"].null_count == mine.num_rows  # its reference could not be had
    theirs = scores.filter(pc.not_equal(scores["user_id"], expired))
    assert theirs["clip_ref"].null_count == 0 and theirs["preference"].null_count == 0
    rewrites = lake.read("bench/rewrites").to_pylist()
    assert all(r["status"] == "done" for r in rewrites)
    for r in rewrites:  # the persona came from the user's own prompts only
        word = next(w for w in WORDS if w in r["base_prompt"])
        if r["method"] == "zero_shot":
            others = [w for w in WORDS if w != word]
            assert word in r["prompt"] and not any(w in r["prompt"] for w in others)
    assert Lake(root).fingerprint("bench/scores") == before  # ZIPBench's tables untouched
    html = (lake.path("reports/zipbench") / "index.html").read_text()
    assert "External benchmark: pip" in html and "id='external'" in html
    assert "failed references" in html and "user-0" not in html


def test_unknown_benchmarks_and_a_missing_path_are_one_line_errors():
    from jobs.cli import app

    bad = CliRunner().invoke(app, ["bench", "external", "flickr"])
    assert bad.exit_code != 0 and "unknown external benchmark 'flickr'" in bad.output
    assert "Traceback" not in bad.output
    nopath = CliRunner().invoke(app, ["bench", "external", "pip"])
    assert nopath.exit_code != 0 and "--path is required" in nopath.output
