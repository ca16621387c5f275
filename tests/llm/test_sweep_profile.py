"""`conf/sweep-paper.yaml`, the paper's 14 LLMs as a profile over `conf/cluster.yaml`: it
loads and validates, every model has a backend, a model id, its tokenizer and a name, the
one judge is none of them and sees one LLM's personas; a sweep entry that cannot be called
or named is a one-line config error."""

from __future__ import annotations

import pytest

from jobs.config import ConfigError, load_config
from llm import BACKENDS, check_judge
from llm.tokens import PACKAGED, tokenizer_source

PROFILE = "conf/sweep-paper.yaml"
FAMILIES = {"Qwen3": 4, "gpt": 3, "claude": 3, "deepseek": 2, "gemini": 2}


def test_the_paper_sweep_profile_loads_with_14_named_llms_of_five_families():
    cfg = load_config(PROFILE)
    cluster = load_config("conf/cluster.yaml")
    assert cfg.profile == "sweep-paper"
    # it inherits cluster.yaml: what it does not set is the cluster's
    assert cfg.lake.root == cluster.lake.root and cfg.bench.users == cluster.bench.users
    assert cfg.llm.actors == cluster.llm.actors and cfg.judge.model == cluster.judge.model
    specs = cfg.llm.specs()
    labels = [s.label for s in specs]
    assert len(specs) == 14 and len(set(labels)) == 14
    assert {f: sum(x.startswith(f) for x in labels) for f in FAMILIES} == FAMILIES
    for s in specs:
        assert s.name and s.label == s.name and s.model
        info = BACKENDS[s.backend]
        if info.endpoint:  # hosted or the gateway: a URL and the NAME of the key's variable
            assert s.base_url.startswith(("https://", "http://")) and s.api_key_env.isupper()
        else:
            assert s.backend == "vllm" and s.base_url is None and s.model.startswith("Qwen/")
        source = tokenizer_source(s.backend, s.model, s.tokenizer)
        open_weights = s.model.startswith(("Qwen/", "deepseek")) or s.name.startswith("gpt")
        assert (source != PACKAGED) == open_weights, s.label  # own tokenizer where published
    # one judge for every swept LLM: not one of them, multimodal, one LLM's personas
    judge = cfg.judge
    check_judge(judge)
    assert judge.label not in labels and judge.persona_llm in labels


def test_a_sweep_entry_is_named_by_its_label_and_validated():
    base = "{backend: openai, model: m, base_url: 'http://127.0.0.1:1/v1'"
    cfg = load_config(None, [f"llm.models=[{base}, name: Model-A}}, {base}}}]"])
    assert [s.label for s in cfg.llm.specs()] == ["Model-A", "openai:m"]
    with pytest.raises(
        ConfigError, match=r"llm.models.0: .*openai:m: backend openai needs base_url"
    ):
        load_config(None, ["llm.models=[{backend: openai, model: m}]"])
    with pytest.raises(ConfigError, match=r"llm.models.0.name: String should match pattern"):
        load_config(None, [f"llm.models=[{base}, name: '<b>x</b>'}}]"])
    with pytest.raises(ConfigError, match="the sweep lists X twice"):
        load_config(None, [f"llm.models=[{base}, name: X}}, {{backend: template, name: X}}]"])


def test_zipp_config_show_prints_the_sweep_profile():
    from typer.testing import CliRunner

    from jobs.cli import app

    result = CliRunner().invoke(app, ["config", "show", "-c", PROFILE])
    assert result.exit_code == 0, result.output
    for name in ("Qwen3-235B-A22B", "claude-sonnet-4", "gemini-2.5-pro", "deepseek-v3.2"):
        assert name in result.output
    assert "sk-" not in result.output  # only the keys' variable names are in the profile
