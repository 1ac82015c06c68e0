"""The web page of ``polydiff serve`` in a real browser.

Headless Chromium (Debian's ``chromium``), driven over WebDriver by Selenium through the system
``chromium-driver``, uses the page's own controls against a real ``polydiff serve`` subprocess:
one ``image`` generation that ends showing the result as an <img>, one job cancelled from the
page, and one server error shown as its one-line detail. Both binaries are given by path, so
nothing is ever downloaded (no Selenium Manager). Without them the tests skip, naming the packages.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import time
import urllib.request

import pytest

pytestmark = pytest.mark.timeout(300)

APT = "apt-get install -y chromium chromium-driver"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
WAIT_S = 90  # generous: the CI machine's cores are shared with other work


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as reply:
        return reply.read()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not CHROMIUM or not CHROMEDRIVER:
        missing = " and ".join(n for n, p in (("chromium", CHROMIUM), ("chromedriver", CHROMEDRIVER)) if not p)
        pytest.skip(f"the browser test needs {missing} on PATH: install the Debian packages ({APT})")
    pytest.importorskip("selenium", reason="the browser test needs selenium: pip install -e '.[dev]'")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tmp_path_factory.mktemp("chromium-profile")
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1100,900", f"--user-data-dir={profile}", "--no-first-run"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def server(browser, tmp_path_factory):
    """A real ``polydiff serve`` on a free loopback port, killed at the end."""
    data = tmp_path_factory.mktemp("serve-data")
    port = _free_port()
    log = (data.parent / "serve.log").open("w+")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}
    env.pop("POLYDIFF_TOKEN", None)
    proc = subprocess.Popen([sys.executable, "-m", "polydiff", "serve", "--port", str(port), "--data", str(data)],
                            stdout=log, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + WAIT_S
    while True:
        try:
            if json.loads(_get(f"{base}/healthz"))["ok"]:
                break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            log.seek(0)
            pytest.fail(f"polydiff serve did not come up on {base}:\n{log.read()[-3000:]}")
        time.sleep(0.25)
    yield base
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    log.close()


def _wait(driver, condition, what: str, timeout: float = WAIT_S):
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.1).until(lambda d: condition(d))
    except TimeoutException:
        error = driver.execute_script("return document.getElementById('error').textContent")
        jobs = driver.execute_script("return document.getElementById('jobs').innerText")
        raise AssertionError(f"timed out waiting for {what}; page error: {error!r}; jobs: {jobs!r}") from None


def _open(driver, base: str) -> None:
    driver.get(f"{base}/")
    _wait(driver, lambda d: d.execute_script("return document.body.dataset.ready === 'true'"), "the page to load")


def _fill(driver, **fields) -> None:
    """Choose modality and task in their selects and type the other fields, as a user would."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    Select(driver.find_element(By.ID, "modality")).select_by_value(fields.pop("modality"))
    Select(driver.find_element(By.ID, "task")).select_by_value(fields.pop("task"))
    for name, value in fields.items():
        box = driver.find_element(By.ID, name)
        box.clear()
        box.send_keys(str(value))


def _job_ids(driver) -> list[str]:
    return driver.execute_script("return [...document.querySelectorAll('#jobs li.job')].map(li => li.dataset.jobId)")


def _submit(driver) -> str:
    """Press the generate button; the id of the job the page then lists."""
    from selenium.webdriver.common.by import By

    before = set(_job_ids(driver))
    driver.find_element(By.ID, "submit").click()
    new = _wait(driver, lambda d: [i for i in _job_ids(d) if i not in before], "the submitted job to be listed")
    assert len(new) == 1, new
    return new[0]


def _status(driver, job_id: str) -> str | None:
    return driver.execute_script(
        "const li = document.querySelector(`li.job[data-job-id='${arguments[0]}']`); return li && li.dataset.status",
        job_id)


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", data[16:24])


def test_the_page_generates_an_image_and_shows_it(browser, server):
    _open(browser, server)
    _fill(browser, modality="image", task="generate", prompt="a red circle", n=1, seed=7, steps=2)
    job_id = _submit(browser)
    _wait(browser, lambda d: _status(d, job_id) == "done", "the job to finish")
    shown = _wait(browser, lambda d: d.execute_script(
        "const img = document.querySelector(`li.job[data-job-id='${arguments[0]}'] .results img`);"
        "return img && img.complete && img.naturalWidth > 0 && [img.naturalWidth, img.naturalHeight]", job_id),
        "the result image to be shown")

    job = json.loads(_get(f"{server}/v1/jobs/{job_id}"))
    assert job["status"] == "done" and job["request"]["steps"] == 2 and job["request"]["seed"] == 7
    pngs = [f for f in job["files"] if f["content_type"] == "image/png"]
    assert pngs, job["files"]
    assert tuple(shown) == _png_size(_get(server + pngs[0]["url"])), "the page shows another image than the server's"
    links = browser.execute_script(
        "return [...document.querySelectorAll(`li.job[data-job-id='${arguments[0]}'] a.download`)]"
        ".map(a => a.download)", job_id)
    assert pngs[0]["name"].split("/")[-1] in links


def test_a_job_cancelled_from_the_page_ends_cancelled(browser, server):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    _open(browser, server)
    _fill(browser, modality="image", task="generate", prompt="a long one", n=1, seed=1, steps=5000)
    job_id = _submit(browser)
    _wait(browser, lambda d: _status(d, job_id) in ("queued", "running"), "the job to be queued or running")
    cancel = browser.find_element(By.CSS_SELECTOR, f"li.job[data-job-id='{job_id}'] button.cancel")
    cancel.send_keys(Keys.ENTER)  # the keyboard, not the mouse: the page must work without one
    _wait(browser, lambda d: _status(d, job_id) == "cancelled", "the job to end cancelled")

    job = json.loads(_get(f"{server}/v1/jobs/{job_id}"))
    assert job["status"] == "cancelled" and job["files"] == []
    assert job["progress"]["step"] < 5000
    text = browser.find_element(By.CSS_SELECTOR, f"li.job[data-job-id='{job_id}'] .status").text
    assert text == "cancelled"
    assert not browser.find_element(By.CSS_SELECTOR, f"li.job[data-job-id='{job_id}'] button.cancel").is_displayed()


def test_a_rejected_request_shows_the_servers_one_line_detail(browser, server):
    from selenium.webdriver.common.by import By

    _open(browser, server)
    before = _job_ids(browser)
    _fill(browser, modality="image", task="generate", prompt="x", n=1, steps=1, sampler="no-such-sampler")
    browser.find_element(By.ID, "submit").click()
    error = _wait(browser, lambda d: d.find_element(By.ID, "error").text, "the error line")
    assert "sampler" in error and "no-such-sampler" in error and "\n" not in error
    assert _job_ids(browser) == before, "a rejected request must not be listed as a job"
