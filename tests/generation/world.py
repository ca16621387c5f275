"""A small lake with what the generation stages read: users, subreddits, snippets, posted
images and attention ranks. Users of community "film" talk film words, "garden" users
garden words; attention ranks a user's community subreddits first."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from storage.lake import Lake

VOCAB = {
    "film": ["kodak", "portra", "grain", "darkroom", "aperture", "emulsion"],
    "garden": ["compost", "seedling", "tomato", "mulch", "trellis", "perennial"],
}
SUBS = ["FilmPhotos", "Darkroom", "GardenDaily", "Seedlings", "pics", "funny"]
SUB_COMMUNITY = {0: "film", 1: "film", 2: "garden", 3: "garden"}


def write_generation_world(root: Path, users: int = 12, seed: int = 0) -> dict[int, str]:
    """Write the tables; returns user id -> community."""
    rng = np.random.default_rng(seed)
    lake = Lake(root)
    community = {u: ("film", "garden")[u % 2] for u in range(users)}
    lake.write_table(
        "silver/subreddits",
        pa.table(
            {
                "subreddit_id": pa.array(range(len(SUBS)), pa.int32()),
                "subreddit": SUBS,
                "users": [users] * len(SUBS),
                "posts": [5] * len(SUBS),
                "comments": [20] * len(SUBS),
                "first_utc": [0] * len(SUBS),
                "last_utc": [1] * len(SUBS),
            }
        ),
    )
    lake.write_table(
        "silver/users",
        pa.table(
            {
                "user_id": pa.array(range(users), pa.int32()),
                "author": [f"user_{u}" for u in range(users)],
                "posts": [3 + u for u in range(users)],
                "comments": [10] * users,
                "subreddits": [3] * users,
                "first_utc": [0] * users,
                "last_utc": [1] * users,
                "role": ["train"] * users,
            }
        ),
    )
    att, snip, imgs = [], [], []
    for u, c in community.items():
        own = [s for s, sc in SUB_COMMUNITY.items() if sc == c]
        ranked = [*own, 4, 5]  # own community first, then general subreddits
        weights = np.array([0.4, 0.3, 0.2, 0.1])
        for rank, (s, w) in enumerate(zip(ranked, weights, strict=True), 1):
            att.append(
                {
                    "user_id": u,
                    "subreddit_id": s,
                    "attention": w,
                    "rank": rank,
                    "posts": 1,
                    "comments": 2,
                }
            )
            words = VOCAB.get(SUB_COMMUNITY.get(s, ""), ["cute", "meme", "today"])
            for k in range(1, 4):
                text = " ".join(rng.choice(words, size=8))
                snip.append(
                    {
                        "user_id": u,
                        "subreddit_id": s,
                        "rank": k,
                        "source": "comment",
                        "record_id": f"c{u}_{s}_{k}",
                        "text": text,
                        "score": 10 - k,
                        "created_utc": 100 + k,
                        "post_id": None,
                    }
                )
        for i in range(3):
            title = " ".join(rng.choice(VOCAB[c], size=4))
            snip.append(  # the post's title is a snippet too (ranked after the comments)
                {
                    "user_id": u,
                    "subreddit_id": own[0],
                    "rank": 4 + i,
                    "source": "title",
                    "record_id": f"p{u}_{i}",
                    "text": title,
                    "score": 1,
                    "created_utc": 1000 + i,
                    "post_id": f"p{u}_{i}",
                }
            )
            imgs.append(
                {
                    "user_id": u,
                    "post_id": f"p{u}_{i}",
                    "position": 0,
                    "media_id": None,
                    "subreddit": SUBS[own[0]],
                    "title": title,
                    "created_utc": 1000 + i,
                    "image_url": f"http://127.0.0.1:1/{u}_{i}.png",
                    "origin": "i.redd.it",
                }
            )
    lake.write_table(
        "silver/image_embeddings",
        pa.Table.from_pylist(
            [
                {
                    "user_id": r["user_id"],
                    "post_id": r["post_id"],
                    "position": 0,
                    "image_url": r["image_url"],
                    "status": "ok",
                    "reason": None,
                    "sha256": None,
                    "bytes": 100,
                    "encoder": "colour-v1",  # the weight-free default's 24 features
                    "embedding": rng.random(24).astype(np.float32).tolist(),
                }
                for r in imgs
            ]
        ),
    )
    lake.write_table("gold/attention", pa.Table.from_pylist(att))
    edges = [
        {
            "user_id": a["user_id"],
            "subreddit_id": a["subreddit_id"],
            "posts": a["posts"] + (3 if a["rank"] == 1 else 0),  # most active = own community
            "comments": a["comments"],
            "score_sum": 1,
            "first_utc": 0,
            "last_utc": 1,
            "split": "train",
        }
        for a in att
    ]
    lake.write_table("silver/edges", pa.Table.from_pylist(edges))
    lake.write_table("silver/snippets", pa.Table.from_pylist(snip))
    lake.write_table("silver/user_images", pa.Table.from_pylist(imgs))
    return community
