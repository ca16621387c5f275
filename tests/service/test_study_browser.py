"""The human A/B study in a real headless Chromium against a real uvicorn server on
127.0.0.1 running the app on the service lake (real persona engine, smoke diffusion
model, SQLite): two raters go invite -> survey -> renders -> a vote on every pair; no
method is named anywhere in a pair page; sides are drawn per pair, stored and balanced;
a reload and a reopened invite show the same pair; a second vote on a pair is refused by
the server; the admin's progress page, results and exports agree; a rater deletes their
data and keeps their votes anonymous."""

from __future__ import annotations

import io
import os
import re

import httpx
import pyarrow.csv as pacsv
import pytest

from service.study.store import Store
from tests.service.test_study import running

TOKEN = "admin-token-for-the-browser-test-0123456789"
METHODS = ("zero_shot", "none")
PROMPTS = ["a lighthouse at dawn", "a bowl of fruit on a table"]


@pytest.fixture(scope="module")
def server(service_lake, tmp_path_factory):
    """A uvicorn server of the study app (its worker thread running) on 127.0.0.1."""
    from jobs.config import load_config
    from service.study.app import create_app
    from service.study.server import build_state

    os.environ["ZIPP_STUDY_ADMIN_TOKEN"] = TOKEN
    db = tmp_path_factory.mktemp("study-browser") / "study.sqlite"
    cfg = load_config(
        "conf/local.yaml", [*service_lake["args"], f"study.db={db}", "study.poll_s=0.1"]
    )
    state = build_state(cfg)
    try:
        with running(create_app(state)) as url:
            yield {"url": url, "store": state.store, "state": state}
    finally:
        os.environ.pop("ZIPP_STUDY_ADMIN_TOKEN", None)


@pytest.fixture(scope="module")
def driver():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size=1200,900",
    ):
        opts.add_argument(arg)
    opts.binary_location = "/usr/bin/chromium"
    d = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    yield d
    d.quit()


def _admin(server) -> httpx.Client:
    return httpx.Client(
        base_url=server["url"], headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
    )


def _wait(driver, css: str, seconds: float = 120):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, seconds, poll_frequency=0.2).until(
        ec.presence_of_element_located((By.CSS_SELECTOR, css))
    )


def _hidden_labels(source: str) -> None:
    """No method name anywhere in the page: text, attributes, URLs."""
    low = source.lower()
    for m in METHODS:
        assert m not in low, m
    assert not re.search(r"zero.?shot|viper|\bnone\b", low)


def _pair_state(driver) -> tuple[str, str, str, str]:
    """(progress, pair id, left image src, right image src) of the shown pair."""
    from selenium.webdriver.common.by import By

    return (
        driver.find_element(By.ID, "progress").text,
        driver.find_element(By.NAME, "pair").get_attribute("value"),
        driver.find_element(By.ID, "left").get_attribute("src"),
        driver.find_element(By.ID, "right").get_attribute("src"),
    )


def _image_method(store: Store, src: str) -> str:
    image = src.rsplit("/", 1)[1]
    return store.db.one("SELECT method FROM images WHERE id = ?", (image,))["method"]


def _fill_survey(driver, communities: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    driver.find_element(By.ID, "communities").send_keys(communities)
    driver.find_element(By.ID, "about").send_keys("I take photos of harbours and old boats.")
    driver.find_element(By.ID, "visual").send_keys("Muted blues and soft fog, no neon.")
    Select(driver.find_element(By.ID, "age")).select_by_visible_text("25-34")
    driver.find_element(By.CSS_SELECTOR, "#survey button[type=submit]").click()


def test_two_raters_blind_pairs_one_vote_each_resume_results_and_deletion(
    server, driver, service_lake
):
    from selenium.webdriver.common.by import By

    store: Store = server["store"]
    url = server["url"]
    admin = _admin(server)
    made = admin.post(
        "/admin/studies",
        data={
            "name": "browser",
            "methods": list(METHODS),
            "prompts": "\n".join(PROMPTS),
            "votes": "2",
            "raters": "2",
        },
    )
    assert made.status_code == 200, made.text
    study, invites = made.json()["study"], made.json()["invites"]
    assert len(invites) == 2 and all(i.startswith(f"{url}/i/") for i in invites)
    lake_subs = server["state"].renderer.engine.subreddits["subreddit"].to_pylist()
    plan = {0: ["zero_shot", None], 1: ["none", "zero_shot"]}  # what each rater prefers
    for n, invite in enumerate(invites):
        driver.delete_all_cookies()
        driver.get(invite)
        _wait(driver, "#survey")
        # no known community: the form comes back with the reason and the answers kept
        _fill_survey(driver, "zzz_unknown_1, zzz_unknown_2")
        err = _wait(driver, ".error").text
        assert "none of the communities" in err
        assert driver.find_element(By.ID, "about").get_attribute("value").startswith("I take")
        for field in ("communities", "about", "visual"):
            driver.find_element(By.ID, field).clear()
        _fill_survey(driver, f"{lake_subs[n]}, AskReddit, zzz_unknown_1")
        _wait(driver, "#progress", 150)  # the wait page refreshes until the pairs are ready
        rater = store.rater(driver.get_cookie("zipp_study")["value"]).id
        seen = []
        for k in range(2):
            _hidden_labels(driver.page_source)
            progress, pair, left, right = _pair_state(driver)
            assert progress == f"{k + 1} of 2"
            assert re.fullmatch(rf"{url}/study/image/i_[0-9a-f]{{32}}", left)
            # the DOM's sides are the stored sides
            stored = store.db.one(
                "SELECT left_method, right_method FROM pairs WHERE id = ? AND rater = ?",
                (pair, rater),
            )
            assert (_image_method(store, left), _image_method(store, right)) == (
                stored["left_method"],
                stored["right_method"],
            )
            assert driver.execute_script(
                "return [...document.images].every(i => i.complete && i.naturalWidth > 0)"
            )
            # resume: a reload and the invite opened again show the same pair and progress
            driver.refresh()
            assert _pair_state(driver) == (progress, pair, left, right)
            driver.get(invite)
            _wait(driver, "#progress")
            assert _pair_state(driver) == (progress, pair, left, right)
            seen.append(stored["left_method"])
            want = plan[n][k]
            choice = (
                "cant-tell"
                if want is None
                else ("left" if stored["left_method"] == want else "right")
            )
            driver.find_element(By.ID, f"vote-{choice}").click()
            if k == 0:  # a second vote on the pair just voted: refused by the server
                _wait(driver, "#progress")
                cookie = {"zipp_study": driver.get_cookie("zipp_study")["value"]}
                csrf = driver.find_element(By.NAME, "csrf").get_attribute("value")
                again = httpx.post(
                    f"{url}/study/vote",
                    data={"pair": pair, "vote": "left", "csrf": csrf},
                    cookies=cookie,
                )
                assert again.status_code == 409
                assert again.json()["error"] == "already voted"
                assert "already voted on this pair" in again.json()["detail"]
                count = store.db.one("SELECT count(*) FROM votes WHERE pair = ?", (pair,))[0]
                assert count == 1
        assert "You judged all 2 pairs" in _wait(driver, "#finished").text
        assert sorted(seen) == sorted(METHODS)  # one pair each way: sides balanced
    # the admin's progress page (logged in through its form) and results
    driver.delete_all_cookies()
    driver.get(f"{url}/admin/login")
    driver.find_element(By.ID, "token").send_keys(TOKEN)
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    driver.find_element(By.LINK_TEXT, "browser").click()
    assert _wait(driver, "#raters_finished").text == "2"
    assert driver.find_element(By.ID, "votes").text == "4"
    assert driver.find_element(By.ID, "renders_done").text == "10"  # 2 personas + 8 images
    assert "zero_shot" in driver.find_element(By.ID, "results").text
    data = admin.get(f"/admin/studies/{study}").json()
    (row,) = data["results"]
    assert (row["method"], row["vs"], row["wins"], row["losses"], row["ties"]) == (
        "zero_shot",
        "none",
        2,
        1,
        1,
    )
    assert row["p_value"] == pytest.approx(1.0)
    csv = admin.get(f"/admin/studies/{study}/export.csv")
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    votes = pacsv.read_csv(io.BytesIO(csv.content)).to_pandas()
    assert len(votes) == 4 and votes["rater"].str.match(r"^r_[0-9a-f]{12}$").all()
    assert not any(i.rsplit("/", 1)[1] in csv.text for i in invites)
    assert admin.get(f"/admin/studies/{study}/export.parquet").content[:4] == b"PAR1"
    assert httpx.get(f"{url}/admin/studies/{study}", timeout=30).status_code == 401
    # the second rater deletes their data: survey, persona, images gone, votes kept
    driver.delete_all_cookies()
    driver.get(invites[1])
    driver.get(f"{url}/study/data")
    assert "kept, anonymously" in driver.find_element(By.ID, "deletion").text
    driver.find_element(By.NAME, "confirm").click()
    driver.find_element(By.ID, "delete").click()
    assert "are gone" in _wait(driver, "#deleted").text
    driver.get(invites[1])
    assert "closed" in _wait(driver, "#message").text
    after = admin.get(f"/admin/studies/{study}").json()
    assert after["progress"]["votes"] == 4 and after["progress"]["raters_deleted"] == 1
    gone = store.db.one(
        "SELECT survey, persona FROM raters WHERE state = 'deleted' AND study = ?", (study,)
    )
    assert tuple(gone) == (None, None)
