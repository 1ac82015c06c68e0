"""The web page of ``polydiff serve`` in a real browser: headless Chromium, driven by Selenium
through the system chromedriver, generates one image from the page's controls and cancels one
job. Needs the Debian packages ``chromium`` and ``chromium-driver`` (.ci/run installs them)."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e '.[dev]')")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
pytestmark = [pytest.mark.timeout(240),
              pytest.mark.skipif(not (BROWSER and DRIVER),
                                 reason="no headless browser: apt-get install chromium chromium-driver")]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = tmp_path_factory.mktemp("serve")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("POLYDIFF_TOKEN", None)
    proc = subprocess.Popen([sys.executable, "-m", "polydiff", "serve", "--port", str(port), "--data", str(data)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            urllib.request.urlopen(url + "/healthz", timeout=2).read()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise AssertionError(f"polydiff serve did not start: {proc.stderr.read().decode()[-2000:]}") from None
            time.sleep(0.2)
    yield url
    proc.terminate()
    proc.wait(30)


@pytest.fixture(scope="module")
def browser():
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = BROWSER
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1200,900"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=DRIVER), options=options)
    yield driver
    driver.quit()


def _fill(browser, field: str, value: str) -> None:
    box = browser.find_element(By.ID, field)
    box.clear()
    box.send_keys(value)


def _card(browser, index: int = 0):
    return browser.find_elements(By.CSS_SELECTOR, "#jobs .job")[index]


def test_the_page_generates_an_image_and_cancels_a_job(server, browser):
    browser.get(server + "/")
    wait = WebDriverWait(browser, 120, poll_frequency=0.2)
    wait.until(lambda b: len(Select(b.find_element(By.ID, "modality")).options) >= 2)
    Select(browser.find_element(By.ID, "modality")).select_by_value("image")
    Select(browser.find_element(By.ID, "task")).select_by_value("generate")
    _fill(browser, "prompt", "a red circle")
    _fill(browser, "steps", "2")
    _fill(browser, "seed", "4")
    browser.find_element(By.ID, "submit").click()
    wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, "#jobs .job[data-status='done'] .files img"))
    image = browser.find_element(By.CSS_SELECTOR, "#jobs .job .files img")
    wait.until(lambda b: b.execute_script("return arguments[0].complete && arguments[0].naturalWidth", image) == 32)
    assert browser.find_element(By.ID, "error").text == ""

    _fill(browser, "steps", "3000")          # long enough to be cancelled while it runs
    browser.find_element(By.ID, "submit").click()
    wait.until(lambda b: len(b.find_elements(By.CSS_SELECTOR, "#jobs .job")) == 2)
    card = _card(browser)
    wait.until(lambda b: card.get_attribute("data-status") == "running")
    card.find_element(By.CSS_SELECTOR, "button.cancel").click()
    wait.until(lambda b: card.get_attribute("data-status") == "cancelled")
    job_id = card.get_attribute("data-job-id")
    status = urllib.request.urlopen(f"{server}/v1/jobs/{job_id}").read().decode()
    assert '"status":"cancelled"' in status.replace(" ", "")


def test_the_page_shows_the_servers_one_line_error(server, browser):
    browser.get(server + "/")
    wait = WebDriverWait(browser, 60, poll_frequency=0.2)
    wait.until(lambda b: len(Select(b.find_element(By.ID, "modality")).options) >= 2)
    Select(browser.find_element(By.ID, "modality")).select_by_value("image")
    _fill(browser, "sampler", "no-such-sampler")
    browser.find_element(By.ID, "submit").click()
    wait.until(lambda b: b.find_element(By.ID, "error").text)
    assert "no-such-sampler" in browser.find_element(By.ID, "error").text
    assert browser.find_elements(By.CSS_SELECTOR, "#jobs .job") == []
