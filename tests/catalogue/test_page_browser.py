"""The search page in a real headless Chromium (selenium + chromedriver): every player loads its excerpt, each
excerpt lasts what the table says from the second it says, and the page logs no console error."""
from __future__ import annotations

import shutil

import pytest

from ssl_music.cli import main as cli

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
DRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(CHROMIUM is None or DRIVER is None,
                                reason="no headless browser: apt-get install -y chromium chromium-driver")


@pytest.fixture
def browser():
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium not installed (the test extra)")
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--mute-audio"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    try:
        yield driver
    finally:
        driver.quit()


_STATE = """return Array.from(document.querySelectorAll('audio')).map(a => ({
    ready: a.readyState, error: a.error ? a.error.code : null, duration: a.duration,
    start: parseFloat(a.dataset.startS), seconds: parseFloat(a.dataset.seconds)}));"""


def test_the_page_plays_in_a_browser(browser, built_index, tmp_path, capsys):
    from selenium.webdriver.support.ui import WebDriverWait

    from ssl_music.catalogue.store import open_index

    tid = open_index(built_index).tracks.column("track_id")[2].as_py()
    page = tmp_path / "page.html"
    assert cli(["search", str(built_index), f"{tid}@5-9", "-k", "4", "--html", str(page)]) == 0
    table = [ln.split() for ln in capsys.readouterr().out.splitlines()[2:6]]
    browser.get(page.as_uri())
    WebDriverWait(browser, 30).until(lambda d: all(p["ready"] >= 1 or p["error"] for p in d.execute_script(_STATE)))
    players = browser.execute_script(_STATE)
    assert len(players) == 5 and all(p["error"] is None for p in players), players
    for p in players:   # the player holds the excerpt only: its length, not the file's
        assert abs(p["duration"] - p["seconds"]) < 0.01, players
    assert players[0]["start"] == 5.0 and players[0]["seconds"] == 4.0
    # each neighbour plays its matching crop with 3 s either side, within its 20 s file
    assert [p["start"] for p in players[1:]] == [max(0.0, float(row[2]) - 3) for row in table]
    assert [p["seconds"] for p in players[1:]] == [min(20.0, float(r[2]) + 4) - max(0.0, float(r[2]) - 3) for r in table]
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []


def test_a_page_made_from_another_folder_plays_wherever_it_is_opened(browser, small_ckpt, corpus_audio, tmp_path,
                                                                     monkeypatch, capsys):
    """Index built with relative paths, searched from another folder with a relative file query, the page then
    moved away from everything: every player still loads (its audio is in the page)."""
    from selenium.webdriver.support.ui import WebDriverWait

    from ssl_music.catalogue.build import build_index

    (tmp_path / "music").mkdir()
    for f in sorted(corpus_audio.glob("*.flac"))[:4]:
        shutil.copy(f, tmp_path / "music" / f.name)
    monkeypatch.chdir(tmp_path)
    build_index("music", small_ckpt, "idx")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    query = f"../music/{sorted(p.name for p in (tmp_path / 'music').iterdir())[0]}@2-6"
    assert cli(["search", "../idx", query, "-k", "3", "--html", "page.html"]) == 0
    capsys.readouterr()
    (tmp_path / "far").mkdir()
    shutil.move(tmp_path / "elsewhere" / "page.html", tmp_path / "far" / "page.html")
    browser.get((tmp_path / "far" / "page.html").as_uri())
    WebDriverWait(browser, 30).until(lambda d: all(p["ready"] >= 1 or p["error"] for p in d.execute_script(_STATE)))
    players = browser.execute_script(_STATE)
    assert len(players) == 4 and all(p["error"] is None and p["ready"] >= 1 for p in players), players
    assert players[0]["start"] == 2.0 and players[0]["seconds"] == 4.0
