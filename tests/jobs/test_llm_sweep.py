"""An LLM sweep end to end: the template backend and two endpoints of the local
OpenAI-compatible server (each its own model name, key variable and answers) through the
LLM stages, generation on the tiny pipeline, scoring by one template judge and the report,
whose "LLM sweep" section has each LLM's win rates and gains vs none with intervals; and
the section's statistics (Wilson interval, user bootstrap, the one-judge rule) on their own."""

from __future__ import annotations

import io
import re
from collections import Counter

import numpy as np
import pandas as pd
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from rich.console import Console

from jobs.config import load_config
from jobs.dag import BY_NAME
from jobs.runner import run_stage
from storage.lake import Lake
from tests.jobs.test_generate import TINY
from tests.jobs.test_llm_stages import write_world
from tests.llm_server import ChatServer, default_reply

KEYS = {"ZIPP_TEST_KEY_A": "sk-zipp-sweep-a-51f0c2", "ZIPP_TEST_KEY_B": "sk-zipp-sweep-b-93ad7e"}
STAGES = ["split", "prompts", "personas", "preferences", "rewrite", "generate", "score", "report"]
LABELS = ("template:template", "model-a", "model-b")
ARGS = [
    f"diffusion.model={TINY}",
    "ray.num_cpus=2",
    "bench.users=4",
    "bench.prompts_per_user=2",
    "personas.users=4",  # the benchmark's users only
    "rewrite.methods=[none,zero_shot]",
    "diffusion.steps=2",
    "diffusion.batch_size=32",
    "diffusion.seeds=1",
    "judge.backend=template",
    "judge.agreement_images=1",
    "judge.persona_llm=model-a",
]


def _muted(body: dict) -> str:
    """Endpoint B's answers: the server's, its rewrites in words of its own."""
    text = default_reply(body)
    return text if text.startswith("{") else f"{text}, muted tones"


def _sweep(a: ChatServer, b: ChatServer) -> str:
    return (
        "llm.models=[{backend: template, model: template}, "
        f"{{name: model-a, backend: openai, model: m-a, base_url: '{a.url}', "
        "api_key_env: ZIPP_TEST_KEY_A}, "
        f"{{name: model-b, backend: openai, model: m-b, base_url: '{b.url}', "
        "api_key_env: ZIPP_TEST_KEY_B, response_format: json_schema}]"
    )


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    from tests.tiny_diffusion import build_tiny_pipeline

    build_tiny_pipeline(TINY)
    root = tmp_path_factory.mktemp("sweep") / "lake"
    write_world(root, users=8)
    mp = pytest.MonkeyPatch()
    for k, v in KEYS.items():
        mp.setenv(k, v)
    try:
        with (
            ChatServer(api_key=KEYS["ZIPP_TEST_KEY_A"]) as a,
            ChatServer(api_key=KEYS["ZIPP_TEST_KEY_B"], reply=_muted) as b,
        ):
            cfg = load_config(None, [f"lake.root={root}", *ARGS, _sweep(a, b)])
            for name in STAGES:
                run_stage(BY_NAME[name], cfg, Lake(root), Console(file=io.StringIO()))
            answered = (sum(a.answered.values()), sum(b.answered.values()))
    finally:
        mp.undo()
    return root, answered


def test_every_llm_stage_runs_once_per_swept_llm_from_its_own_backend(swept):
    root, answered = swept
    lake = Lake(root)
    personas = lake.read("gold/personas")
    assert Counter(personas["llm"].to_pylist()) == dict.fromkeys(LABELS, 4)
    assert set(personas["status"].to_pylist()) == {"done"}
    assert all(n > 0 for n in answered)  # both endpoints were called
    rewrites = lake.read("bench/rewrites")
    assert Counter(rewrites["llm"].to_pylist()) == dict.fromkeys(LABELS, 4 * 2 * 2)
    zero = rewrites.filter(pc.equal(rewrites["method"], "zero_shot")).to_pylist()
    by = {llm: [r["prompt"] for r in zero if r["llm"] == llm] for llm in LABELS}
    assert all(", rewritten " in p and not p.endswith("muted tones") for p in by["model-a"])
    assert all(p.endswith(", muted tones") for p in by["model-b"])  # endpoint B's words
    assert not any(", rewritten " in p for p in by["template:template"])
    scores = lake.read("bench/scores")
    made = Counter(scores["method_llm"].to_pylist())
    assert {k: made[k] for k in LABELS} == dict.fromkeys(LABELS, 4 * 2 * 2) and made["-"] == 8
    assert set(scores["llm"].to_pylist()) == {"template:template"}  # one judge for all
    text = b"".join(p.read_bytes() for p in root.rglob("*") if p.is_file())
    assert not any(k.encode() in text for k in KEYS.values())


def test_the_report_has_per_llm_gains_with_intervals_on_one_judge_scale(swept):
    root, _ = swept
    out = root / "reports/zipbench"
    page = (out / "index.html").read_text()
    section = page.split("<h2>LLM sweep", 1)[1].split("<h2>", 1)[0]
    assert "one model for every LLM" in section and "persona by model-a" in section
    body = re.search(r"<table class='sweep'>(.*?)</table>", section, re.S).group(1)
    rows = re.findall(r"<tr><td>([^<]+)</td><td>([a-z_]+)</td><td>(\d+)</td>", body)
    assert {(llm, m) for llm, m, _ in rows} == {(x, "zero_shot") for x in LABELS}
    assert all(int(n) == 8 for _, _, n in rows)  # 4 users x 2 prompts, 1 seed
    assert "CS win vs none [95% CI]" in body and "LLM judge Δ vs none [95% CI]" in body
    table = pq.read_table(out / "sweep.parquet").to_pandas()
    assert set(table["llm"]) == set(LABELS)
    for s in ("cs", "pref", "judge"):
        win, low, high = (table[f"{s}_win{k}"] for k in ("", "_low", "_high"))
        assert ((low <= win) & (win <= high) & (low >= 0) & (high <= 1)).all()
        gain, glow, ghigh = (table[f"{s}_gain{k}"] for k in ("", "_low", "_high"))
        assert ((glow <= gain + 1e-9) & (gain <= ghigh + 1e-9)).all()
    assert (out / "sweep.png").stat().st_size > 5000 and "src='sweep.png'" in section


def test_wilson_and_the_user_bootstrap():
    from evaluation.sweep_section import user_bootstrap, wilson

    low, high = wilson(8, 10)
    assert low == pytest.approx(0.4902, abs=1e-4) and high == pytest.approx(0.9433, abs=1e-4)
    assert all(np.isnan(wilson(0, 0)))
    # one user's pairs move together: a user with many pairs cannot narrow the interval
    users = np.array([0] * 50 + [1, 2])
    mean, low, high = user_bootstrap(np.array([1.0] * 50 + [-1.0, -1.0]), users)
    assert mean == pytest.approx(48 / 52) and low < 0 < high
    assert user_bootstrap(np.array([2.0, np.nan]), np.array([0, 1]))[0] == 2.0


def _scores(judges: list[str]) -> pd.DataFrame:
    rows = []
    for u in range(6):
        for method, cs in (("none", 50.0), ("zero_shot", 52.0 + u % 2)):
            rows.append(
                {
                    "user_id": u,
                    "prompt_id": "p",
                    "seed_index": 0,
                    "method": method,
                    "method_llm": "x",
                    "clip_ref": cs,
                    "preference": 0.5,
                    "judge_score": 5.0 + (method != "none"),
                    "llm": judges[u % len(judges)],
                    "status": "done",
                }
            )
    return pd.DataFrame(rows)


def test_llm_judge_scores_of_different_judges_are_not_compared(tmp_path):
    from evaluation.stages.report import table_html
    from evaluation.sweep_section import sweep_section

    one = sweep_section(_scores(["openai:judge"]), "openai:judge", "x", tmp_path, table_html)
    assert "LLM judge win vs none" in one and "one scale" in one
    assert pq.read_table(tmp_path / "sweep.parquet")["cs_win"].to_pylist() == [1.0]
    two = sweep_section(_scores(["openai:j1", "openai:j2"]), "openai:j2", "x", tmp_path, table_html)
    assert "not compared" in two and "openai:j1, openai:j2" in two
    assert "LLM judge win vs none" not in two and "CS win vs none" in two
    assert "judge_win" not in pq.read_table(tmp_path / "sweep.parquet").column_names
