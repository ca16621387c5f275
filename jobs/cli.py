"""`zipp`: the command line."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from jobs.config import ConfigError, ZippConfig, load_config
from jobs.dag import BUILD_STAGES, SCORE_STAGES, STAGES
from jobs.entry import console, fail
from jobs.entry import run_stages as run_declared
from jobs.runner import dag_states, read_manifest, select, stage_summary
from schemas.tables import BENCH_MANIFEST
from storage.lake import Lake

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="ZIPP: Reddit personas for a frozen text-to-image model (ZIPBench).",
)
ConfigOpt = Annotated[str | None, typer.Option("-c", "--config", help="YAML profile (conf/*.yaml)")]
ForceOpt = Annotated[bool, typer.Option("--force", help="rerun stages even if current")]


def _fail(msg: str) -> None:
    fail(msg)


def _load(config: str | None, overrides: list[str] | None) -> ZippConfig:
    """The validated config, or exit 2 with the one-line config error."""
    try:
        return load_config(config, overrides or [])
    except ConfigError as e:
        _fail(str(e))


def _lake(cfg: ZippConfig) -> Lake:
    return Lake(cfg.lake.root, cfg.lake.format)


def run_stages(names: list[str], config: str | None, overrides: list[str], force: bool) -> None:
    """Run the named stages (all when empty) in DAG order."""
    try:
        stages = select(STAGES, names)
    except ValueError as e:
        _fail(str(e))
    run_declared(stages, config, overrides, force)


@app.command()
def sample(
    out: Annotated[str, typer.Option("--out", help="folder for dumps, images, ground truth")],
    users: Annotated[int, typer.Option(help="number of users")] = 2000,
    seed: Annotated[int, typer.Option(help="random seed (output is deterministic by seed)")] = 7,
    communities: Annotated[int, typer.Option(help="number of planted communities")] = 48,
    subreddits: Annotated[
        int, typer.Option(help="community subreddits (12 generic ones come on top)")
    ] = 1200,
    months: Annotated[str, typer.Option(help="comma-separated YYYY-MM months")] = "2021-05,2021-06",
    image_base_url: Annotated[
        str, typer.Option(help="base URL the images are served from")
    ] = "http://127.0.0.1:8765",
    image_size: Annotated[int, typer.Option(help="side of the rendered PNGs in pixels")] = 64,
    corrupt_lines: Annotated[int, typer.Option(help="corrupt lines per dump file")] = 2,
    images: Annotated[
        bool, typer.Option("--images/--no-images", help="render the PNGs (off: URLs only)")
    ] = True,
    zstd_level: Annotated[
        int, typer.Option(help="zstd level of the dumps (long-distance matching from 10)")
    ] = 3,
) -> None:
    """Write a Reddit world (planted world v2) as monthly RS_/RC_ .zst dumps, images and
    its ground truth."""
    from world.planted import SampleSpec
    from world.write import write_sample

    spec = SampleSpec(
        users=users,
        seed=seed,
        communities=communities,
        subreddits=subreddits,
        months=tuple(m.strip() for m in months.split(",") if m.strip()),
        image_base_url=image_base_url.rstrip("/"),
        image_size=image_size,
        corrupt_lines=corrupt_lines,
        images=images,
        zstd_level=zstd_level,
    )
    summary = write_sample(out, spec, console=console)
    t = Table(title=f"sample world -> {out}")
    t.add_column("file")
    t.add_column("lines", justify="right")
    for name, n in summary.items():
        t.add_row(name, f"{n:,}")
    console.print(t)


@app.command()
def ingest(
    dumps: Annotated[str, typer.Option("--dumps", help="folder, glob or file of dumps")],
    lake: Annotated[str, typer.Option("--lake", help="lake root")],
    config: ConfigOpt = None,
    force: ForceOpt = False,
    overrides: Annotated[list[str] | None, typer.Argument(help="key=value overrides")] = None,
) -> None:
    """Ingest Reddit dumps into bronze tables and the quarantine (Spark)."""
    run_stages(
        ["ingest"], config, [f"input.dumps={dumps}", f"lake.root={lake}", *(overrides or [])], force
    )


@app.command()
def run(
    args: Annotated[
        list[str] | None,
        typer.Argument(help="stage names (none: every stage) and key=value overrides"),
    ] = None,
    config: ConfigOpt = None,
    force: ForceOpt = False,
) -> None:
    """Run the DAG, or the named stages, skipping stages whose outputs are current."""
    args = args or []
    names = [a for a in args if "=" not in a]
    overrides = [a for a in args if "=" in a]
    run_stages(names, config, overrides, force)


@app.command()
def status(
    config: ConfigOpt = None,
    overrides: Annotated[list[str] | None, typer.Argument(help="key=value overrides")] = None,
) -> None:
    """Stages: current or not (and why), last run, time taken, output row counts."""
    cfg = _load(config, overrides)
    lake = _lake(cfg)
    t = Table(title=f"zipp status — lake {lake.root}")
    for col in ("stage", "engine", "state", "last run", "seconds", "outputs (rows)"):
        t.add_column(col)
    for row in dag_states(STAGES, cfg, lake):
        stage = row["stage"]
        m = read_manifest(lake, stage.name)
        state = "[green]current[/]" if row["current"] else f"[yellow]{row['why']}[/]"
        outputs = "\n".join(f"{n}: {lake.rows(n):,}" for n in stage.outputs)
        started = m and datetime.fromisoformat(m["started_at"]).strftime("%Y-%m-%d %H:%M")
        seconds = f"{m['seconds']:.1f}" if m else "-"
        t.add_row(stage.name, stage.engine, state, started or "-", seconds, outputs)
    console.print(t)


@app.command()
def dag(
    config: ConfigOpt = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="machine-readable (--format json)")
    ] = False,
    fmt: Annotated[
        str, typer.Option("--format", help="table | json | shell | airflow | k8s (schedules)")
    ] = "table",
    out: Annotated[str | None, typer.Option("--out", help="write to FILE, not stdout")] = None,
    schedule: Annotated[
        str | None, typer.Option(help="cron expression (default 0 3 2 * *: monthly)")
    ] = None,
    profile: Annotated[
        str | None, typer.Option(help="-c path the scheduled commands pass (default: -c)")
    ] = None,
    image: Annotated[str | None, typer.Option(help="k8s: container image")] = None,
    namespace: Annotated[str | None, typer.Option(help="k8s: namespace")] = None,
    spark_master: Annotated[
        str | None, typer.Option(help="when the profile leaves spark.master null")
    ] = None,
    ray_address: Annotated[
        str | None, typer.Option(help="Ray dashboard for `ray job submit` (http://head:8265)")
    ] = None,
    project_root: Annotated[
        str | None, typer.Option(help="project folder on the scheduler's machine")
    ] = None,
    overrides: Annotated[list[str] | None, typer.Argument(help="key=value overrides")] = None,
) -> None:
    """The DAG: each stage, its engine, which stage produces each table it reads, the
    files and config it declares, and whether it is current and why not. `--format
    shell|airflow|k8s` renders it as a schedule (jobs/schedules/)."""
    import json
    from pathlib import Path

    from jobs import schedules

    fmt = "json" if as_json else fmt
    if fmt not in ("table", "json", *schedules.FORMATS):
        _fail(f"unknown --format {fmt!r}: table, json, {', '.join(schedules.FORMATS)}")
    cfg = _load(config, overrides)
    if fmt in schedules.FORMATS:
        try:
            target = schedules.make_target(
                cfg,
                profile or config or "conf/local.yaml",
                overrides,
                schedule=schedule,
                spark_master=spark_master,
                ray_address=ray_address,
                project_root_dir=project_root,
                image=image,
                namespace=namespace,
            )
        except ValueError as e:
            _fail(str(e))
        text = schedules.render(fmt, STAGES, target, script=out)
        if out:
            Path(out).write_text(text)
            console.print(f"wrote {out}")
        else:
            sys.stdout.write(text)
        return
    rows = dag_states(STAGES, cfg, _lake(cfg))
    if fmt == "json":
        out_rows = [
            stage_summary(r["stage"])
            | {"current": r["current"], "why": r["why"], "producers": r["inputs"]}
            for r in rows
        ]
        text = json.dumps(out_rows, indent=1)
        if out:
            Path(out).write_text(text + "\n")
        else:
            print(text)
        return
    t = Table(title="zipp dag")
    for col in ("stage", "engine", "reads (← producer)", "files", "config", "state"):
        t.add_column(col)
    for r in rows:
        s = r["stage"]
        reads = [f"{t} ← {p or 'input'}" for t, p in r["inputs"].items()]
        reads += [f"{i} ← raw" for i in s.inputs if i.startswith("input.")]
        state = "[green]current[/]" if r["current"] else f"[yellow]{r['why']}[/]"
        t.add_row(
            s.name, s.engine, "\n".join(reads), "\n".join(s.files), "\n".join(s.config), state
        )
    console.print(t)


@app.command()
def ablation(
    config: ConfigOpt = None,
    only: Annotated[
        str | None,
        typer.Option(help="comma-separated encoders (tfidf,als,lightgcn,sage,gat,gatv2)"),
    ] = None,
    overrides: Annotated[list[str] | None, typer.Argument(help="key=value overrides")] = None,
) -> None:
    """Encoder ablation on the silver graph: posting accuracy of TF-IDF, implicit ALS,
    LightGCN, GraphSAGE, GAT, GATv2, the GNNs with and without ImageAlign (same splits and
    metrics). Saves reports/ablation/ablation.{parquet,md}."""
    from engines import starter
    from graph.ablation_report import ablation_report, select_variants

    cfg = _load(config, overrides)
    lake = _lake(cfg)
    if not lake.rows("silver/edges"):
        _fail(f"no silver/edges in {lake.root}: run 'zipp run graph images features' first")
    wanted = {w.strip() for w in only.split(",")} if only else None
    try:
        variants = select_variants(wanted)
    except ValueError as e:
        _fail(f"unknown encoder(s) for --only: {e}")
    starter("ray", cfg)()
    report = ablation_report(
        str(lake.root), cfg.encoder, variants, lambda m: console.print(f"  {m}")
    )
    t = Table(title=report.title)
    for col in report.columns:
        t.add_column(col, justify="left" if col == "note" else "right")
    for cells in report.cells:
        t.add_row(*cells)
    console.print(t)
    parquet, md = report.files
    console.print(f"saved {parquet} and {md}")


bench_app = typer.Typer(no_args_is_help=True, help="ZIPBench: build and score the benchmark.")
app.add_typer(bench_app, name="bench")


@bench_app.command("build")
def bench_build(
    config: ConfigOpt = None,
    force: ForceOpt = False,
    manifest: Annotated[
        str | None, typer.Option(help="a frozen _manifests/zipbench.json to rebuild from")
    ] = None,
    overrides: Annotated[list[str] | None, typer.Argument(help="key=value overrides")] = None,
) -> None:
    """Select users and references, base prompts, personas, rewrites and images
    (bench -> personas -> preferences -> rewrite -> generate); freezes the manifest."""
    import json
    from pathlib import Path

    from generation.bench_manifest import compare, freeze, manifest_overrides

    extra = list(overrides or [])
    frozen = None
    if manifest:
        if not Path(manifest).is_file():
            _fail(f"no manifest at {manifest}")
        frozen = json.loads(Path(manifest).read_text())
        extra = [*manifest_overrides(manifest), *extra]
    run_stages(list(BUILD_STAGES), config, extra, force)
    cfg = load_config(config, extra)
    upto = [s.name for s in STAGES].index(BUILD_STAGES[-1]) + 1
    behind = [r for r in dag_states(STAGES[:upto], cfg, _lake(cfg)) if not r["current"]]
    for r in behind:
        console.print(
            f"[yellow]not current: {r['stage'].name} ({r['why']}); 'zipp run' rebuilds it[/]"
        )
    built = freeze(cfg, _lake(cfg), [spec.label for spec in cfg.llm.specs()])
    console.print(
        f"ZIPBench: {len(built['users']):,} users, {len(built['prompts']):,} (user, prompt) "
        f"pairs, {built['tables']['bench/images']['rows']:,} images; manifest "
        f"{_lake(cfg).path(BENCH_MANIFEST)}"
    )
    if frozen is not None:
        diffs = compare(frozen, built)
        if diffs:
            _fail(f"rebuild differs from {manifest} in: {', '.join(diffs)}")
        console.print(f"[green]rebuild matches {manifest}[/]")


@bench_app.command("score")
def bench_score(
    config: ConfigOpt = None,
    force: ForceOpt = False,
    overrides: Annotated[list[str] | None, typer.Argument(help="key=value overrides")] = None,
) -> None:
    """Score the built benchmark (CLIPScore, judge) and write the report."""
    run_stages(list(SCORE_STAGES), config, list(overrides or []), force)
    cfg = load_config(config, list(overrides or []))
    console.print(f"report: {_lake(cfg).path('reports/zipbench/index.html')}")


@bench_app.command("external")
def bench_external(
    name: Annotated[str, typer.Argument(help="pip | pickapic | rapidata | movielens")],
    path: Annotated[
        str | None,
        typer.Option(help="the benchmark's files (movielens: recbole's packaged ml-100k if none)"),
    ] = None,
    config: ConfigOpt = None,
    users: Annotated[int, typer.Option(min=1, help="users, most history first")] = 20,
    references: Annotated[int, typer.Option(min=1, help="newest items held out per user")] = 1,
    pairs: Annotated[int, typer.Option(min=1, help="rapidata: pairs read")] = 200,
    overrides: Annotated[list[str] | None, typer.Argument(help="key=value overrides")] = None,
) -> None:
    """An external benchmark (PIP, Pick-a-Pic, RapidData, MovieLens) into the bench tables
    and report under the lake's external/NAME/: personas from each user's history through
    the cold start, rewrites, images, scores (rapidata: the scorers vs the human votes)."""
    from service.external.run import run_external

    cfg = _load(config, overrides)
    try:
        summary = run_external(cfg, name, path, console, references, users, pairs)
    except (FileNotFoundError, ValueError) as e:
        _fail(str(e))
    shown = {k: v for k, v in summary.items() if k != "agreement"}
    console.print(json.dumps(shown, indent=1, default=str), highlight=False)
    for row in summary.get("agreement", []):
        console.print(f"  {row['scorer']}: agreement {row['agreement']}, srocc {row['srocc']}")


@app.command("attention-check")
def attention_check(
    ground_truth: Annotated[str, typer.Option(help="the sample world's ground_truth folder")],
    config: ConfigOpt = None,
    overrides: Annotated[list[str] | None, typer.Argument(help="key=value overrides")] = None,
) -> None:
    """Sample world only: how often attention ranks a user's planted communities'
    subreddits above raw activity counts (gold/attention vs the planted truth)."""
    from pathlib import Path

    from evaluation.attention import check_attention

    cfg = _load(config, overrides)
    lake = _lake(cfg)
    if not lake.rows("gold/attention"):
        _fail(f"no gold/attention in {lake.root}: run 'zipp run embed' first")
    result = check_attention(
        lake.read("gold/attention"),
        lake.read("silver/users"),
        lake.read("silver/subreddits"),
        Path(ground_truth),
    )
    console.print(result.summary())


@app.command("persona-check")
def persona_check(
    ground_truth: Annotated[str, typer.Option(help="the sample world's ground_truth folder")],
    config: ConfigOpt = None,
    overrides: Annotated[list[str] | None, typer.Argument(help="key=value overrides")] = None,
) -> None:
    """Sample world only: each LLM's personas against the planted truth (community
    precision/recall, generic subreddits, disliked community, demographics, colour words)."""
    from evaluation.persona_fidelity import MissingTruth, fidelity_table, persona_fidelity

    cfg = _load(config, overrides)
    lake = _lake(cfg)
    if not lake.rows("gold/personas"):
        _fail(f"no gold/personas in {lake.root}: run 'zipp run personas' first")
    try:
        results = persona_fidelity(
            lake.read("gold/personas"), ground_truth, users=lake.read("silver/users")
        )
    except MissingTruth as e:
        _fail(str(e))
    for r in results:
        t = Table(title=f"persona fidelity — {r.llm} (vs {ground_truth})")
        t.add_column("measure")
        t.add_column("value")
        for measure, value in fidelity_table([r]).itertuples(index=False):
            t.add_row(measure, f"{value:.3f}" if isinstance(value, float) else str(value))
        console.print(t)


@app.command()
def persona(
    user: Annotated[
        str | None, typer.Option(help="user id or author; default: the first benchmark user")
    ] = None,
    new: Annotated[
        bool, typer.Option("--new", help="cold start: a persona for a user not in the lake")
    ] = False,
    subreddits: Annotated[
        str | None, typer.Option(help="--new: the communities they are in, comma-separated")
    ] = None,
    comments: Annotated[
        Path | None,
        typer.Option(help="--new: their comments, 'subreddit<TAB>text' or JSON lines"),
    ] = None,
    image: Annotated[
        list[str] | None, typer.Option(help="--new: an image URL of theirs (repeatable)")
    ] = None,
    prompt: Annotated[
        str | None, typer.Option(help="--new: a base prompt to rewrite by each method")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="--new: print JSON")] = False,
    config: ConfigOpt = None,
    overrides: Annotated[list[str] | None, typer.Argument(help="key=value overrides")] = None,
) -> None:
    """Show a user's persona (per LLM), its evidence size and the user's rewrites; with
    --new, make one for a user the system never saw (cold start, no retraining)."""
    import pyarrow.compute as pc
    from rich.markup import escape

    cfg = _load(config, overrides)
    if new:
        _cold_start(cfg, subreddits, comments, image or [], prompt, as_json)
        return
    lake = _lake(cfg)
    personas = lake.read("gold/personas")
    if not personas.num_rows:
        _fail(f"no gold/personas in {lake.root}: run 'zipp run personas' first")
    users = lake.read("silver/users")
    if user is None:
        bench = lake.read("bench/users")
        uid = bench["user_id"][0].as_py() if bench.num_rows else personas["user_id"][0].as_py()
    elif user.isdigit():
        uid = int(user)
    else:
        hit = users.filter(pc.equal(users["author"], user))
        if not hit.num_rows:
            _fail(f"no user {user!r} in silver/users")
        uid = hit["user_id"][0].as_py()
    rows = personas.filter(pc.equal(personas["user_id"], uid)).to_pylist()
    if not rows:
        _fail(f"no persona for user {uid}")
    for r in rows:
        t = Table(title=f"persona of user {uid} — {r['llm']} ({r['source']}, {r['status']})")
        t.add_column("field")
        t.add_column("value")
        demo = {k: v for k, v in (r["demographics"] or {}).items() if v}
        t.add_row("demographics", escape(", ".join(f"{k}: {v}" for k, v in demo.items()) or "-"))
        for key in ("interests", "affective_traits", "visual_interests"):
            t.add_row(key.replace("_", " "), escape(", ".join(r[key] or []) or "-"))
        t.add_row("text", escape(r["text"]) if r["text"] else f"[red]{escape(r['reason'])}[/]")
        t.add_row(
            "evidence",
            f"{r['evidence_tokens']:,} tokens ({r['tokenizer']}), "
            f"{len(r['evidence_subreddits'])} subreddits, {len(r['evidence_ids'])} snippets",
        )
        console.print(t)
    rewrites = lake.read("bench/rewrites")
    mine = rewrites.filter(pc.equal(rewrites["user_id"], uid)).to_pylist()
    if mine:
        t = Table(title=f"rewrites of user {uid}")
        for col in ("llm", "method", "base prompt", "prompt", "negative"):
            t.add_column(col)
        for r in sorted(mine, key=lambda r: (r["llm"], r["base_prompt"], r["method"])):
            shown = (
                escape(r["prompt"]) if r["status"] == "done" else f"[red]{escape(r['reason'])}[/]"
            )
            cells = (r["llm"], r["method"], r["base_prompt"], r["negative_prompt"] or "")
            t.add_row(*map(escape, cells[:3]), shown, escape(cells[3]))
        console.print(t)


def _cold_start(
    cfg, subreddits: str | None, comments: Path | None, urls: list[str], prompt, as_json: bool
) -> None:
    """`zipp persona --new`: the cold-start persona (service.cold_start), printed."""
    from rich.markup import escape

    from service.cold_start import NewUser, PersonaEngine, fetch_images, read_comments

    names = [s for s in (subreddits or "").split(",") if s.strip()]
    if not names:
        _fail("--new needs --subreddits a,b,c (the communities the new user is in)")
    try:
        said = read_comments(comments) if comments else []
    except (OSError, ValueError) as e:
        _fail(str(e))
    images, refused = fetch_images(urls, cfg.images)
    try:
        with console.status("loading the lake's graph, encoder and LLM"):
            engine = PersonaEngine(cfg)
        out = engine.persona(NewUser(tuple(names), tuple(said), tuple(images)), prompt=prompt)
    except (FileNotFoundError, ValueError) as e:
        _fail(str(e))
    shown = out.public() | {"images_refused": refused}
    if as_json:
        print(json.dumps(shown, indent=2))
        return
    t = Table(title=f"cold-start persona — {out.llm} ({out.status}, {out.seconds:.2f} s)")
    t.add_column("field")
    t.add_column("value")
    p = out.persona or {}
    demo = {k: v for k, v in (p.get("demographics") or {}).items() if v}
    t.add_row("demographics", escape(", ".join(f"{k}: {v}" for k, v in demo.items()) or "-"))
    for key in ("interests", "affective_traits", "visual_interests"):
        t.add_row(key.replace("_", " "), escape(", ".join(p.get(key) or []) or "-"))
    t.add_row("text", escape(p.get("text") or f"[failed] {out.reason}"))
    ranked = ", ".join(f"r/{n} ({a:.2f})" for n, a in out.ranked)
    t.add_row("attention", escape(ranked))
    t.add_row("evidence", f"{out.evidence_tokens:,} tokens")
    if out.unknown_subreddits:
        t.add_row("not in the lake", escape(", ".join(out.unknown_subreddits)))
    for r in refused:
        t.add_row("image refused", escape(f"{r['url']}: {r['reason']}"))
    for method, text in out.rewrites.items():
        t.add_row(f"rewrite: {method}", escape(text))
    console.print(t)


@app.command()
def serve(
    config: ConfigOpt = None,
    overrides: Annotated[list[str] | None, typer.Argument(help="key=value overrides")] = None,
) -> None:
    """The persona service (FastAPI on uvicorn, `serve.*` keys): cold-start personas, lake
    personas by pseudonym, rewrites, images; bearer tokens from serve.tokens_file and/or
    $ZIPP_SERVE_TOKENS (never printed)."""
    import logging
    import socket

    import uvicorn

    from service.api import create_app, load_tokens
    from service.cold_start import PersonaEngine
    from service.engine_process import EngineProcess

    cfg = _load(config, overrides)
    s = cfg.serve
    # the event loop and the engine's thread share the interpreter: switch between them
    # every 0.5 ms, not Python's default 5 ms, so a parsed request reaches the engine (and
    # a reply the socket) without waiting out the other thread's slice
    sys.setswitchinterval(s.switch_interval_ms / 1000)
    if s.torch_threads:
        import torch

        torch.set_num_threads(s.torch_threads)
    try:
        tokens = load_tokens(cfg)
        family = socket.AF_INET6 if ":" in s.host else socket.AF_INET
        # IPPROTO_TCP named: asyncio sets TCP_NODELAY only on such sockets (without it
        # every response waits ~40 ms for the client's delayed ACK)
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((s.host, s.port))
        sock.listen(2048)  # connections wait in the backlog until the engine is loaded
        with console.status("loading the lake's graph, encoder and LLM"):
            engine = EngineProcess(cfg) if s.engine_process else PersonaEngine(cfg)
        api = create_app(cfg, engine)
    except (FileNotFoundError, ValueError, OSError) as e:
        _fail(str(e))
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("zipp.serve").setLevel(s.log_level.upper())
    console.print(
        f"serving on http://{shown}:{port} (docs /docs, {len(tokens)} bearer tokens; "
        "/healthz and /metrics need none)",
        highlight=False,
    )
    server = uvicorn.Server(uvicorn.Config(api, log_level=s.log_level, access_log=False))
    try:
        server.run(sockets=[sock])
    finally:
        engine.close()


@app.command()
def export(
    kind: Annotated[str, typer.Argument(help="personas | bench")],
    fmt: Annotated[str, typer.Option("--format", help="parquet | jsonl | delta | hf")],
    out: Annotated[str, typer.Option("--out", help="folder to write the export to")],
    include_usernames: Annotated[
        bool, typer.Option("--include-usernames", help="keep Reddit user names (no pseudonyms)")
    ] = False,
    key_env: Annotated[
        str | None,
        typer.Option(
            "--key-env",
            help="environment variable holding the pseudonym key (default: export.key_env)",
        ),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="replace a non-empty --out")
    ] = False,
    config: ConfigOpt = None,
    overrides: Annotated[list[str] | None, typer.Argument(help="key=value overrides")] = None,
) -> None:
    """Export personas or the benchmark (with images in hf) as Parquet, JSONL, Delta or a
    HF `datasets` folder, with a dataset card (README.md); user names become keyed HMAC
    pseudonyms and rare communities their labels unless user names are included."""
    import os
    from pathlib import Path

    from rich.markup import escape

    from exports.export import FORMATS, KINDS, ExportError
    from exports.export import export as run_export

    if kind not in KINDS:
        _fail(f"unknown export {kind!r}: choose one of {', '.join(KINDS)}")
    if fmt not in FORMATS:
        _fail(f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)}")
    cfg = _load(config, overrides)
    key_env = key_env or cfg.export.key_env
    key = None
    if not include_usernames:
        key = os.environ.get(key_env) or None
        if key is None:
            _fail(
                f"environment variable {key_env} is not set: it must hold the secret key for "
                "pseudonymising user names (or pass --include-usernames)"
            )
    try:
        rows = run_export(
            kind,
            fmt,
            Path(out),
            Lake(cfg.lake.root, cfg.lake.format),
            include_usernames,
            key,
            overwrite,
            min_community_users=cfg.export.min_community_users,
            key_env=key_env,
        )
    except (ExportError, FileNotFoundError) as e:
        _fail(str(e))
    users = "user names included" if include_usernames else f"user names keyed by ${key_env}"
    console.print(f"wrote {rows:,} {kind} rows ({fmt}, {users}) to {escape(str(Path(out)))}")


study_app = typer.Typer(
    no_args_is_help=True, help="The human A/B study: blind pairwise votes of raters (web app)."
)
app.add_typer(study_app, name="study")


@study_app.command("create")
def study_create(
    methods: Annotated[str, typer.Option(help="rewrite methods to compare, comma-separated")],
    prompts: Annotated[Path, typer.Option(help="prompts file, one a line (# comments)")],
    raters: Annotated[int, typer.Option(help="invite codes to make (one per rater)")],
    votes: Annotated[
        int | None, typer.Option(help="votes per rater; default: every prompt × method pair")
    ] = None,
    name: Annotated[str, typer.Option(help="the study's name")] = "study",
    config: ConfigOpt = None,
    overrides: Annotated[list[str] | None, typer.Argument(help="key=value overrides")] = None,
) -> None:
    """Create a study and print its invite links, once (the store keeps only digests)."""
    from service.study.commands import create

    cfg = _load(config, overrides)
    try:
        study, links, found = create(cfg, name, methods.split(","), prompts, raters, votes)
    except ValueError as e:
        _fail(str(e))
    console.print(
        f"study {study}: {', '.join(found['methods'])}; {len(found['prompts'])} prompts; "
        f"{found['votes_per_rater']} votes per rater; {len(links)} invite links (shown once):"
    )
    for link in links:
        typer.echo(link)


@study_app.command("serve")
def study_serve(
    host: Annotated[str | None, typer.Option(help="address to bind (study.host)")] = None,
    port: Annotated[int | None, typer.Option(help="port (study.port)")] = None,
    config: ConfigOpt = None,
    overrides: Annotated[list[str] | None, typer.Argument(help="key=value overrides")] = None,
) -> None:
    """Run the study's web app and its render worker (admin pages at /admin)."""
    from service.study.server import serve

    cfg = _load(config, overrides)
    try:
        serve(cfg, host, port)
    except ValueError as e:
        _fail(str(e))


@study_app.command("export")
def study_export(
    out: Annotated[Path | None, typer.Option(help="FILE.csv or FILE.parquet")] = None,
    lake: Annotated[
        bool, typer.Option("--lake", help="also write the lake's bench/study_votes")
    ] = False,
    study: Annotated[str | None, typer.Option(help="one study's votes (default: all)")] = None,
    config: ConfigOpt = None,
    overrides: Annotated[list[str] | None, typer.Argument(help="key=value overrides")] = None,
) -> None:
    """Export the votes, methods unblinded, raters by random id (CSV, Parquet, lake)."""
    from service.study.commands import export as export_votes

    if out is None and not lake:
        _fail("nothing to do: give --out FILE.csv|FILE.parquet and/or --lake")
    cfg = _load(config, overrides)
    try:
        rows, wrote = export_votes(cfg, out, lake, study)
    except ValueError as e:
        _fail(str(e))
    console.print(f"wrote {rows:,} votes to {', '.join(wrote)}")


@study_app.command("results")
def study_results(
    study: Annotated[str | None, typer.Option(help="one study (default: all)")] = None,
    config: ConfigOpt = None,
    overrides: Annotated[list[str] | None, typer.Argument(help="key=value overrides")] = None,
) -> None:
    """Progress and win rates (two-sided binomial p, can't tell left out) per method pair."""
    from service.study.commands import win_table

    cfg = _load(config, overrides)
    try:
        table, progress = win_table(cfg, study)
    except ValueError as e:
        _fail(str(e))
    for p in progress:
        console.print(", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in p.items()))
    t = Table(title="human A/B study: win rates")
    for col in ("study", "method", "vs", "votes", "wins", "losses", "can't tell", "win", "p"):
        t.add_column(col)
    for r in table.to_dict("records"):
        rate = "-" if r["win_rate"] != r["win_rate"] else f"{r['win_rate']:.3f}"
        cells = (r["study"], r["method"], r["vs"], r["votes"], r["wins"], r["losses"], r["ties"])
        t.add_row(*map(str, cells), rate, f"{r['p_value']:.3g}")
    console.print(t)


config_app = typer.Typer(no_args_is_help=True, help="Configuration profiles (conf/*.yaml).")
app.add_typer(config_app, name="config")


@config_app.command("show")
def config_show(
    config: ConfigOpt = None,
    overrides: Annotated[list[str] | None, typer.Argument(help="key=value overrides")] = None,
) -> None:
    """Print the merged, validated config as YAML: the profile over its `base` (and the
    base's base...), with the overrides applied."""
    from omegaconf import OmegaConf

    cfg = _load(config, overrides)
    typer.echo(OmegaConf.to_yaml(cfg.model_dump(mode="json")), nl=False)


def main() -> None:  # pragma: no cover - console script shim
    app(prog_name="zipp")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
