"""External benchmarks: the MovieLens posters loader on a small file set."""

from __future__ import annotations

import pytest
from PIL import Image

from evaluation.external import load_external


@pytest.fixture
def movielens(tmp_path):
    (tmp_path / "movies.csv").write_text(
        "movieId,title,genres\n1,Toy Story (1995),Animation\n2,Heat (1995),Crime\n"
        "3,Alien (1979),Horror\n4,Up (2009),Animation\n"
    )
    (tmp_path / "ratings.csv").write_text(
        "userId,movieId,rating,timestamp\n"
        "1,1,5.0,100\n1,2,4.0,200\n1,3,4.5,300\n1,4,2.0,400\n"  # 4 is not liked
        "2,1,4.0,100\n2,2,5.0,150\n"
        "3,3,5.0,100\n"  # one liked movie: nothing left after holding one out
    )
    (tmp_path / "posters").mkdir()
    for m in ("1", "2", "3"):  # movie 4 has no poster
        Image.new("RGB", (8, 12), (int(m) * 60, 0, 0)).save(tmp_path / "posters" / f"{m}.jpg")
    return tmp_path


def test_movielens_holds_out_the_newest_liked_posters(movielens):
    b = load_external("movielens", movielens, references=1)
    assert b.name == "movielens"
    refs = {(r["user_id"], r["item_id"]) for r in b.references.to_pylist()}
    assert refs == {("1", "3"), ("2", "2")}  # newest liked with a poster; user 3 dropped
    hist = sorted((r["user_id"], r["item_id"]) for r in b.history.to_pylist())
    assert hist == [("1", "1"), ("1", "2"), ("2", "1")]
    prompts = {r["prompt_id"]: r["prompt"] for r in b.prompts.to_pylist()}
    assert prompts == {
        "ml-3": "a movie poster for Alien (1979)",
        "ml-2": "a movie poster for Heat (1995)",
    }
    assert all(Image.open(r["image_path"]).size == (8, 12) for r in b.references.to_pylist())


def test_bad_files_and_unknown_benchmarks_are_clear_errors(movielens, tmp_path_factory):
    (movielens / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,,5.0,100\n")
    with pytest.raises(ValueError, match=r"ratings.csv:2: empty movieId"):
        load_external("movielens", movielens)
    with pytest.raises(FileNotFoundError, match="ratings.csv not found"):
        load_external("movielens", tmp_path_factory.mktemp("empty"))
    with pytest.raises(ValueError, match="zipp bench external pip"):
        load_external("pip", movielens)
