"""PIP (Tailored Visions' personalised image prompting): one JSONL file per user, one
generation per line with `result_url, prompt, resolution_power, NSFW, proportion,
user_id, id`, oldest first. A user's prompts are their history (the images they got
from them too); the newest `references` generations are held out, their prompts the base
prompts and their images the references. NSFW rows are skipped (counted)."""

from __future__ import annotations

import json
from pathlib import Path

from evaluation.external import ExternalBench, split_history

NAME = "pip"
FIELDS = ("result_url", "prompt", "user_id", "id")


def load(root: Path, references: int, users: int | None = None) -> ExternalBench:
    """The PIP files under `root` (``*.jsonl``) -> an `ExternalBench`; ValueError naming
    the file and line of a bad row."""
    files = sorted(Path(root).rglob("*.jsonl"))
    if not files:
        raise FileNotFoundError(f"{root}: no PIP *.jsonl file")
    by_user: dict[str, list[dict]] = {}
    nsfw = 0
    for f in files:
        for n, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                missing = [k for k in FIELDS if row.get(k) in (None, "")]
            except (ValueError, AttributeError) as e:
                raise ValueError(f"{f.name}:{n}: not a JSON object ({e})") from e
            if missing:
                raise ValueError(f"{f.name}:{n}: missing {', '.join(missing)}")
            if _truthy(row.get("NSFW")):
                nsfw += 1
                continue
            user = str(row["user_id"])
            items = by_user.setdefault(user, [])
            items.append(
                {
                    "user_id": user,
                    "item_id": str(row["id"]),
                    "title": str(row["prompt"]),
                    "image_url": str(row["result_url"]),
                    "timestamp": len(items),
                }
            )
    bench = split_history(NAME, by_user, references, lambda i: i["title"], users)
    bench.notes["nsfw_rows_skipped"] = nsfw
    return bench


def _truthy(v: object) -> bool:
    return v is True or (isinstance(v, int | float) and v > 0) or str(v).lower() == "true"


def kind(item: dict) -> str:
    """How a history item reads in the persona's evidence."""
    return "prompt"
