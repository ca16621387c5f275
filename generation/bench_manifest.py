"""The frozen ZIPBench manifest (`zipp bench build`): what defines a built benchmark, to
rebuild it elsewhere and check the selection comes out the same."""

from __future__ import annotations

import json
from pathlib import Path

from schemas.tables import BENCH_MANIFEST as MANIFEST
from storage.lake import Lake

FROZEN_SECTIONS = ("bench", "personas", "llm", "rewrite", "diffusion")

TABLES = ("bench/users", "bench/references", "bench/prompts", "bench/rewrites", "bench/images")


def freeze(cfg, lake: Lake, llm_labels: list[str]) -> dict:
    """Write the manifest of a built ZIPBench: the config sections that define it, the
    selected users, references and prompt ids, models and every bench table's rows and
    fingerprint."""
    users = lake.read("bench/users")
    prompts = lake.read("bench/prompts")
    images = lake.read("bench/images")
    manifest = {
        "config": {s: getattr(cfg, s).model_dump(mode="json") for s in FROZEN_SECTIONS},
        "users": users["user_id"].to_pylist(),
        "references": dict(
            zip(
                map(str, users["user_id"].to_pylist()), users["references"].to_pylist(), strict=True
            )
        ),
        "prompts": sorted(
            set(zip(prompts["user_id"].to_pylist(), prompts["prompt_id"].to_pylist(), strict=True))
        ),
        "models": sorted(set(images["model"].to_pylist())),
        "llms": llm_labels,
        "tables": {
            name: {"rows": lake.rows(name), "fingerprint": lake.fingerprint(name)}
            for name in TABLES
        },
    }
    path = lake.path(MANIFEST)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(manifest, indent=1, default=str))
    tmp.replace(path)
    return manifest


def manifest_overrides(path: str) -> list[str]:
    """`key=value` overrides that restore a frozen manifest's config sections."""
    data = json.loads(Path(path).read_text())
    return [
        f"{section}.{key}={json.dumps(value)}"
        for section, values in data["config"].items()
        for key, value in values.items()
    ]


def compare(frozen: dict, rebuilt: dict) -> list[str]:
    """What differs between a frozen manifest and a rebuild (empty: reproduced)."""

    def norm(v):
        return json.loads(json.dumps(v, default=str))

    keys = ("users", "references", "prompts", "models", "llms")
    return [k for k in keys if norm(frozen.get(k)) != norm(rebuilt.get(k))]
