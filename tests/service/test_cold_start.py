"""Cold start on a small real lake: the inductive embedding reproduces the embed stage
for a lake user, a new user's persona names what they said, unknown subreddits are
reported, and rewrites come per method."""

from __future__ import annotations

import numpy as np
import pyarrow.compute as pc
import pytest

from graph.cold_start import InductiveEncoder
from graph.train import lake_tables
from service.cold_start import NewUser, PersonaEngine, read_comments
from storage.lake import Lake


@pytest.fixture(scope="module")
def engine(service_lake):
    return PersonaEngine(service_lake["config"])


def test_a_lake_user_embedded_cold_gets_the_embed_stages_embedding_and_attention(service_lake):
    root = service_lake["root"]
    enc = InductiveEncoder.load(lake_tables(str(root)), root / "models/encoder/model.pt")
    lake = Lake(root)
    emb, att, edges = (
        lake.read(t) for t in ("gold/user_embeddings", "gold/attention", "silver/edges")
    )
    nf = lake.read("silver/node_features")
    visual = nf.filter(pc.equal(nf["feature_set"], "visual"))
    vis = dict(zip(visual["node_id"].to_pylist(), visual["vector"].to_pylist(), strict=True))
    checked = 0
    for u in emb["user_id"].to_pylist()[:8]:
        mine = att.filter(pc.equal(att["user_id"], u)).to_pylist()
        e = {r["subreddit_id"]: r for r in edges.filter(pc.equal(edges["user_id"], u)).to_pylist()}
        subs = [r["subreddit_id"] for r in mine]
        cold = enc.embed(
            subs,
            posts=[e[s]["posts"] for s in subs],
            comments=[e[s]["comments"] for s in subs],
            visual=np.asarray(vis[u]) if u in vis else None,
            scores=[e[s]["score_sum"] for s in subs],
        )
        ref = np.asarray(emb.filter(pc.equal(emb["user_id"], u))["embedding"][0].as_py())
        assert np.abs(cold.embedding - ref).max() < 1e-3  # float16 inputs
        assert cold.subreddit_ids == subs  # the same ranking as gold/attention
        np.testing.assert_allclose(cold.attention, [r["attention"] for r in mine], atol=1e-3)
        checked += 1
    assert checked == 8


def test_a_new_users_persona_from_their_subreddits_and_comments(engine, service_lake):
    subs = engine.subreddits.sort_by([("users", "ascending")])["subreddit"].to_pylist()
    niche = subs[0]  # the smallest: no hub
    user = NewUser(
        subreddits=(niche, "r/AskReddit", "no_such_subreddit_xyz"),
        comments=((niche, "my quokkazebra project came out great, look at the quokkazebra"),),
    )
    out = engine.persona(user, prompt="a lighthouse at dawn")
    assert out.status == "done", out.reason
    assert out.unknown_subreddits == ["no_such_subreddit_xyz"]
    assert {n for n, _ in out.ranked} == {niche, "AskReddit"}
    assert abs(sum(a for _, a in out.ranked) - 1.0) < 1e-3  # attention over their subreddits
    assert "quokkazebra" in out.persona["visual_interests"]  # their own words
    assert set(out.rewrites) == {"none", "zero_shot", "viper"}
    assert "quokkazebra" in out.rewrites["zero_shot"]
    assert "quokkazebra" not in out.rewrites["none"]
    assert out.evidence_tokens <= service_lake["config"].personas.token_budget
    public = out.public()
    assert "embedding" not in public and "evidence" not in public


def test_no_known_subreddit_is_a_clear_error(engine):
    with pytest.raises(ValueError, match="none of the subreddits"):
        engine.persona(NewUser(subreddits=("nothing_here_1", "nothing_here_2")))


def test_comments_files_in_both_formats_and_a_bad_line_named(tmp_path):
    f = tmp_path / "c.txt"
    f.write_text('knitting\tcables all day\n\n{"subreddit": "r/pics", "text": "a sunset"}\n')
    assert read_comments(f) == [("knitting", "cables all day"), ("r/pics", "a sunset")]
    f.write_text("knitting\tok\njust words\n")
    with pytest.raises(ValueError, match=r"c.txt:2"):
        read_comments(f)


def test_zipp_persona_new_prints_the_persona_and_refuses_a_metadata_url(service_lake, tmp_path):
    import json

    from typer.testing import CliRunner

    from jobs.cli import app

    lake = Lake(service_lake["root"])
    niche = lake.read("silver/subreddits").sort_by("users")["subreddit"][0].as_py()
    said = tmp_path / "said.txt"
    said.write_text(f"{niche}\tthe walrusquill glaze came out right\n")
    out = CliRunner().invoke(
        app,
        [
            "persona", "--new", "--subreddits", f"{niche},not_a_sub_zz", "--comments", str(said),
            "--image", "http://169.254.169.254/latest/meta-data", "--prompt", "a quiet harbour",
            "--json", "-c", "conf/local.yaml", *service_lake["args"],
        ],
    )  # fmt: skip
    assert out.exit_code == 0, out.output
    got = json.loads(out.output[out.output.index("{") :])
    assert got["status"] == "done" and got["unknown_subreddits"] == ["not_a_sub_zz"]
    assert "walrusquill" in got["persona"]["visual_interests"]
    assert got["images_refused"][0]["reason"] == "blocked_address"
    assert set(got["rewrites"]) == {"none", "zero_shot", "viper"}
    authors = set(lake.read("silver/users")["author"].to_pylist())
    assert not any(a and a in out.output for a in authors if len(a) > 3)  # no username
    empty = CliRunner().invoke(app, ["persona", "--new", *service_lake["args"]])
    assert empty.exit_code != 0 and "--subreddits" in empty.output
