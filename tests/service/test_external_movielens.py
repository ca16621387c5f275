"""`zipp bench external movielens`: recbole's packaged MovieLens-100K found with
importlib and parsed (never copied into the repo), and end to end on a slice of it the
test writes in recbole's atomic format with posters: rated titles as the persona's only
evidence, the newest liked movie held out, its poster the reference."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from service.external import movielens
from service.external.run import run_external
from storage.lake import Lake


def test_the_packaged_movielens_100k_is_found_and_parsed():
    folder = movielens.packaged()
    assert (folder / "ml-100k.inter").is_file()
    bench = movielens.load(None, references=1, users=3)
    assert bench.references.num_rows == 3 and bench.prompts.num_rows == 3
    assert all(p.startswith("a movie poster for ") for p in bench.prompts["prompt"].to_pylist())
    assert all(r >= movielens.LIKED for r in bench.references["rating"].to_pylist())
    hist = bench.history.to_pylist()
    assert hist and all(h["rating"] is not None for h in hist)
    newest = {r["user_id"]: r["timestamp"] for r in bench.references.to_pylist()}
    assert all(h["timestamp"] <= newest[h["user_id"]] for h in hist if h["rating"] >= 4)


def test_movielens_csvs_are_read_too(tmp_path):
    (tmp_path / "ratings.csv").write_text(
        "userId,movieId,rating,timestamp\n7,1,5.0,100\n7,2,3.0,200\n7,3,4.5,300\n7,4,2.0,400\n"
    )
    (tmp_path / "movies.csv").write_text("movieId,title\n1,Up (2009)\n3,Heat (1995)\n")
    b = movielens.load(tmp_path, references=1)
    assert b.prompts["prompt"].to_pylist() == ["a movie poster for Heat (1995)"]
    assert [r["title"] for r in b.history.to_pylist()] == ["Up (2009)", "2", "4"]


def write_slice(folder, users=4, per_user=6):
    """The first `per_user` ratings of `users` users of the packaged data, in recbole's
    atomic format, with a poster for every movie they rated."""
    src = movielens.packaged()
    inter = (src / "ml-100k.inter").read_text().splitlines()
    keep, rows = {}, []
    for line in inter[1:]:
        u = line.split("\t")[0]
        if len(keep) < users or u in keep:
            keep.setdefault(u, 0)
            if keep[u] < per_user:
                keep[u] += 1
                rows.append(line)
    (folder / "slice.inter").write_text("\n".join([inter[0], *rows]) + "\n")
    items = {r.split("\t")[1] for r in rows}
    lines = (src / "ml-100k.item").read_text(encoding="utf-8", errors="replace").splitlines()
    (folder / "slice.item").write_text(
        "\n".join([lines[0], *(ln for ln in lines[1:] if ln.split("\t")[0] in items)]) + "\n"
    )
    (folder / "posters").mkdir()
    for n, i in enumerate(sorted(items)):
        Image.new("RGB", (8, 12), (40 * n % 255, 90, 200 - 20 * n % 200)).save(
            folder / "posters" / f"{i}.png"
        )
    return rows


@pytest.fixture(scope="module")
def engine(service_lake):
    """The cold start's engine with a small persona token budget (60)."""
    from service.cold_start import PersonaEngine

    eng = PersonaEngine(config(service_lake))
    yield eng
    eng.close()


def test_history_only_evidence_keeps_the_newest_items_within_the_budget(engine):
    from service.cold_start import NewUser

    history = tuple(
        ("rated 5/5", f"Film number {i} about tallships ({1990 + i})") for i in range(12)
    )
    ev = engine.history_evidence(NewUser(subreddits=(), history=history))
    assert 0 < ev.tokens <= 60 and ev.snippets[-1] == history[-1][1]
    assert history[0][1] not in ev.text  # the oldest gave way
    made = engine.persona(NewUser(subreddits=(), history=history))
    assert made.status == "done" and made.ranked == [] and made.embedding == []
    assert "tallships" in made.persona["visual_interests"]


def test_movielens_end_to_end_on_a_slice(service_lake, tmp_path, engine):
    rows = write_slice(tmp_path)
    got = run_external(engine.cfg, "movielens", tmp_path, Console_quiet(), users=4, engine=engine)
    assert got["users"] == 4 and got["failed_references"] == 0
    lake = Lake(service_lake["root"] / "external" / "movielens")
    prompts = lake.read("bench/prompts").to_pylist()
    assert all(p["prompt"].startswith("a movie poster for ") for p in prompts)
    liked = {}
    for line in rows:
        u, item, rating, ts = line.split("\t")[:4]
        if float(rating) >= 4:
            liked.setdefault(int(u), []).append((int(float(ts)), item))
    refs = {r["user_id"]: r["post_id"] for r in lake.read("bench/references").to_pylist()}
    for u, item in refs.items():  # the newest liked movie (posters for all: every one counts)
        newest = max(t for t, _ in liked[u])
        assert item in {i for t, i in liked[u] if t == newest}
    titles = {}
    for line in (tmp_path / "slice.item").read_text().splitlines()[1:]:
        item, title = line.split("\t")[:2]
        titles[item] = title.lower()
    rated = {}
    for line in rows:
        u, item = line.split("\t")[:2]
        if item != refs.get(int(u)):
            rated[int(u)] = rated.get(int(u), "") + " " + titles[item]
    for r in lake.read("bench/rewrites").to_pylist():
        if r["method"] == "zero_shot":  # the persona's words come from their rated titles
            added = r["prompt"][len(r["base_prompt"]) :].replace(",", " ").split()
            assert any(w in rated[r["user_id"]] for w in added if len(w) > 4), r["prompt"]
    scores = lake.read("bench/scores").to_pandas()
    assert len(scores) == 4 * len(prompts) and scores["clip_ref"].notna().all()
    html = (lake.path("reports/zipbench") / "index.html").read_text()
    assert "External benchmark: movielens" in html


def Console_quiet():
    from rich.console import Console

    return Console(file=io.StringIO())


def config(service_lake):
    """The service lake's config, one image per (user, prompt, method)."""
    from jobs.config import load_config

    extra = ["diffusion.seeds=1", "personas.token_budget=60"]
    return load_config("conf/local.yaml", [*service_lake["args"], *extra])
