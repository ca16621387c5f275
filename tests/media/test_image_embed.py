"""Image fetch + embed and node features on a real local Ray, against a local HTTP server."""

from __future__ import annotations

import http.server
import threading
from collections import Counter

import numpy as np
import pyarrow as pa
import pytest

from media.image_embed import COLOUR, fetch_and_embed
from media.image_features import COLOUR_FEATURES, ClipImageEncoder, colour_features
from pipelines.text_features import default_text_model, text_features, visual_profiles
from schemas.silver import IMAGE_EMBEDDINGS, NODE_FEATURES
from world.images import render_png


@pytest.fixture(scope="module")
def ray_local():
    from engines.ray import ray_session

    ray_session(num_cpus=2)
    yield
    import ray

    ray.shutdown()


@pytest.fixture(scope="module")
def server():
    rng = np.random.default_rng(3)
    files = {f"/img{i}.png": render_png(rng.uniform(0, 1, 6), rng, 24) for i in range(6)}
    files["/notimage.png"] = b"<html>nope</html>"
    hits: Counter = Counter()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            hits[self.path] += 1
            body = files.get(self.path)
            self.send_response(200 if body else 404)
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", files, hits
    httpd.shutdown()


def rows(base: str, paths: list[str]) -> pa.Table:
    n = len(paths)
    return pa.table(
        {
            "user_id": pa.array([i % 3 for i in range(n)], pa.int32()),
            "post_id": [f"p{i}" for i in range(n)],
            "position": pa.array([0] * n, pa.int32()),
            "image_url": [base + p for p in paths],
        }
    )


def test_fetch_and_embed_every_row_ok_or_failed(ray_local, server):
    base, files, hits = server
    paths = [f"/img{i}.png" for i in range(6)] + ["/notimage.png", "/missing.png"]
    out = fetch_and_embed(
        rows(base, paths), ("127.0.0.1",), batch_size=3, fetch_kw={"retries": 0, "timeout": 5}
    )
    assert out.schema == IMAGE_EMBEDDINGS and out.num_rows == len(paths)
    by_post = {r["post_id"]: r for r in out.to_pylist()}
    for i in range(6):
        r = by_post[f"p{i}"]
        assert r["status"] == "ok" and r["encoder"] == COLOUR
        np.testing.assert_allclose(
            r["embedding"], colour_features(files[f"/img{i}.png"]), rtol=1e-5
        )
        assert len(r["embedding"]) == len(COLOUR_FEATURES)
    assert by_post["p6"]["status"] == "failed" and by_post["p6"]["reason"].startswith(
        "not_an_image"
    )
    assert by_post["p7"]["status"] == "failed" and "404" in by_post["p7"]["reason"]


def test_private_addresses_refused_without_a_request(ray_local, server):
    base, _, hits = server
    before = sum(hits.values())
    out = fetch_and_embed(rows(base, ["/img0.png", "/img1.png"]), (), batch_size=2)
    assert set(out["status"].to_pylist()) == {"failed"}
    assert all(r.startswith("blocked_address") for r in out["reason"].to_pylist())
    assert sum(hits.values()) == before


def test_visual_profiles_are_user_means():
    emb = pa.table(
        {
            "user_id": pa.array([1, 1, 2, 2], pa.int32()),
            "post_id": ["a", "b", "c", "d"],
            "position": pa.array([0] * 4, pa.int32()),
            "image_url": ["u"] * 4,
            "status": ["ok", "ok", "ok", "failed"],
            "reason": [None, None, None, "x"],
            "sha256": [None] * 4,
            "bytes": pa.array([None] * 4, pa.int64()),
            "encoder": [COLOUR] * 4,
            "embedding": [[1.0, 0.0], [3.0, 2.0], [5.0, 5.0], None],
        }
    ).cast(IMAGE_EMBEDDINGS)
    prof = {r["node_id"]: r for r in visual_profiles(emb).to_pylist()}
    assert prof[1]["vector"] == [2.0, 1.0] and prof[1]["count"] == 2
    assert prof[2]["vector"] == [5.0, 5.0] and prof[2]["count"] == 1


def test_packaged_minilm_text_features(ray_local):
    docs = [
        "r/analogphotography: film grain kodak portra darkroom scans",
        "r/filmphotography: kodak portra film negatives and darkroom prints",
        "r/streetfood: spicy ramen noodles and tacos at the night market",
    ]
    out = text_features([0, 1, 2], docs, [3, 3, 3], default_text_model())
    assert out.schema == NODE_FEATURES
    vec = np.asarray(out["vector"].to_pylist())
    assert vec.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(vec, axis=1), 1.0, rtol=1e-4)
    assert vec[0] @ vec[1] > vec[0] @ vec[2] + 0.1
    assert out["model"][0].as_py() == "sentence-transformers/all-MiniLM-L6-v2"


def test_tiny_clip_through_from_pretrained(ray_local, server, tmp_path):
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    cfg = CLIPConfig(
        text_config={
            "hidden_size": 16,
            "intermediate_size": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "vocab_size": 100,
            "max_position_embeddings": 16,
        },
        vision_config={
            "hidden_size": 16,
            "intermediate_size": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "image_size": 32,
            "patch_size": 8,
        },
        projection_dim=8,
    )
    path = tmp_path / "tiny-clip"
    CLIPModel(cfg).save_pretrained(path)
    CLIPImageProcessor(
        size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
    ).save_pretrained(path)
    base, files, _ = server
    enc = ClipImageEncoder(str(path))
    direct = enc([files["/img0.png"], files["/img1.png"]])
    assert direct.shape == (2, 8)
    np.testing.assert_allclose(np.linalg.norm(direct, axis=1), 1.0, rtol=1e-4)
    out = fetch_and_embed(
        rows(base, ["/img0.png", "/img1.png"]), ("127.0.0.1",), model=str(path), batch_size=2
    )
    got = {r["post_id"]: r for r in out.to_pylist()}
    assert got["p0"]["encoder"] == str(path)
    np.testing.assert_allclose(got["p0"]["embedding"], direct[0], rtol=1e-4, atol=1e-5)
