"""The chat UI in a real browser: `rag ui` as a subprocess over an index of the seeds, driven by headless
Debian Chromium through Playwright. Uses the real pipeline end to end (the default local model); the page's
own widgets (verdict badges, Copy BibTeX) are checked on the app served in-process with the scripted
answer stream (tests/ui_fakes.py), which needs no model.

Writes tests/artifacts/ui_answer.png (a screenshot of the answer), ui_error.png, a screenshot of each
test's last state and the server's log (rag_ui.log).
Every request the page makes must stay on 127.0.0.1 (the UI works offline).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from conftest import ARTIFACTS, PROJECT_ROOT
from netutil import free_port, stop, wait_for_http

pytestmark = [pytest.mark.slow, pytest.mark.browser]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-gpu"
]
QUESTION = "How does the sharpness of minima relate to generalization when fine-tuning CLIP on ImageNet?"
EXPECTED_TITLE = "A Modern Look at the Relationship between Sharpness and Generalization"
ANSWER_TIMEOUT_MS = 900_000  # the local model on a small shared CPU; no timing is asserted
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}


def _env(home: Path) -> dict[str, str]:
    from rag.models import installed_dir

    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and k != "RAG_CHROMA_URL"}
    env.update(
        RAG_HOME=str(home),
        RAG_MODELS_DIR=str(installed_dir()),  # the cache, or where an earlier version installed it
        GRADIO_ANALYTICS_ENABLED="False",
        HF_HUB_OFFLINE="1",
        LITELLM_LOCAL_MODEL_COST_MAP="True",
        TOKENIZERS_PARALLELISM="false",
        PYTHONUNBUFFERED="1",
        RAG_LLM__TIMEOUT="900",  # a slow shared CPU must not turn the answer into a timeout error
    )
    return env


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`rag index` then `rag ui` on a free loopback port, in a temporary RAG_HOME."""
    if not CHROMIUM.exists():
        pytest.skip("Chromium is missing: run `make setup-test` (apt-get install chromium)")
    home = tmp_path_factory.mktemp("ui_home")
    env = _env(home)
    subprocess.run([sys.executable, "-m", "rag", "-q", "index"], cwd=PROJECT_ROOT, env=env, check=True)
    port = free_port()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = (ARTIFACTS / "rag_ui.log").open("w+")  # the server's output, kept for failed runs
    proc = subprocess.Popen(
        [sys.executable, "-m", "rag", "-v", "ui", "--host", "127.0.0.1", "--port", str(port)],
        cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        if wait_for_http(url, proc, 180) is None:
            log.seek(0)
            if proc.poll() is not None:
                pytest.fail(f"rag ui exited with {proc.returncode}:\n{log.read()[-3000:]}")
            pytest.fail("rag ui did not start serving within 180 s")
        yield url
    finally:
        stop(proc, 20)
        log.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def fake_server() -> Iterator[str]:
    """The app with the scripted answer stream, served in-process on a free loopback port."""
    if not CHROMIUM.exists():
        pytest.skip("Chromium is missing: run `make setup-test` (apt-get install chromium)")
    from ui_fakes import PAPERS, served_app

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with served_app(PAPERS, "rag-ui-browser-fake") as url:
        yield url


@pytest.fixture
def page(browser: Any, server: str, request: pytest.FixtureRequest) -> Iterator[Any]:
    yield from _open(browser, server, request)


@pytest.fixture
def fake_page(browser: Any, fake_server: str, request: pytest.FixtureRequest) -> Iterator[Any]:
    yield from _open(browser, fake_server, request)


def _open(browser: Any, server: str, request: pytest.FixtureRequest) -> Iterator[Any]:
    page = browser.new_page(viewport={"width": 1440, "height": 1000})
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(server)
    page.wait_for_selector("#rag-question textarea", timeout=60_000)
    page.requests = requests
    yield page
    page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)  # last state
    outside = [u for u in requests if urlparse(u).scheme in ("http", "https", "ws", "wss")
               and urlparse(u).hostname not in LOOPBACK]
    page.close()
    assert requests and not outside, f"requests left 127.0.0.1: {outside}"


def _ask(page: Any, question: str) -> None:
    page.locator("#rag-question textarea").fill(question)
    page.locator("#rag-ask").click()


def _bot_messages(page: Any) -> list[str]:
    texts: list[str] = page.locator("#rag-chat .message.bot").all_inner_texts()
    return texts


def _wait_for_final(page: Any, n: int) -> str:
    """Wait until the n-th assistant message is final (it then ends with the 'retrieved' footer)."""
    page.wait_for_function(
        """n => { const m = document.querySelectorAll('#rag-chat .message.bot');
                  return m.length >= n && /retrieved/.test(m[n - 1].innerText)
                         || /Could not answer/.test(m.length ? m[m.length - 1].innerText : ''); }""",
        arg=n, timeout=ANSWER_TIMEOUT_MS, polling=500,
    )
    return _bot_messages(page)[n - 1]


def test_real_answer_streams_with_cited_cards(page: Any) -> None:
    _ask(page, QUESTION)
    page.wait_for_selector("#rag-sources-panel .rag-card", timeout=ANSWER_TIMEOUT_MS)  # sources come first
    text = _wait_for_final(page, 1)
    page.wait_for_timeout(300)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "ui_answer.png"), full_page=True)

    assert "Could not answer" not in text and "model call failed" not in text, text
    body = text.split("filter:")[0].strip()
    assert len(body.split()) >= 5, text  # a real answer, not a placeholder
    assert "filter: none (whole corpus)" in text
    panel = page.locator("#rag-sources-panel")
    assert EXPECTED_TITLE in (panel.text_content() or "")  # among the cited cards or 'also retrieved'
    assert "Filter applied: none" in panel.inner_text()
    titles = page.locator("#rag-sources-panel .rag-card .rag-title").all_inner_texts()
    cited = sorted(set(re.findall(r"\[(\d+)\]", body)), key=int)
    assert cited, f"the answer cites nothing: {text}"
    for n in cited:  # every number cited in the text has its card
        assert any(t.startswith(f"[{n}]") for t in titles), (n, titles)


def test_model_error_shows_in_chat_and_sources_stay(page: Any) -> None:
    model = page.locator("#rag-model input")
    model.fill("openai/does-not-exist")
    model.press("Enter")
    page.locator("#rag-author textarea, #rag-author input").first.fill("Andriushchenko")
    _ask(page, QUESTION)
    text = _wait_for_final(page, 1)
    assert "The model call failed" in text and "API key" in text, text
    assert "Traceback" not in text
    assert "filter: author:" in text and "Andriushchenko" in text.split("filter:")[1]
    assert page.locator("#rag-sources-panel .rag-card").count() >= 1  # retrieval worked: sources shown
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "ui_error.png"), full_page=True)
    # the page stays usable: a second question gets its own reply (a list answer needs no model for its
    # lines, so the pipeline may answer it even with the broken model; otherwise it reports the failure)
    _ask(page, "Which papers study sharpness-aware minimization?")
    second = _wait_for_final(page, 2)
    assert "Could not answer" not in second and "Traceback" not in second, second
    assert "The model call failed" in second or "listed" in second.split("filter:")[-1], second


LIST_QUESTION = "What did Maksym Andriushchenko publish in 2024?"


def test_list_answer_items_link_to_their_cards(page: Any) -> None:
    """A list defined by its filter (author + year, read from the question): the answer is a list whose
    items each link to the source card with the same number."""
    _ask(page, LIST_QUESTION)
    text = _wait_for_final(page, 1)
    page.wait_for_timeout(300)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "ui_list.png"), full_page=True)
    assert "Could not answer" not in text and "model call failed" not in text, text
    assert "listed" in text.split("filter:")[-1], f"not a list answer: {text}"  # the footer of list answers
    items = page.locator("#rag-chat .message.bot li")
    assert items.count() >= 2, text  # the filter selects several papers
    card_ids = set(page.locator("#rag-sources-panel .rag-card").evaluate_all("cs => cs.map(c => c.id)"))
    for i in range(items.count()):
        item = items.nth(i)
        links = item.locator('a[href^="#rag-cite-"]')
        assert links.count() >= 1, item.inner_text()
        href = links.first.get_attribute("href") or ""
        n = href.removeprefix("#rag-cite-")
        assert href.removeprefix("#") in card_ids, (href, card_ids)
        assert (links.first.inner_text() or "").strip() == f"[{n}]"
        card = page.locator(href)
        title = card.locator(".rag-title").inner_text().removeprefix(f"[{n}]").strip()
        assert title and title in item.inner_text(), (title, item.inner_text())  # the card of this item
        assert card.locator(".rag-year").inner_text() == "2024"
    # following an item's link brings its card into view (it stays on the page: no new tab)
    last = items.nth(items.count() - 1).locator('a[href^="#rag-cite-"]').first
    target = last.get_attribute("href") or ""
    pages_before = len(page.context.pages)
    last.click()
    page.wait_for_timeout(500)
    assert len(page.context.pages) == pages_before
    assert page.locator(target).is_visible()
    in_view = page.locator(target).evaluate(
        "c => { const r = c.getBoundingClientRect(); return r.top < window.innerHeight && r.bottom > 0; }"
    )
    assert in_view, target


def _use_model(page: Any, model: str) -> None:
    box = page.locator("#rag-model input")
    box.fill(model)
    box.press("Enter")


def test_claim_answer_cards_show_verdict_badges(fake_page: Any) -> None:
    """A claim answer (scripted: the papers support, contradict, say not enough): each card its badge, in
    words and in a colour of its own."""
    _use_model(fake_page, "fake/claim")
    _ask(fake_page, "Does JailbreakBench provide an open benchmark?")
    _wait_for_final(fake_page, 1)
    cards = fake_page.locator("#rag-sources-panel .rag-card")
    badges = [cards.nth(i).locator(".rag-verdict").inner_text() for i in range(cards.count())]
    expected = ["✓ Verdict: Supports", "✗ Verdict: Contradicts", "? Verdict: Not enough info"]
    assert [" ".join(b.split()) for b in badges] == expected  # "Verdict:" is for screen readers only
    colours = fake_page.locator("#rag-sources-panel .rag-verdict").evaluate_all(
        "bs => bs.map(b => getComputedStyle(b).backgroundColor)"
    )
    assert len(set(colours)) == 3, colours  # our stylesheet reached the page: one colour per label
    fake_page.screenshot(path=str(ARTIFACTS / "ui_claim.png"), full_page=True)


def test_copy_bibtex_copies_or_selects_the_entries(fake_page: Any) -> None:
    """Copy BibTeX puts the cited papers' entries on the clipboard; where the clipboard API is refused,
    it shows them as text and selects them."""
    fake_page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    _ask(fake_page, "Which paper introduces JailbreakBench?")
    _wait_for_final(fake_page, 1)
    box = fake_page.locator("#rag-sources-panel .rag-bibtex-text")
    expected = box.input_value()
    assert expected.startswith("@") and "title = {JailbreakBench" in expected, expected
    button = fake_page.locator("#rag-sources-panel .rag-copy-bibtex")
    button.click()
    status = fake_page.locator("#rag-sources-panel .rag-copy-status")
    status.filter(has_text="Copied").wait_for(timeout=10_000)
    assert fake_page.evaluate("navigator.clipboard.readText()") == expected
    assert not box.is_visible()  # folded away until asked for
    # a browser that refuses the clipboard: the entries are shown, selected, ready for Ctrl+C
    fake_page.evaluate("() => { navigator.clipboard.writeText = () => Promise.reject(new Error('no')); }")
    button.click()
    status.filter(has_text="blocked").wait_for(timeout=10_000)
    assert box.is_visible()
    selected = box.evaluate("t => t.value.slice(t.selectionStart, t.selectionEnd)")
    assert selected == expected
