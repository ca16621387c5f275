"""`zipp bench external pickapic` end to end on Pick-a-Pic v2 rows the test writes (two
Parquet files: one with the images as `jpg_0`/`jpg_1` bytes, one with image URLs served
from 127.0.0.1): a user's chosen images with their captions are their history, ties are
skipped, the newest choice is held out, a 404 reference is counted as failed."""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from service.external.run import run_external
from storage.lake import Lake
from tests.static_server import serve_folder

WORDS = ("glassowl", "mossbell", "tidecrown", "saffronkite")


def png(rgb) -> bytes:
    b = io.BytesIO()
    Image.new("RGB", (8, 8), rgb).save(b, "PNG")
    return b.getvalue()


def write_pickapic(folder, url):
    """Four users, three choices each (created_at in reverse file order for user 0) and
    one tie; users 0-1 in bytes.parquet, users 2-3 by URL in urls.parquet, user 3's
    newest chosen image missing (404)."""
    (folder / "img").mkdir(parents=True)
    files: dict[str, list[dict]] = {"bytes": [], "urls": []}
    for u, word in enumerate(WORDS):
        kind = "bytes" if u < 2 else "urls"
        for i in range(3):
            a, b = f"{u}-{i}-a", f"{u}-{i}-b"
            chosen, other = png((200, 20 + 60 * u, 30 * i)), png((10, 10, 240))
            row = {
                "caption": f"a {word} at dusk, take {i}",
                "user_id": 100 + u,
                "ranking_id": u * 10 + i,
                "image_0_uid": a,
                "image_1_uid": b,
                "label_0": 1.0,
                "label_1": 0.0,
                "best_image_uid": a,
                "created_at": (2 - i if u == 0 else i) * 1000,
            }
            if kind == "bytes":
                row |= {"jpg_0": chosen, "jpg_1": other}
            else:
                if not (u == 3 and i == 2):
                    (folder / "img" / f"{a}.png").write_bytes(chosen)
                row |= {"image_0_url": f"{url}/img/{a}.png", "image_1_url": f"{url}/img/{b}.png"}
            files[kind].append(row)
        tie = files[kind][-1] | {"ranking_id": 999 + u, "label_0": 0.5, "label_1": 0.5}
        files[kind].append(tie)
    for kind, rows in files.items():
        pq.write_table(pa.Table.from_pylist(rows), folder / f"{kind}.parquet")


def test_pickapic_end_to_end(service_lake, tmp_path):
    from rich.console import Console

    data = tmp_path / "pickapic"
    data.mkdir()
    with serve_folder(data) as url:
        write_pickapic(data, url)
        got = run_external(
            config(service_lake), "pickapic", data, Console(file=io.StringIO()), users=4
        )
    assert got["users"] == 4 and got["tied_rows_skipped"] == 4
    assert got["failed_references"] == 1 and got["images_failed"] == 0
    lake = Lake(service_lake["root"] / "external" / "pickapic")
    prompts = {r["user_id"]: r["prompt"] for r in lake.read("bench/prompts").to_pylist()}
    assert prompts[100] == "a glassowl at dusk, take 0"  # newest by created_at, not file order
    assert prompts[102] == "a tidecrown at dusk, take 2"
    users = {r["user_id"]: r for r in lake.read("bench/users").to_pylist()}
    assert users[100]["images"] == 2 and users[100]["references"] == ["0-0-a:1"]
    scores = lake.read("bench/scores").to_pandas()
    assert len(scores) == 4 * 4
    assert scores[scores["user_id"] == 103]["clip_ref"].isna().all()  # its image 404s
    assert scores[scores["user_id"] != 103]["clip_ref"].notna().all()
    assert scores["preference"].notna().all()  # fitted on the four users' chosen images
    rewrites = lake.read("bench/rewrites").to_pandas()
    zero = rewrites[rewrites["method"] == "zero_shot"].set_index("user_id")["prompt"]
    assert all(WORDS[u] in zero[100 + u] for u in range(4))  # from their own captions
    html = (lake.path("reports/zipbench") / "index.html").read_text()
    assert "External benchmark: pickapic" in html and "tied rows skipped" in html


def config(service_lake):
    """The service lake's config, one image per (user, prompt, method)."""
    from jobs.config import load_config

    return load_config("conf/local.yaml", [*service_lake["args"], "diffusion.seeds=1"])
