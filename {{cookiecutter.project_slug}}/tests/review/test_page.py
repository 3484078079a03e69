"""The review page in a real browser, as a person uses it: it loads on loopback, shows the suspects, one
photo is moved and one removed through it, the files are where they should be, and --undo puts them back.

Needs Chromium and its driver (Debian: apt-get install -y chromium chromium-driver) and Selenium (the
dev extra); skipped without them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from ..conftest import run_cli
from ..loopback import free_port, wait_for_page
from .conftest import FLIPPED

pytest.importorskip("gradio", reason='the review page needs: pip install -e ".[review]"')
pytest.importorskip("cleanlab", reason='review needs: pip install -e ".[review]"')
try:
    from selenium import webdriver
except ImportError:
    webdriver = None

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
DRIVER = shutil.which("chromedriver")
MISSING = ('Selenium: pip install -e ".[dev]"' if webdriver is None else "" if CHROMIUM and DRIVER
           else "chromium and chromedriver: apt-get install -y chromium chromium-driver")
needs_a_browser = pytest.mark.skipif(bool(MISSING), reason=f"the browser test needs {MISSING}")


def test_with_no_suspects_the_page_says_so_on_loopback_only(tmp_path: Path) -> None:
    from {{ cookiecutter.package_name }}.review.page import serve
    from {{ cookiecutter.package_name }}.run_folder.folder import RunFolder

    run = RunFolder(tmp_path / "run")
    run.path.mkdir()
    run.labels.write_text('["cat", "fox"]')
    port = free_port()
    page = serve(tmp_path, [], run, port=port, block=False)
    try:
        assert page.server_name == "127.0.0.1"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/config", timeout=30) as response:
            config = response.read().decode()
        assert "No suspects" in config and "Apply my choices" in config
    finally:
        page.close()
        shutil.rmtree(page.thumbnails, ignore_errors=True)


def browser(profile: Path):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1280,1400"):
        options.add_argument(flag)
    return webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=DRIVER))


@pytest.fixture
def page(flipped_run: Path, flipped_data: Path, tmp_path: Path):
    """``review RUN --port N`` started for real (a copy of the data: the page moves files) and its URL."""
    data = tmp_path / "pets"
    shutil.copytree(flipped_data, data)
    port = free_port()
    command = [sys.executable, "-m", "{{ cookiecutter.package_name }}", "review", str(flipped_run), "--data", str(data),
               "--port", str(port), "--accelerator", "cpu"]
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}
    server = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for_page(f"http://127.0.0.1:{port}/", server, seconds=300)
        yield f"http://127.0.0.1:{port}/", data
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.slow
@needs_a_browser
def test_a_photo_is_moved_and_one_removed_through_the_page_and_undo_restores_them(page, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.ui import WebDriverWait

    url, data = page
    before = {p.relative_to(data).as_posix(): p.read_bytes() for p in data.rglob("*") if p.is_file()}
    with pytest.raises(urllib.error.HTTPError):  # the page serves its thumbnails, never the photos themselves
        urllib.request.urlopen(f"{url}gradio_api/file={data / FLIPPED[0]}", timeout=30)
    driver = browser(tmp_path / "profile")
    try:
        driver.get(url)
        wait = WebDriverWait(driver, 60)
        wait.until(ready.presence_of_element_located((By.ID, "suspect-1")))
        rows = {}
        for number in (0, 1):  # the two planted flips are the most suspicious
            text = driver.find_element(By.ID, f"suspect-{number}").text
            rows[number] = next(path for path in FLIPPED if path in text)
        assert set(rows.values()) == set(FLIPPED)
        assert "the model suggests" in driver.find_element(By.ID, "suspect-0").text
        # Suspect 0: move to the class suggested (the default of its "move to" list); suspect 1: remove.
        for number, action in ((0, "move"), (1, "remove")):
            choice = driver.find_element(By.CSS_SELECTOR, f"#decision-{number} input[value='{action}']")
            driver.execute_script("arguments[0].click();", choice)
        driver.save_screenshot(str(tmp_path / "review-page.png"))
        driver.execute_script("arguments[0].click();", driver.find_element(By.ID, "apply"))
        wait.until(ready.text_to_be_present_in_element((By.ID, "status"), "Done"))
        status = driver.find_element(By.ID, "status").text
    finally:
        driver.quit()
    moved, removed = rows[0], rows[1]
    moved_to = "cat" if moved == FLIPPED[0] else "fox"  # each planted photo belongs in the other class
    removed_from = "fox" if removed == FLIPPED[0] else "cat"
    name = Path(moved).name
    assert "moved 1, removed 1" in status
    assert not (data / moved).exists() and not (data / removed).exists()
    # Both planted photos are called odd.png: a move onto the other's name becomes 'odd (1).png'.
    assert before[moved] in [p.read_bytes() for p in (data / "train" / moved_to).glob("odd*.png")]
    assert (data / ".removed" / removed_from / name).read_bytes() == before[removed]
    assert run_cli("review", "--undo", str(data)) == 0
    after = {p.relative_to(data).as_posix(): p.read_bytes() for p in data.rglob("*") if p.is_file()}
    after.pop("review-log.csv")
    assert after == before
