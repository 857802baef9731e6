"""The page's issue-22 items in a real headless Chromium: Enter and Space open the detail dialog from the
keyboard (and the same key press does not close it), the dataset shows on each card, the words/meaning
control (and a bad value falling back), dark mode from the system setting."""

from __future__ import annotations

import pytest

from tests.test_serve_browser import CHROMIUM, CHROMIUM_ARGS, base_url, browser  # noqa: F401 (fixtures)

pytestmark = pytest.mark.slow
SHOTS = "/tmp/vs22"


def _open(browser, base_url, path, **context):  # noqa: F811
    ctx = browser.new_context(viewport={"width": 1280, "height": 860}, **context)
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(base_url[0] + path)
    page.wait_for_selector("body[data-ready=true]", state="attached")
    return ctx, page, errors


def test_enter_and_space_open_the_detail_and_keep_it_open(browser, base_url):  # noqa: F811
    ctx, page, errors = _open(browser, base_url, "/?q=red")
    page.wait_for_selector(".card")
    cards = page.locator(".card")
    cards.nth(0).focus()
    page.keyboard.press("Enter")
    page.wait_for_selector("dialog#detail[open]")
    page.wait_for_timeout(300)  # a key press that also closed it would have done so by now
    assert page.locator("dialog#detail[open]").count() == 1
    page.wait_for_selector("#detail-captions li")
    page.keyboard.press("Escape")
    page.wait_for_function("() => !document.getElementById('detail').open")
    cards.nth(1).focus()
    page.keyboard.press(" ")
    page.wait_for_selector("dialog#detail[open]")
    page.wait_for_timeout(300)
    assert page.locator("dialog#detail[open]").count() == 1
    ctx.close()
    assert errors == []


def test_cards_show_their_dataset_and_the_words_mode_searches_captions(browser, base_url):  # noqa: F811
    ctx, page, errors = _open(browser, base_url, "/?q=red&mode=text")
    page.wait_for_selector(".card")
    assert page.locator("#search-mode").input_value() == "text"
    datasets = page.locator(".card .dataset").all_text_contents()
    assert datasets and set(datasets) <= {"coco", "odd"}
    badges = page.locator(".card .score").all_text_contents()
    assert all(b for b in badges)  # text hits have no similarity: their text score is shown
    page.screenshot(path=f"{SHOTS}/page-words.png")
    ctx.close()
    ctx, page, errors2 = _open(browser, base_url, "/?q=red&mode=bogus")
    assert page.locator("#search-mode").input_value() == "vector"
    assert page.locator("#search-mode option").count() == 3  # the bad value was not added
    ctx.close()
    assert errors == errors2 == []


def test_dark_mode_follows_the_system(browser, base_url):  # noqa: F811
    ctx, page, errors = _open(browser, base_url, "/?q=red", color_scheme="dark")
    page.wait_for_selector(".card")
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(28, 25, 23)"
    page.screenshot(path=f"{SHOTS}/page-dark.png")
    ctx.close()
    ctx, page, _ = _open(browser, base_url, "/", color_scheme="light")
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(250, 250, 249)"
    ctx.close()
    assert errors == []
