"""The page of `vstore serve` in a real headless Chromium (Debian's, driven by Playwright) against a real
uvicorn server over a database ingested with the tiny model: type a query and see thumbnails, click one
for its captions and similar images, open a /?q=... address directly, upload an image. One test takes
the screenshot in docs/serve.png."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from tests.serve_fixtures import ingested_database
from vstore.serve.app import create_app
from vstore.serve.guards import LOOPBACK_HOSTS
from vstore.serve.server import bind

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
DOCS = Path(__file__).resolve().parent.parent / "docs"

pytestmark = pytest.mark.skipif(
    not os.access(CHROMIUM, os.X_OK),
    reason=f"no {CHROMIUM}: browser tests need Debian's chromium (apt-get install -y chromium; .ci/run does)",
)


@pytest.fixture(scope="module")
def base_url(server_url, template_url, tiny_encoder, tmp_path_factory):
    """A real uvicorn server on a free loopback port, in a thread, over its own ingested database."""
    import uvicorn

    root = tmp_path_factory.mktemp("serve-browser")
    with ingested_database(server_url, root, tiny_encoder, size=(320, 240)) as settings:
        app = create_app(settings, encoder=tiny_encoder, allowed_hosts=LOOPBACK_HOSTS)
        sock = bind("127.0.0.1", 0)
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.started, "uvicorn did not start"
        try:
            yield f"http://127.0.0.1:{sock.getsockname()[1]}", root
        finally:
            server.should_exit = True
            thread.join(timeout=10)
            sock.close()


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (the test extra) is missing")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.script_errors = errors  # type: ignore[attr-defined]
    yield page
    context.close()
    assert errors == [], errors  # no script errors, no failed requests reported by the console


def open_page(page, url: str) -> None:
    """Open the page and wait until it has read /health and the datasets (body[data-ready])."""
    page.goto(url)
    page.wait_for_selector("body[data-ready=true]", state="attached")


def wait_for_images(page, selector: str, count: int) -> None:
    page.wait_for_function(
        "([sel, n]) => [...document.querySelectorAll(sel)].filter(i => i.complete && i.naturalWidth > 0)"
        ".length >= n",
        arg=[selector, count],
        timeout=15_000,
    )


@pytest.mark.slow
def test_typing_a_query_shows_thumbnails_and_puts_it_in_the_url(page, base_url):
    url, _ = base_url
    open_page(page, url)
    page.fill("#q", "a red circle")
    page.press("#q", "Enter")
    wait_for_images(page, "#results .card img", 20)
    assert page.locator("#results .card").count() == 20  # k = 20 by default, of 29 images
    assert "q=a+red+circle" in page.url and "k=20" in page.url
    status = page.text_content("#status")
    assert "20 images" in status and "encode" in status and "search" in status and "serialise" in status
    assert page.is_visible("#banner") and "random weights" in page.text_content("#banner")
    scores = [float(s) for s in page.locator("#results .card .score").all_text_contents()]
    assert scores == sorted(scores, reverse=True)
    page.screenshot(path=str(DOCS / "serve.png"))  # the README's picture of the page
    page.click("#more")
    page.wait_for_function("() => document.querySelectorAll('#results .card').length === 29")
    assert page.is_hidden("#more")  # all 29 shown: no more pages


@pytest.mark.slow
def test_clicking_a_thumbnail_shows_its_captions_and_similar_images(page, base_url):
    url, _ = base_url
    open_page(page, f"{url}/?q=a+green+square&dataset=coco&split=val2017")
    wait_for_images(page, "#results .card img", 12)
    first = page.locator("#results .card").first
    clicked = first.get_attribute("data-id")
    first.click()
    assert page.is_visible("#detail")
    wait_for_images(page, "#detail-similar .card img", 8)
    page.wait_for_function("() => document.querySelectorAll('#detail-nearest li').length === 5")
    assert page.locator("#detail-captions li").count() >= 1
    assert page.text_content("#detail-path").startswith("val2017/")
    similar = page.locator("#detail-similar .card").evaluate_all("cards => cards.map(c => c.dataset.id)")
    assert clicked not in similar
    wait_for_images(page, "#detail-img", 1)
    page.screenshot(path=str(DOCS / "serve-detail.png"))
    page.click("#detail-like")
    page.wait_for_url(f"**/?like={clicked}*")
    wait_for_images(page, "#results .card img", 11)  # the other 11 val2017 images, itself left out
    shown = page.locator("#results .card").evaluate_all("cards => cards.map(c => c.dataset.id)")
    assert clicked not in shown and "like image" in page.text_content("#status")


@pytest.mark.slow
def test_opening_a_query_address_renders_that_search(page, base_url):
    url, _ = base_url
    open_page(page, f"{url}/?q=a+blue+triangle&target=captions&k=10")
    page.wait_for_function("() => document.querySelectorAll('#results .row').length === 10")
    assert page.input_value("#q") == "a blue triangle"
    assert page.input_value("#target") == "captions" and page.input_value("#k") == "10"
    assert page.locator("#results .row .text").first.text_content()
    page.click("#more")
    page.wait_for_function("() => document.querySelectorAll('#results .row').length === 20")
    page.go_back()  # back to the blank page, then forward again: the address drives the page
    page.go_forward()
    page.wait_for_function("() => document.querySelectorAll('#results .row').length === 10")


@pytest.mark.slow
def test_uploading_an_image_finds_that_image_first(page, base_url):
    url, root = base_url
    open_page(page, url)
    page.set_input_files("#file", str(root / "odd" / "large.jpg"))
    wait_for_images(page, "#results .card img", 20)
    first = page.locator("#results .card").first
    assert first.locator(".path").text_content() == "large.jpg"
    assert first.locator(".score").text_content() == "1.000"
    assert "large.jpg" in page.text_content("#status")


@pytest.mark.slow
def test_a_bad_upload_shows_the_servers_message(page, base_url, tmp_path):
    url, _ = base_url
    bogus = tmp_path / "notes.png"
    bogus.write_text("not a picture")
    open_page(page, url)
    page.set_input_files("#file", str(bogus))
    page.wait_for_function("() => document.querySelector('#status').classList.contains('error')")
    assert "not an image" in page.text_content("#status")
    # the browser logs the expected 422 response; nothing else may go wrong
    page.script_errors[:] = [e for e in page.script_errors if "422" not in e]
