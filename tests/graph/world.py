"""A small synthetic silver lake with planted communities, for the encoder's tests.

Users belong to one or two planted communities; they post in their communities'
subreddits (and now and then in a few general ones; with `busy_general`, often and more
than anywhere else), their images carry their communities' taste, and subreddit text
vectors sit around their community's centroid.
Written through `Lake.write_table`, so every table has its declared schema.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from schemas.silver import IMAGE_EMBEDDINGS
from storage.lake import Lake

TEXT_DIM = 16
IMAGE_DIM = 8
T0 = 1_620_000_000  # 2021-05-03, seconds
DAY = 86_400


def write_silver_world(
    root: Path,
    users: int = 300,
    communities: int = 4,
    subs_per_community: int = 4,
    general_subs: int = 3,
    seed: int = 0,
    busy_general: bool = False,
) -> dict:
    """Write silver/{users,subreddits,edges,node_features,image_embeddings} under lake
    `root`; returns the planted truth:

    * ``user_communities``: user id -> sorted list of planted communities
    * ``subreddit_community``: subreddit id -> community (None for general subreddits)
    * ``roles``: user id -> "train" or "inductive"
    * ``image_users``: sorted user ids that have images
    """
    rng = np.random.default_rng(seed)
    lake = Lake(root)

    # subreddits: community c owns ids c*spc .. c*spc+spc-1; general ones come last
    spc = subs_per_community
    num_subs = communities * spc + general_subs
    sub_comm: list[int | None] = [i // spc for i in range(communities * spc)]
    sub_comm += [None] * general_subs
    sub_names = [f"c{i // spc}_s{i % spc}" for i in range(communities * spc)]
    sub_names += [f"general{j}" for j in range(general_subs)]

    # users: one or two communities each, ~10% held out as inductive
    n_comm = np.where(rng.random(users) < 0.3, 2, 1)
    user_comms = [
        sorted(rng.choice(communities, size=min(k, communities), replace=False).tolist())
        for k in n_comm
    ]
    inductive = rng.random(users) < 0.1
    roles = np.where(inductive, "inductive", "train")

    # edges: 2..spc subreddits of each of a user's communities, general ones sometimes
    eu, es, posts, comments, score = [], [], [], [], []
    for u in range(users):
        subs: list[int] = []
        for c in user_comms[u]:
            k = int(rng.integers(min(2, spc), spc + 1))
            subs += (c * spc + rng.choice(spc, size=k, replace=False)).tolist()
        for j in range(general_subs):
            if rng.random() < (0.6 if busy_general else 0.25):
                subs.append(communities * spc + j)
        # busy_general: general subreddits are where users are most active (as on Reddit)
        rates = (3.0, 6.0, 6.0, 12.0) if busy_general else (3.0, 6.0, 1.0, 2.0)
        for s in subs:
            planted = sub_comm[s] is not None
            p = int(rng.poisson(rates[0] if planted else rates[2]))
            cm = int(rng.poisson(rates[1] if planted else rates[3])) + (1 if p == 0 else 0)
            eu.append(u)
            es.append(s)
            posts.append(p)
            comments.append(cm)
            score.append(int(rng.integers(-5, 40)) * (p + cm))
    eu_a = np.asarray(eu, np.int32)
    es_a = np.asarray(es, np.int32)
    n_edges = len(eu_a)

    # splits: inductive users' edges all "inductive"; others ~80/10/10 with >= 1 train
    r = rng.random(n_edges)
    split = np.where(r < 0.1, "val", np.where(r < 0.2, "test", "train")).astype(object)
    split[inductive[eu_a]] = "inductive"
    for u in np.flatnonzero(~inductive):
        mine = np.flatnonzero(eu_a == u)
        if not (split[mine] == "train").any():
            split[mine[0]] = "train"

    first = T0 + rng.integers(0, 30 * DAY, n_edges)
    last = first + rng.integers(0, 30 * DAY, n_edges)
    lake.write_table(
        "silver/edges",
        pa.table(
            {
                "user_id": eu_a,
                "subreddit_id": es_a,
                "posts": np.asarray(posts, np.int32),
                "comments": np.asarray(comments, np.int32),
                "score_sum": np.asarray(score, np.int64),
                "first_utc": first,
                "last_utc": last,
                "split": split.tolist(),
            }
        ),
    )

    posts_a, comments_a = np.asarray(posts), np.asarray(comments)

    def per(index: np.ndarray, values: np.ndarray, n: int, how) -> np.ndarray:
        out = np.zeros(n, np.int64)
        for i in range(n):
            sel = values[index == i]
            out[i] = how(sel) if len(sel) else T0
        return out

    lake.write_table(
        "silver/users",
        pa.table(
            {
                "user_id": np.arange(users, dtype=np.int32),
                "author": [f"u{i}" for i in range(users)],
                "posts": np.bincount(eu_a, posts_a, minlength=users).astype(np.int64),
                "comments": np.bincount(eu_a, comments_a, minlength=users).astype(np.int64),
                "subreddits": np.bincount(eu_a, minlength=users).astype(np.int64),
                "first_utc": per(eu_a, first, users, np.min),
                "last_utc": per(eu_a, last, users, np.max),
                "role": roles.tolist(),
            }
        ),
    )
    lake.write_table(
        "silver/subreddits",
        pa.table(
            {
                "subreddit_id": np.arange(num_subs, dtype=np.int32),
                "subreddit": sub_names,
                "users": np.bincount(es_a, minlength=num_subs).astype(np.int64),
                "posts": np.bincount(es_a, posts_a, minlength=num_subs).astype(np.int64),
                "comments": np.bincount(es_a, comments_a, minlength=num_subs).astype(np.int64),
                "first_utc": per(es_a, first, num_subs, np.min),
                "last_utc": per(es_a, last, num_subs, np.max),
            }
        ),
    )

    # images: ~70% of users, 2..4 each, community taste + noise
    taste = rng.normal(size=(communities, IMAGE_DIM))
    img_rows: list[dict] = []
    visual: dict[int, list[np.ndarray]] = {}
    for u in range(users):
        if rng.random() >= 0.7:
            continue
        for k in range(int(rng.integers(2, 5))):
            c = user_comms[u][int(rng.integers(len(user_comms[u])))]
            vec = (taste[c] + 0.3 * rng.normal(size=IMAGE_DIM)).astype(np.float32)
            visual.setdefault(u, []).append(vec)
            img_rows.append(
                {
                    "user_id": u,
                    "post_id": f"p{u}_{k}",
                    "position": 0,
                    "image_url": f"http://127.0.0.1/img/{u}/{k}.png",
                    "status": "ok",
                    "reason": None,
                    "sha256": f"{u:08x}{k:056x}",
                    "bytes": 1000 + k,
                    "encoder": "test-colour",
                    "embedding": vec.tolist(),
                }
            )
    lake.write_table(
        "silver/image_embeddings",
        pa.Table.from_pylist(img_rows, schema=IMAGE_EMBEDDINGS),
    )

    # node features: subreddit text around its community centroid (general: its own),
    # user visual = mean of their images
    centroids = rng.normal(size=(communities, TEXT_DIM))
    text = []
    for s in range(num_subs):
        base = centroids[sub_comm[s]] if sub_comm[s] is not None else rng.normal(size=TEXT_DIM)
        text.append((base + 0.3 * rng.normal(size=TEXT_DIM)).astype(np.float32))
    vis_users = sorted(visual)
    lake.write_table(
        "silver/node_features",
        pa.table(
            {
                "node_type": ["subreddit"] * num_subs + ["user"] * len(vis_users),
                "node_id": list(range(num_subs)) + vis_users,
                "feature_set": ["text"] * num_subs + ["visual"] * len(vis_users),
                "model": ["test-text"] * num_subs + ["test-colour"] * len(vis_users),
                "count": [8] * num_subs + [len(visual[u]) for u in vis_users],
                "vector": pa.array(
                    [t.tolist() for t in text]
                    + [np.mean(visual[u], axis=0).astype(np.float32).tolist() for u in vis_users],
                    pa.list_(pa.float32()),
                ),
            }
        ),
    )

    return {
        "user_communities": dict(enumerate(user_comms)),
        "subreddit_community": dict(enumerate(sub_comm)),
        "roles": dict(enumerate(roles.tolist())),
        "image_users": vis_users,
    }
