"""Config profiles, overrides, one-line errors, blocklist and section hashes."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from jobs.config import ConfigError, ZippConfig, load_config

ROOT = Path(__file__).resolve().parents[2]
LOCAL = ROOT / "conf" / "local.yaml"
CLUSTER = ROOT / "conf" / "cluster.yaml"


def config_error(path=LOCAL, overrides=None) -> str:
    with pytest.raises(ConfigError) as e:
        load_config(path, overrides)
    msg = str(e.value)
    assert "\n" not in msg, f"not one line: {msg!r}"
    assert msg.startswith("config error:")
    return msg


def write(tmp_path: Path, text: str, name: str = "profile.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


# ---------------------------------------------------------------- profiles
@pytest.mark.parametrize("path", [LOCAL, CLUSTER], ids=["local", "cluster"])
def test_profiles_load_as_written(path: Path) -> None:
    raw = yaml.safe_load(path.read_text())
    cfg = load_config(path)
    assert isinstance(cfg, ZippConfig)
    dumped = cfg.model_dump()
    for section, values in raw.items():
        if isinstance(values, dict):
            for key, value in values.items():
                assert dumped[section][key] == value, f"{section}.{key}"
        else:
            assert dumped[section] == values


def test_local_and_cluster_differ_where_they_should() -> None:
    local, cluster = load_config(LOCAL), load_config(CLUSTER)
    assert (local.profile, cluster.profile) == ("local", "cluster")
    assert local.lake.format == "parquet" and cluster.lake.format == "delta"
    assert cluster.spark.master is None and cluster.ray.address == "auto"
    assert cluster.spark.conf["spark.sql.shuffle.partitions"] == "2000"


def test_cluster_profile_wires_delta_spark_for_this_spark() -> None:
    """`conf/cluster.yaml` writes Delta through delta-spark: the session extension and
    catalog, and a delta-spark build for the Scala line this pyspark runs on."""
    import pyspark

    spark = load_config(CLUSTER).spark.conf
    assert spark["spark.sql.extensions"] == "io.delta.sql.DeltaSparkSessionExtension"
    assert spark["spark.sql.catalog.spark_catalog"].endswith("delta.catalog.DeltaCatalog")
    group, artifact, version = spark["spark.jars.packages"].split(":")
    jars = Path(pyspark.__file__).parent / "jars"
    scala = next(jars.glob("scala-library-*.jar")).stem.removeprefix("scala-library-")
    assert (group, artifact) == ("io.delta", f"delta-spark_{scala.rsplit('.', 1)[0]}")
    assert int(version.split(".")[0]) == int(pyspark.__version__.split(".")[0])


def test_default_profile_is_conf_local_when_present(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(ROOT)
    assert load_config() == load_config(LOCAL)
    monkeypatch.chdir(tmp_path)  # no conf/ here: built-in defaults
    cfg = load_config()
    assert cfg == ZippConfig()
    assert cfg.ingest.blocklist is None and cfg.lake.root == "lake"
    assert load_config(None, ["lake.root=/x"]).lake.root == "/x"


def test_empty_profile_gives_defaults(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, "")) == ZippConfig()


# ---------------------------------------------------------------- overrides
def test_overrides_apply() -> None:
    cfg = load_config(
        LOCAL,
        [
            "ingest.chunk_mb=32",
            "lake.root=/data/lake",
            "ray.num_cpus=4",
            "spark.master=null",
            "lake.format=delta",
            "spark.conf.extra=x",
            "input.dumps=/d/RC_*.zst",
        ],
    )
    assert cfg.ingest.chunk_mb == 32
    assert cfg.lake.root == "/data/lake"
    assert cfg.ray.num_cpus == 4
    assert cfg.spark.master is None
    assert cfg.lake.format == "delta"
    assert cfg.input.dumps == "/d/RC_*.zst"
    # a dict entry is added, the profile's other entries stay
    assert cfg.spark.conf["extra"] == "x"
    assert cfg.spark.conf["spark.driver.memory"] == "4g"
    # untouched keys keep the profile's values
    assert cfg.ingest.files_per_job == 4 and cfg.ingest.max_line_mb == 64


def test_later_override_wins_and_value_may_hold_equals() -> None:
    cfg = load_config(LOCAL, ["lake.root=/a", "lake.root=/b=c"])
    assert cfg.lake.root == "/b=c"


@pytest.mark.parametrize(
    "override", ["spark.bogus=1", "ingest.chunk_size=3", "bogus=1", "lake.root.deeper=1"]
)
def test_unknown_key_names_the_dotted_key(override: str) -> None:
    key = override.split("=")[0]
    msg = config_error(overrides=[override])
    if key == "lake.root.deeper":
        assert "lake.root" in msg
    else:
        assert f"{key}: unknown key" in msg


def test_unknown_key_in_a_profile_file(tmp_path: Path) -> None:
    p = write(tmp_path, "ingest:\n  files_per_job: 2\n  chunk_size: 3\n")
    msg = config_error(p)
    assert "ingest.chunk_size" in msg and "unknown key" in msg


@pytest.mark.parametrize(
    ("override", "key", "got"),
    [
        ("ingest.chunk_mb=abc", "ingest.chunk_mb", "'abc'"),
        ("ingest.chunk_mb=2.5", "ingest.chunk_mb", "2.5"),
        ("ingest.files_per_job=0", "ingest.files_per_job", "0"),
        ("lake.format=orc", "lake.format", "'orc'"),
        ("ray.num_cpus=many", "ray.num_cpus", "'many'"),
        ("spark=3", "spark", "3"),
    ],
)
def test_wrong_type_names_the_key(override: str, key: str, got: str) -> None:
    msg = config_error(overrides=[override])
    assert msg.startswith(f"config error: {key}: ")
    assert f"(got {got})" in msg


def test_wrong_type_in_a_profile_file(tmp_path: Path) -> None:
    p = write(tmp_path, "ingest:\n  max_line_mb: lots\n")
    msg = config_error(p)
    assert "ingest.max_line_mb" in msg and "'lots'" in msg


def test_missing_profile(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    msg = config_error(missing)
    assert "profile not found" in msg and str(missing) in msg


@pytest.mark.parametrize("override", ["ingest.chunk_mb", "ingest", "lake.root:/x"])
def test_override_without_equals(override: str) -> None:
    msg = config_error(overrides=["lake.root=/ok", override])
    assert "not key=value" in msg and repr(override) in msg


def test_bad_interpolation_is_a_config_error() -> None:
    msg = config_error(overrides=["lake.root=${nowhere}"])
    assert "nowhere" in msg


def test_malformed_yaml_is_a_one_line_config_error(tmp_path: Path) -> None:
    p = write(tmp_path, "ingest:\n  chunk_mb: [1\nlake: {root: x\n")
    msg = config_error(p)  # one line, like every other ConfigError
    assert str(p) in msg


# ---------------------------------------------------------------- blocklist
def test_blocklist_file_is_read(tmp_path: Path) -> None:
    bl = write(
        tmp_path, "# deletion requests\n\nalice\n  bob  \n# carol\n\n\ndave\n", name="blocklist.txt"
    )
    cfg = load_config(LOCAL, [f"ingest.blocklist={bl}"])
    assert cfg.ingest.usernames() == frozenset({"alice", "bob", "dave"})


def test_repository_blocklist(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # the profile names it relative to the repository
    expected = {
        ln.strip()
        for ln in (ROOT / "conf" / "blocklist.txt").read_text().splitlines()
        if ln.strip() and not ln.strip().startswith("#")
    }
    assert load_config(LOCAL).ingest.usernames() == frozenset(expected)
    assert expected


def test_no_blocklist_and_missing_blocklist(tmp_path: Path) -> None:
    assert load_config(LOCAL, ["ingest.blocklist=null"]).ingest.usernames() == frozenset()
    cfg = load_config(LOCAL, [f"ingest.blocklist={tmp_path / 'gone.txt'}"])
    with pytest.raises(ConfigError, match="ingest.blocklist"):
        cfg.ingest.usernames()


# ---------------------------------------------------------------- section hashes
SECTIONS = ("spark", "ray", "lake", "input", "ingest")


def test_section_hash_tracks_its_own_section() -> None:
    base = load_config(LOCAL)
    assert base.section_hash("ingest") == load_config(LOCAL).section_hash("ingest")
    changes = {
        "ingest": "ingest.chunk_mb=8",
        "lake": "lake.root=/elsewhere",
        "spark": "spark.app_name=other",
        "input": "input.dumps=/x",
        "ray": "ray.num_cpus=2",
    }
    for section, override in changes.items():
        changed = load_config(LOCAL, [override])
        for other in SECTIONS:
            same = base.section_hash(other) == changed.section_hash(other)
            assert same == (other != section), (override, other)


def test_section_hash_ignores_key_order(tmp_path: Path) -> None:
    a = write(tmp_path, "spark:\n  conf:\n    a: '1'\n    b: '2'\n", name="a.yaml")
    b = write(tmp_path, "spark:\n  conf:\n    b: '2'\n    a: '1'\n", name="b.yaml")
    assert load_config(a).section_hash("spark") == load_config(b).section_hash("spark")
    c = write(tmp_path, "spark:\n  conf:\n    b: '2'\n    a: '3'\n", name="c.yaml")
    assert load_config(a).section_hash("spark") != load_config(c).section_hash("spark")


def test_dotted_spark_keys_override_from_the_command_line():
    cfg = load_config(
        "conf/local.yaml",
        ["spark.conf.spark.executor.instances=4", "spark.conf.spark.sql.shuffle.partitions=16"],
    )
    assert cfg.spark.conf["spark.executor.instances"] == "4"
    assert cfg.spark.conf["spark.sql.shuffle.partitions"] == "16"
    assert cfg.spark.conf["spark.driver.memory"] == "4g"


# ---------------------------------------------------------------- composed profiles
SMALL_REAL = ROOT / "conf" / "small-real.yaml"

#: what each shipped profile changes of local.yaml (section.key -> value, as loaded)
PROFILE_CHANGES = {
    SMALL_REAL: {
        "profile": "small-real",
        "llm.backend": "hf",
        "llm.model": "packaged:smollm2",
        "llm.batch_size": 4,
        "llm.max_tokens": 512,
        "llm.response_format": "json_schema",
        "personas.users": 4,
        "bench.prompts_per_user": 2,
        "bench.users": 4,
        "diffusion.guidance_scale": 5.0,
        "diffusion.seeds": 1,
    },
    CLUSTER: {
        "profile": "cluster",
        "spark.master": None,
        "spark.app_name": "zipp-prod",
        "spark.conf": {
            "spark.sql.shuffle.partitions": "2000",
            "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
            "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
            "spark.jars.packages": "io.delta:delta-spark_2.13:4.0.0",
        },
        "ray.address": "auto",
        "lake.root": "/mnt/zipp-lake/prod",
        "lake.format": "delta",
        "input.dumps": "/mnt/reddit-dumps/**/*.zst",
        "ingest.files_per_job": 16,
        "ingest.chunk_mb": 32,
        "graph.min_user_interactions": 5,
        "graph.min_subreddit_users": 20,
        "graph.start": "2015-01-01",
        "graph.end": "2023-01-01",
        "graph.val_fraction": 0.05,
        "graph.test_fraction": 0.05,
        "graph.inductive_fraction": 0.05,
        "graph.snippets_per_edge": 8,
        "images.model": "openai/clip-vit-large-patch14-336",
        "images.allow_hosts": [],
        "images.fetch_tasks": 64,
        "images.embed_actors": 8,
        "images.num_gpus": 1.0,
        "images.batch_size": 128,
        "images.retries": 3,
        "features.text_model": "sentence-transformers/all-mpnet-base-v2",
        "features.texts_per_subreddit": 64,
        "features.actors": 8,
        "features.num_gpus": 0.5,
        "encoder.hidden": 256,
        "encoder.heads": 8,
        "encoder.fanouts": [15, 10],
        "encoder.batch_size": 4096,
        "encoder.negatives": 8,
        "encoder.lr": 0.001,
        "encoder.epochs": 30,
        "encoder.temperature": 0.07,
        "encoder.num_workers": 8,
        "encoder.use_gpu": True,
        "encoder.cpus_per_worker": 8.0,
        "encoder.eval_users": 20000,
        "encoder.inference_chunk": 65536,
        "llm.backend": "openai",
        "llm.model": "Qwen/Qwen3-8B",
        "llm.base_url": "http://llm-gateway.internal:8000/v1",
        "llm.api_key_env": "ZIPP_LLM_API_KEY",
        "llm.tokenizer": "Qwen/Qwen3-8B",
        "llm.concurrency": 64,
        "llm.actors": 4,
        "llm.batch_size": 32,
        "llm.max_tokens": 768,
        "llm.temperature": 0.7,
        "llm.timeout_s": 120.0,
        "llm.max_retries": 6,
        "llm.requests_per_s": 200.0,
        "personas.images": 0,
        "bench.prompts_per_user": 27,
        "bench.users": 1500,
        "bench.min_images": 8,
        "bench.references_per_user": 4,
        "bench.base_prompts": "captions",
        "bench.captioner": "Salesforce/blip-image-captioning-large",
        "diffusion.model": "stable-diffusion-v1-5/stable-diffusion-v1-5",
        "diffusion.steps": 30,
        "diffusion.guidance_scale": 7.5,
        "diffusion.height": 512,
        "diffusion.width": 512,
        "diffusion.seeds": 3,
        "diffusion.batch_size": 8,
        "diffusion.actors": 8,
        "diffusion.num_gpus": 1.0,
        "diffusion.compile": True,
        "diffusion.ip_adapter": "h94/IP-Adapter",
        "judge.backend": "openai",
        "judge.model": "Qwen/Qwen2.5-VL-72B-Instruct",
        "judge.base_url": "http://llm-gateway.internal:8000/v1",
        "judge.api_key_env": "ZIPP_LLM_API_KEY",
        "report.grids": 12,
    },
}


def _without_base(cfg: ZippConfig) -> dict:
    return cfg.model_dump(mode="json", exclude={"base"})


@pytest.mark.parametrize("path", list(PROFILE_CHANGES), ids=lambda p: p.stem)
def test_shipped_profiles_are_local_with_their_changes(path: Path) -> None:
    """Each shipped profile loads as local.yaml with exactly its listed keys changed (what
    the profile held as a full copy before it named local.yaml as its base)."""
    expected = _without_base(load_config(LOCAL))
    for dotted, value in PROFILE_CHANGES[path].items():
        section, _, key = dotted.partition(".")
        if key:
            assert key in expected[section], dotted
            expected[section][key] = value
        else:
            expected[section] = value
    cfg = load_config(path)
    assert cfg.base == "local.yaml"
    assert _without_base(cfg) == expected


def test_a_profile_inherits_its_base_and_overrides_keys(tmp_path: Path) -> None:
    write(
        tmp_path,
        "profile: root\nlake: {root: /r, format: delta}\ningest: {chunk_mb: 8}\n"
        "spark:\n  conf: {a: '1', b: '2'}\nencoder: {fanouts: [5, 5, 5]}\n",
        name="root.yaml",
    )
    (tmp_path / "sub").mkdir()
    mid = write(
        tmp_path,
        "base: ../root.yaml\nprofile: mid\ningest: {files_per_job: 2}\nspark:\n  conf: {c: '3'}\n",
        name="sub/mid.yaml",
    )
    top = write(
        tmp_path,
        "base: sub/mid.yaml\nlake: {root: /top}\nencoder: {fanouts: [7]}\n",
        name="top.yaml",
    )
    cfg = load_config(mid)
    assert (cfg.profile, cfg.base, cfg.lake.root, cfg.lake.format) == (
        "mid",
        "../root.yaml",
        "/r",
        "delta",
    )
    assert (cfg.ingest.chunk_mb, cfg.ingest.files_per_job) == (8, 2)
    assert cfg.spark.conf == {"c": "3"}  # a free-form map is replaced whole
    assert cfg.encoder.fanouts == [5, 5, 5]
    cfg = load_config(top, ["ingest.chunk_mb=9"])  # a chain: top -> mid -> root
    assert (cfg.profile, cfg.lake.root, cfg.lake.format) == ("mid", "/top", "delta")
    assert (cfg.ingest.chunk_mb, cfg.ingest.files_per_job) == (9, 2)
    assert cfg.encoder.fanouts == [7]  # a list is replaced whole
    assert cfg.spark.conf == {"c": "3"}


def test_profile_base_cycles_and_missing_bases_are_config_errors(tmp_path: Path) -> None:
    a = write(tmp_path, "base: b.yaml\n", name="a.yaml")
    write(tmp_path, "base: a.yaml\n", name="b.yaml")
    msg = config_error(a)
    assert "base" in msg and "cycle" in msg and "a.yaml" in msg and "b.yaml" in msg
    assert "cycle" in config_error(write(tmp_path, "base: self.yaml\n", name="self.yaml"))
    msg = config_error(write(tmp_path, "base: gone.yaml\n", name="orphan.yaml"))
    assert "profile not found" in msg and "gone.yaml" in msg
    assert "base" in config_error(write(tmp_path, "base: [a.yaml]\n", name="list.yaml"))
    msg = config_error(write(tmp_path, "base: local.yaml\nlake: {bogus: 1}\n", name="x.yaml"))
    assert "profile not found" in msg  # resolved next to the profile, not the cwd


def test_config_show_prints_the_merged_profile(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from jobs.cli import app

    out = CliRunner().invoke(app, ["config", "show", "-c", str(CLUSTER), "lake.root=/x"])
    assert out.exit_code == 0, out.output
    shown = yaml.safe_load(out.output)
    assert shown["profile"] == "cluster" and shown["base"] == "local.yaml"
    assert shown["lake"] == {"root": "/x", "format": "delta"}
    assert shown["encoder"]["hidden"] == 256  # cluster's own key
    assert shown["encoder"]["loss"] == "softmax"  # inherited from local.yaml
    assert shown["smoke"]["size"] == 32
    merged = write(tmp_path, out.output.replace("base: local.yaml", "base: null"), "merged.yaml")
    assert _without_base(load_config(merged)) == _without_base(
        load_config(CLUSTER, ["lake.root=/x"])
    )
    bad = CliRunner().invoke(app, ["config", "show", "-c", str(CLUSTER), "lake.bogus=1"])
    assert bad.exit_code == 2 and "lake.bogus: unknown key" in bad.output


def test_usernames_files_are_read_one_way(tmp_path: Path) -> None:
    """`ingest.usernames()` and `StageIO.names` read a usernames file alike, lower-cased
    (Reddit matches names case-insensitively)."""
    from rich.console import Console

    from contract.stage import Stage
    from jobs.runner import stage_io
    from schemas.usernames import read_usernames
    from storage.lake import Lake

    bl = write(tmp_path, "# requests\nAlice\n\n  BOB \n#Carol\n", name="blocklist.txt")
    cfg = load_config(LOCAL, [f"ingest.blocklist={bl}", f"lake.root={tmp_path / 'lake'}"])
    stage = Stage("s", lambda io: None, "local", outputs=(), files=("ingest.blocklist",))
    io = stage_io(stage, cfg, Lake(cfg.lake.root), Console(quiet=True))
    assert cfg.ingest.usernames() == io.names("ingest.blocklist") == {"alice", "bob"}
    assert read_usernames(bl, "ingest.blocklist") == {"alice", "bob"}


def test_stages_see_typed_sections() -> None:
    """A declared section is its package's own model; a key-by-key section a view."""
    from rich.console import Console

    from contract.errors import ContractError
    from contract.stage import Stage
    from graph.config import EncoderConfig
    from jobs.runner import stage_io
    from llm.config import LLMConfig
    from storage.lake import Lake

    cfg = load_config(LOCAL)
    stage = Stage(
        "s", lambda io: None, "local", outputs=(), config=("encoder", "llm", "bench.seed")
    )
    view = stage_io(stage, cfg, Lake(cfg.lake.root), Console(quiet=True)).config
    enc: EncoderConfig = view.encoder
    assert isinstance(enc, EncoderConfig) and enc == cfg.encoder
    assert isinstance(view.llm, LLMConfig) and view.llm.runtime().max_tokens == 512
    assert view.bench.seed == 0
    with pytest.raises(ContractError, match="bench.users"):
        _ = view.bench.users


def test_an_epoch_budget_below_the_workers_is_refused() -> None:
    msg = config_error(overrides=["encoder.edges_per_epoch=1", "encoder.num_workers=2"])
    assert "edges_per_epoch" in msg and "num_workers" in msg
    cfg = load_config(LOCAL, ["encoder.edges_per_epoch=2", "encoder.num_workers=2"])
    assert cfg.encoder.edges_per_epoch == 2
