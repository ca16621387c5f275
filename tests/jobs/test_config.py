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
