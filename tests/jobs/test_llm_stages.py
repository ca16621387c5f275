"""The LLM stages end to end on a small lake (after the benchmark split and prompts):
personas, preferences and rewrite with the template backend, then the openai backend
against a faulty local server (no row lost or duplicated, the key nowhere), a killed run
resumed, persona overrides; the stage contract (undeclared tables, config keys and files
are errors) and the method and backend registries."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pyarrow.compute as pc
import pytest
from rich.console import Console

from jobs.config import load_config
from jobs.dag import BY_NAME
from jobs.personas import PERSONAS, PREFERENCES
from jobs.runner import is_current, run_stage
from storage.lake import Lake, RowLog
from tests.generation.world import VOCAB, write_generation_world
from tests.llm_server import ChatServer

KEY = "sk-zipp-test-0b7e51d2aa94"
UPSTREAM = [BY_NAME["split"], BY_NAME["prompts"]]  # the benchmark split comes first
LLM_STAGES = [*UPSTREAM, PERSONAS, PREFERENCES, BY_NAME["rewrite"]]


def write_world(root: Path, users: int = 12) -> dict[int, str]:
    """The generation world (silver tables, attention) for the LLM stages."""
    return write_generation_world(root, users=users)


def _config(root: Path, *extra: str):
    return load_config(
        None,
        [
            f"lake.root={root}",
            "ray.num_cpus=2",
            "bench.users=6",
            "bench.prompts_per_user=2",
            *extra,
        ],
    )


def _run(root: Path, stages, *extra: str) -> str:
    cfg = _config(root, *extra)
    out = io.StringIO()
    console = Console(file=out, width=200)
    for stage in stages:
        run_stage(stage, cfg, Lake(root), console)
    return out.getvalue()


@pytest.fixture(scope="module")
def template_lake(tmp_path_factory):
    root = tmp_path_factory.mktemp("tmpl")
    community = write_world(root)
    log = _run(root, LLM_STAGES)
    return root, community, log


def test_template_personas_are_labelled_and_follow_the_evidence(template_lake):
    root, community, _ = template_lake
    personas = Lake(root).read("gold/personas")
    assert personas.num_rows == 12 and sorted(personas["user_id"].to_pylist()) == list(range(12))
    for row in personas.to_pylist():
        assert row["status"] == "done" and row["template"] and row["source"] == "template"
        assert row["llm"] == "template:template" and row["text"].startswith("[template-made")
        words = set(VOCAB[community[row["user_id"]]])
        assert set(row["visual_interests"][:3]) <= words, row["visual_interests"]
        assert row["evidence_tokens"] <= 4096 and row["evidence_ids"]
        assert row["tokenizer"] == "all-MiniLM-L6-v2 (packaged)"


def test_rewrites_cover_every_prompt_method_and_baseline(template_lake):
    root, community, log = template_lake
    lake = Lake(root)
    prompts = lake.read("bench/prompts")
    rewrites = lake.read("bench/rewrites")
    assert prompts.num_rows == 6 * 2
    assert rewrites.num_rows == prompts.num_rows * 6
    assert len(set(rewrites["rewrite_id"].to_pylist())) == rewrites.num_rows
    # a 6-user world may leave a user no benchmark user of other communities to swap with
    failed = [r for r in rewrites.to_pylist() if r["status"] != "done"]
    assert all(r["method"] == "swapped" and "to swap with" in r["reason"] for r in failed)
    by = Counter(rewrites["method"].to_pylist())
    assert by == dict.fromkeys(["none", "zero_shot", "swapped", "k_shot", "viper", "history"], 12)
    made = {(r["user_id"], r["prompt_id"], r["method"]): r["prompt"] for r in rewrites.to_pylist()}
    # the control: the same base prompt rewritten with another user's persona
    assert all(
        made[(u, p, "swapped")] != made[(u, p, "zero_shot")] for u, p, m in made if m == "none"
    )
    prefs = {r["user_id"]: r for r in lake.read("gold/visual_preferences").to_pylist()}
    for r in (r for r in rewrites.to_pylist() if r["status"] == "done"):
        assert r["prompt"].startswith(r["base_prompt"].rstrip("."))
        if r["method"] == "viper":
            likes = prefs[r["user_id"]]["likes"]
            assert all(w in r["prompt"] for w in likes)
        if r["method"] in ("k_shot", "history"):
            assert 1 <= len(r["examples"]) <= 3
            assert all(set(e.split()) <= set(VOCAB[community[r["user_id"]]]) for e in r["examples"])
        else:
            assert r["examples"] == []
    assert f"bench/rewrites: {72 - len(failed)} done, {len(failed)} failed" in log


def test_zipp_persona_shows_the_persona_and_the_rewrites(template_lake):
    from typer.testing import CliRunner

    from jobs.cli import app

    root, _, _ = template_lake
    lake = Lake(root)
    u = min(lake.read("bench/users")["user_id"].to_pylist())  # one with rewrites
    users = lake.read("silver/users").to_pylist()
    author = next(r["author"] for r in users if r["user_id"] == u)
    result = CliRunner().invoke(app, ["persona", "--user", author, f"lake.root={root}"])
    assert result.exit_code == 0, result.output
    assert f"persona of user {u}" in result.output
    assert "[template-made, no LLM]" in result.output
    assert "zero_shot" in result.output and "viper" in result.output
    missing = CliRunner().invoke(app, ["persona", "--user", "nobody", f"lake.root={root}"])
    assert missing.exit_code == 2 and "no user 'nobody'" in missing.output


def test_a_rerun_is_skipped_and_a_forced_one_is_identical(template_lake):
    root, _, _ = template_lake
    before = Lake(root).read("bench/rewrites")
    cfg = _config(root)
    assert all(is_current(s, cfg, Lake(root))[0] for s in LLM_STAGES)
    console = Console(file=io.StringIO())
    run_stage(LLM_STAGES[-1], cfg, Lake(root), console, force=True)
    after = Lake(root).read("bench/rewrites")
    cols = ["rewrite_id", "prompt", "negative_prompt", "status"]
    assert after.select(cols).equals(before.select(cols))


def test_overrides_replace_persona_fields_and_bad_overrides_are_clear_errors(
    template_lake, tmp_path
):
    root, _, _ = template_lake
    ov = tmp_path / "overrides.jsonl"
    ov.write_text(
        json.dumps({"author": "user_3", "text": "I only photograph lighthouses."})
        + "\n"
        + json.dumps({"user_id": 5, "text": "I grow chillies.", "interests": ["chillies"]})
        + "\n"
    )
    _run(root, [PERSONAS], f"personas.overrides={ov}")
    rows = {r["user_id"]: r for r in Lake(root).read("gold/personas").to_pylist()}
    assert rows[3]["source"] == "override" and rows[3]["text"] == "I only photograph lighthouses."
    assert rows[3]["visual_interests"]  # fields not supplied keep the model's values
    assert rows[5]["interests"] == ["chillies"]
    assert rows[4]["source"] == "template"
    ov.write_text('{"author": "nobody_here", "text": "x"}\n')
    with pytest.raises(ValueError, match="no user 'nobody_here'"):
        _run(root, [PERSONAS], f"personas.overrides={ov}")
    ov.write_text('{"user_id": 1}\n')
    with pytest.raises(ValueError, match=r"overrides.jsonl:1: persona override"):
        _run(root, [PERSONAS], f"personas.overrides={ov}")


def _fails_for_some(key: str, attempt: int) -> str | None:
    """One request in five fails for good; the rest meet one transient fault first."""
    i = int(key[:6], 16)
    if i % 5 == 0:
        return "500"
    return ("429", "drop", "garbage", None)[i % 4] if attempt == 1 else None


def _openai(url: str) -> list[str]:
    return [
        "llm.backend=openai",
        "llm.model=test-model",
        f"llm.base_url={url}",
        "llm.api_key_env=ZIPP_TEST_LLM_KEY",
        "llm.timeout_s=2",
        "llm.backoff_s=0.01",
        "llm.max_retries=2",
        "llm.batch_size=4",
        "llm.concurrency=4",
    ]


def test_openai_rows_end_done_or_failed_none_lost_and_the_key_nowhere(tmp_path, monkeypatch, capfd):
    monkeypatch.setenv("ZIPP_TEST_LLM_KEY", KEY)
    root = tmp_path / "lake"
    write_world(root)
    with ChatServer(plan=_fails_for_some, api_key=KEY) as server:
        log = _run(root, [*UPSTREAM, PERSONAS, PREFERENCES], *_openai(server.url))
        lake = Lake(root)
        personas = lake.read("gold/personas")
        assert sorted(personas["user_id"].to_pylist()) == list(range(12))  # none lost or doubled
        status = Counter(personas["status"].to_pylist())
        assert status["failed"] > 0 and status["done"] > 0
        failed = personas.filter(pc.equal(personas["status"], "failed")).to_pylist()
        assert all(
            "http 500" in r["reason"] and "gave up after 3 attempts" in r["reason"] for r in failed
        )
        assert not is_current(PERSONAS, _config(root, *_openai(server.url)), lake)[0]
        # a rerun retries only the failed rows
        answered = dict(server.answered)
        server.plan = lambda key, attempt: None
        log += _run(root, [PERSONAS], *_openai(server.url))
        personas = lake.read("gold/personas")
        assert set(personas["status"].to_pylist()) == {"done"} and personas.num_rows == 12
        again = {k for k, n in server.answered.items() if n > answered.get(k, 0)}
        assert len(again) == status["failed"]
    out = capfd.readouterr()
    texts = [log, out.out, out.err]
    ray_logs = Path("/tmp/ray/session_latest/logs")  # the actors' stdout/stderr and Ray's own
    for path in [*root.rglob("*"), *(ray_logs.rglob("*") if ray_logs.exists() else [])]:
        if path.is_file():
            texts.append(path.read_bytes().decode("latin-1"))
    assert texts and not any(KEY in t for t in texts)
    assert "openai:test-model" in personas["llm"].to_pylist()[0]


def test_a_killed_run_resumes_without_duplicates_or_repeats(tmp_path):
    root = tmp_path / "lake"
    write_world(root, users=16)
    _run(root, UPSTREAM)
    env = os.environ | {"ZIPP_TEST_LLM_KEY": KEY}
    with ChatServer(latency=0.4, api_key=KEY) as server:
        # chunks of 5 users: the kill falls in one, the resume spans them all
        args = [*_openai(server.url), "llm.batch_size=1", "llm.concurrency=1"]
        args.append("personas.chunk_users=5")
        cmd = [sys.executable, "-m", "jobs.personas", "personas", f"lake.root={root}", *args]
        proc = subprocess.Popen(
            cmd,
            env=env,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        log = RowLog(Lake(root), "personas", "gold/personas")
        deadline = time.time() + 120
        while log.read().num_rows < 3 and time.time() < deadline and proc.poll() is None:
            time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        logged = log.read()
        assert 3 <= logged.num_rows < 16, "the run was not killed part-way"
        first = dict(server.answered)
        os.environ["ZIPP_TEST_LLM_KEY"] = KEY
        try:
            _run(root, [PERSONAS], *args)
        finally:
            del os.environ["ZIPP_TEST_LLM_KEY"]
    personas = Lake(root).read("gold/personas")
    assert sorted(personas["user_id"].to_pylist()) == list(range(16))
    assert set(personas["status"].to_pylist()) == {"done"}
    # rows logged before the kill were not asked for again
    resent = [k for k, n in server.answered.items() if n > first.get(k, 0)]
    assert len(resent) == 16 - logged.num_rows or len(resent) == 16 - logged.num_rows + 1
    assert not log.dir.exists()


def test_reading_an_undeclared_table_config_key_or_file_is_a_contract_error(template_lake):
    """The domain functions get only what their declarations name (jobs.runner.stage_io
    builds the StageIO the runner would)."""
    from dataclasses import replace

    from contract.errors import ContractError
    from generation.stages.personas import personas
    from generation.stages.rewrite import rewrite
    from jobs.runner import stage_io

    root, _, _ = template_lake
    cfg, lake, console = _config(root), Lake(root), Console(file=io.StringIO())
    stage = BY_NAME["rewrite"]
    no_prefs = replace(stage, inputs=tuple(t for t in stage.inputs if "preferences" not in t))
    with pytest.raises(ContractError, match="'rewrite' reads table 'gold/visual_preferences'"):
        rewrite(stage_io(no_prefs, cfg, lake, console))
    no_key = replace(stage, config=("rewrite", "llm"))
    with pytest.raises(ContractError, match="'rewrite' reads config key 'features.text_model'"):
        rewrite(stage_io(no_key, cfg, lake, console))
    # snippets as a plain input would let held-out titles into the evidence
    plain = replace(PERSONAS, inputs=(*PERSONAS.inputs, "silver/snippets"), history=())
    with pytest.raises(ContractError, match="reads the history of 'silver/snippets'"):
        personas(stage_io(plain, cfg, lake, console))
    no_file = replace(PERSONAS, files=())
    with pytest.raises(ContractError, match="reads file 'personas.overrides'"):
        personas(stage_io(no_file, cfg, lake, console))
    assert lake.read("gold/personas").num_rows == 12  # nothing was written


def test_the_registries_are_what_config_validation_and_the_judge_check_read(tmp_path):
    from jobs.config import ConfigError
    from llm import BACKENDS, check_judge
    from llm.config import LLMSpec
    from schemas.methods import METHOD_ORDER, METHODS, REWRITE_METHODS

    for m in METHODS.values():  # every registered function loads
        assert m.stage == "generate" or callable(m.build())
    for b in BACKENDS.values():
        assert b.load().__name__ and (b.check is None or b.check.split(":")[1])
    assert _config(tmp_path).rewrite.methods == list(REWRITE_METHODS)
    assert METHOD_ORDER[0] == "base" and {"pigeon", *REWRITE_METHODS} <= set(METHOD_ORDER)
    with pytest.raises(ConfigError, match=r"rewrite.methods: .*unknown rewrite method 'pigeon'"):
        load_config(None, ["rewrite.methods=[none,pigeon]"])  # made by generate, not listed
    with pytest.raises(ConfigError, match=r"llm.backend: .*unknown backend 'gpt' \(known: temp"):
        load_config(None, ["llm.backend=gpt"])
    with pytest.raises(ConfigError, match="judge.backend: .*unknown backend"):
        load_config(None, ["judge.backend=gpt"])
    check_judge(LLMSpec(backend="openai", model="vision"))
    check_judge(LLMSpec())
    with pytest.raises(ValueError, match="judge.backend: hf cannot see images"):
        check_judge(LLMSpec(backend="hf", model="x"))


def test_a_method_missing_what_it_needs_fails_its_row_with_the_reason():
    from generation.stages.rewrite import NO_EXAMPLES, case_for
    from schemas.methods import get_method

    recent = {"recent": lambda history, prompt: history[:2]}
    persona = {"status": "failed", "reason": "http 500"}
    assert case_for(get_method("zero_shot"), "a cat", None, None, [], recent) == (
        "no persona: not verbalised for this model"
    )
    assert case_for(get_method("k_shot"), "a cat", persona, None, [], recent) == (
        "no persona: http 500"
    )
    assert case_for(get_method("viper"), "a cat", None, None, [], recent).startswith(
        "no visual preferences"
    )
    done = {"status": "done", "text": "I love boats.", "demographics": None}
    done |= {"interests": ["boats"], "affective_traits": [], "visual_interests": ["sails"]}
    assert case_for(get_method("k_shot"), "a cat", done, None, [], recent) == NO_EXAMPLES
    case = case_for(get_method("k_shot"), "a cat", done, None, ["t1", "t2", "t3"], recent)
    assert case.examples == ("t1", "t2") and "I love boats." in case.roleplay
    prefs = {"status": "done", "likes": ["teal"], "dislikes": ["blur"]}
    case = case_for(get_method("viper"), "a cat", None, prefs, [], recent)
    assert get_method("viper").build()(case) == ("a cat, teal", "blur")


def test_benchmark_users_get_personas_first_under_a_cap(template_lake):
    from generation.stages.personas import persona_users
    from jobs.runner import stage_io

    root, _, _ = template_lake
    cfg = _config(root, "personas.users=4")
    users = persona_users(stage_io(PERSONAS, cfg, Lake(root), Console(file=io.StringIO())))
    bench = set(Lake(root).read("bench/users")["user_id"].to_pylist())
    assert len(users) == 4 and set(users) <= bench


def test_personas_a_chunk_of_users_at_a_time_make_the_same_table(template_lake, tmp_path):
    """`personas.chunk_users`: evidence built, sent and logged a chunk at a time gives the
    table one chunk gives (lake-wide statistics are read once, not per chunk)."""
    import shutil

    root, _, _ = template_lake
    copy = tmp_path / "lake"  # a copy: the forced runs leave the module's lake alone
    shutil.copytree(root, copy)
    console = Console(file=io.StringIO())
    for stage, table in ((PERSONAS, "gold/personas"), (PREFERENCES, "gold/visual_preferences")):
        made = []
        for chunk in (1000, 5):  # (other tests rerun stages on the module's lake)
            run_stage(
                stage,
                _config(copy, f"personas.chunk_users={chunk}"),
                Lake(copy),
                console,
                force=True,
            )
            made.append(Lake(copy).read(table))
        assert made[0].num_rows == made[1].num_rows > 5
        cols = [c for c in made[0].column_names if c != "seconds"]
        assert made[1].select(cols).equals(made[0].select(cols))
