"""`zipp bench external rapidata` on RapidData rows the test writes (a Parquet file with
HF Image structs carrying bytes, a CSV with URLs served from 127.0.0.1 and one 404): each
scorer's pairwise agreement with the majority vote and SROCC/PLCC against the vote
shares, in external/rapidata/bench/* and the report."""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from service.external.run import run_external
from service.external.votes import agreement_table
from storage.lake import Lake
from tests.static_server import serve_folder

RED = [(230, 30, 30), (210, 50, 40), (240, 60, 20), (200, 30, 50), (220, 40, 40)]
BLUE = [(30, 40, 220), (40, 60, 200), (20, 30, 240), (50, 40, 210), (30, 70, 230)]


def png(rgb) -> bytes:
    b = io.BytesIO()
    Image.new("RGB", (8, 8), rgb).save(b, "PNG")
    return b.getvalue()


def write_rapidata(folder, url):
    """Five pairs the crowd decides for the red image (by varied margins, red placed
    first or second), one tie, one pair whose image 404s."""
    (folder / "img").mkdir(parents=True)
    rows = []
    for i, (r, b) in enumerate(zip(RED, BLUE, strict=True)):
        red_first = i % 2 == 0
        win, lose = 10 + 5 * i, 3
        rows.append(
            {
                "prompt": f"a still life, study {i}",
                "image1": {"bytes": png(r if red_first else b), "path": None},
                "image2": {"bytes": png(b if red_first else r), "path": None},
                "votes_image1": win if red_first else lose,
                "votes_image2": lose if red_first else win,
                "model1": "red-first" if red_first else "blue-first",
                "model2": "other",
            }
        )
    pq.write_table(pa.Table.from_pylist(rows), folder / "pairs.parquet")
    Image.new("RGB", (8, 8), RED[0]).save(folder / "img" / "r.png")
    Image.new("RGB", (8, 8), BLUE[0]).save(folder / "img" / "b.png")
    (folder / "more.csv").write_text(
        "prompt,image1,image2,votes_image1,votes_image2,model1,model2\n"
        f"a tie,{url}/img/r.png,{url}/img/b.png,4,4,m1,m2\n"
        f"gone,{url}/img/r.png,{url}/img/missing.png,9,1,m1,m2\n"
    )


def test_rapidata_end_to_end(service_lake, tmp_path):
    from rich.console import Console

    data = tmp_path / "rapidata"
    data.mkdir()
    with serve_folder(data) as url:
        write_rapidata(data, url)
        got = run_external(config(service_lake), "rapidata", data, Console(file=io.StringIO()))
    assert got["pairs"] == 7 and got["images_failed"] == 1 and got["decided_pairs"] == 5
    by = {r["scorer"].split(" (")[0]: r for r in got["agreement"]}
    crowd = by["CLIPScore vs the crowd's other choices"]
    assert crowd["pairs"] == 5 and crowd["agreement"] == 1.0  # prefers the red image
    assert crowd["srocc"] is not None and crowd["srocc"] > 0
    assert by["CLIPScore vs the prompt"]["pairs"] == 0  # colour features: no text side
    lake = Lake(service_lake["root"] / "external" / "rapidata")
    scores = lake.read("bench/scores")
    assert scores.num_rows == 13 and set(scores["status"].to_pylist()) == {"skipped"}
    images = lake.read("bench/images").to_pandas()
    assert (images["status"] == "failed").sum() == 1
    assert "http_status" in images.loc[images["status"] == "failed", "reason"].iloc[0]
    report = lake.path("reports/zipbench")
    html = (report / "index.html").read_text()
    assert "Scorers vs the human votes" in html and "External benchmark: rapidata" in html
    assert (report / "agreement.parquet").exists() and (report / "votes.parquet").exists()


def test_agreement_counts_a_scorers_tie_as_half_and_needs_three_pairs():
    import pandas as pd

    votes = pd.DataFrame(
        {
            "votes_1": [5, 1],
            "votes_2": [1, 5],
            "share_1": [5 / 6, 1 / 6],
            "clip_prompt_1": [0.3, 0.2],
            "clip_prompt_2": [0.1, 0.2],
            "clip_ref_1": [float("nan")] * 2,
            "clip_ref_2": [0.1, 0.2],
        }
    )
    t = agreement_table(votes).set_index("pairs")
    row = agreement_table(votes).iloc[0]
    assert row["pairs"] == 2 and row["agreement"] == 0.75 and pd.isna(row["srocc"])
    assert 0 in t.index  # clip_ref: no pair with both scores


def config(service_lake):
    """The service lake's config, one image per (user, prompt, method)."""
    from jobs.config import load_config

    return load_config("conf/local.yaml", [*service_lake["args"], "diffusion.seeds=1"])
