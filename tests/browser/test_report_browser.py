"""The report in a real browser: headless Debian Chromium driven by selenium + chromedriver.

Why a browser test at all: the sample browser's filters and search run JavaScript that
loads data chunks through <script src> from file://, which only a browser can prove.
Run with `tox -e browser` (installs chromium and chromium-driver with apt-get) or
`pytest -m browser tests/browser`. Screenshots go to $HARNESS_SCREENSHOTS (default: a
pytest temp dir) so a person can look at them.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from harness.report import render_report

pytestmark = pytest.mark.browser

FIXTURE = Path(__file__).parent.parent / "fixtures" / "run_small"
CHROMIUM = os.environ.get("HARNESS_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("HARNESS_CHROMEDRIVER", "/usr/bin/chromedriver")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1400,1000"]


def _driver(profile: Path, javascript: bool = True):
    # imported here, not at module level, so default runs collect this file without selenium;
    # under `-m browser` a missing selenium fails the test instead of skipping it
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    for path in (CHROMIUM, CHROMEDRIVER):
        if not shutil.which(path):
            pytest.fail(f"{path} not found: install Debian's chromium and chromium-driver (see tox -e browser)")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in FLAGS + [f"--user-data-dir={profile}"]:
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    if not javascript:
        opts.add_experimental_option("prefs", {"profile.managed_default_content_settings.javascript": 2})
    return webdriver.Chrome(options=opts, service=Service(executable_path=CHROMEDRIVER))


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    render_report(FIXTURE, out, page_size=4)  # several pages, so filters must load other chunks
    return out


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    path = Path(os.environ.get("HARNESS_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    driver = _driver(tmp_path_factory.mktemp("profile"))
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def _errors(driver) -> list[dict]:
    return [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]


def _rows(driver, table: str) -> list[str]:
    from selenium.webdriver.common.by import By

    return [tr.get_attribute("data-doc") for tr in driver.find_elements(By.CSS_SELECTOR, f"#{table} tbody tr")]


def _wait_status(driver, text: str) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 10).until(lambda d: d.find_element("id", "js-status").text == text)


def test_summary_page(browser, site: Path, shots: Path) -> None:
    browser.get((site / "index.html").as_uri())
    headline = browser.find_element("id", "headline").text
    assert "▲ 1 better" in headline and "▼ 1 worse" in headline
    assert "triviaqa" in browser.find_element("id", "errors").text
    browser.save_screenshot(str(shots / "summary.png"))
    assert _errors(browser) == []


def test_filter_loads_other_pages(browser, site: Path, shots: Path) -> None:
    browser.get((site / "report" / "samples" / "mmlu" / "page-1.html").as_uri())
    assert browser.find_element("id", "toolbar").is_displayed()
    assert len(_rows(browser, "page-table")) == 4
    browser.find_element("css selector", 'button[data-filter="R"]').click()
    _wait_status(browser, "1 matching sample")
    assert _rows(browser, "js-table") == ["anatomy-14"]  # on page 4: loaded from data-4.js
    assert not browser.find_element("id", "page-view").is_displayed()
    browser.find_element("css selector", 'button[data-filter="I"]').click()
    _wait_status(browser, "12 matching samples")
    assert len(_rows(browser, "js-table")) == 4
    browser.find_element("id", "more").click()
    assert len(_rows(browser, "js-table")) == 8
    browser.save_screenshot(str(shots / "samples-improved.png"))
    assert "#filter=I" in browser.current_url
    assert _errors(browser) == []


def test_search_and_hash_link(browser, site: Path, shots: Path) -> None:
    browser.get((site / "report" / "samples" / "squad" / "page-1.html").as_uri() + "#filter=R")
    _wait_status(browser, "3 matching samples")
    assert _rows(browser, "js-table") == ["squad-2", "squad-5", "squad-9"]
    browser.find_element("css selector", 'button[data-filter="all"]').click()
    assert browser.find_element("id", "page-view").is_displayed()
    box = browser.find_element("id", "search")
    box.send_keys("alert")
    _wait_status(browser, "1 matching sample")
    cells = browser.find_elements("css selector", "#js-table tbody tr td pre")
    assert "<script>alert(1)</script>" in [c.text for c in cells]
    browser.save_screenshot(str(shots / "samples-search.png"))
    assert browser.execute_script("return document.querySelectorAll('#js-table script').length") == 0
    assert _errors(browser) == []


def test_benchmark_pages_render_without_errors(browser, site: Path, shots: Path) -> None:
    for name in ("mmlu", "squad", "humaneval", "alpaca_eval"):
        browser.get((site / "report" / f"bench-{name}.html").as_uri())
        assert browser.find_element("tag name", "h1").text == name
        if name == "mmlu":
            browser.save_screenshot(str(shots / "bench-mmlu.png"))
    browser.get((site / "report" / "finetune.html").as_uri())
    assert len(browser.find_elements("css selector", "svg.chart g[id$='-series-0'] path, "
                                                      "svg.chart g[id$='-series-1'] path")) == 2
    browser.save_screenshot(str(shots / "finetune.png"))
    assert _errors(browser) == []


def test_without_javascript_the_page_is_a_table(site: Path, tmp_path: Path) -> None:
    driver = _driver(tmp_path / "profile", javascript=False)
    try:
        driver.get((site / "report" / "samples" / "mmlu" / "page-2.html").as_uri())
        assert not driver.find_element("id", "toolbar").is_displayed()
        assert _rows(driver, "page-table") == ["abstract_algebra-4", "abstract_algebra-5", "abstract_algebra-6",
                                               "abstract_algebra-7"]
        assert driver.find_element("css selector", 'nav.pager a[rel="next"]').get_attribute("href").endswith(
            "page-3.html")
    finally:
        driver.quit()
