"""The chat UI: a thin Gradio skin over ``rag.answer_stream``.

Everything the page does maps onto one call of the Python API::

    rag.answer_stream(question, model=..., filters=Filters(...), k=..., settings=..., history=...)

The same function is exposed as the API endpoint ``/answer`` (JSON of ``rag.Answer``), usable from
``gradio_client``. Start it with ``rag ui`` (see docs/ui.md). The page works offline: analytics are off,
the theme uses system fonts, and nothing is fetched from outside the server.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import gradio as gr  # noqa: E402

from rag.errors import RagError  # noqa: E402
from rag.settings import DEFAULT_LOCAL_MODEL, Settings  # noqa: E402
from rag.types import Answer, Filters, Hits, Paper  # noqa: E402
from ui import api, render  # noqa: E402
from ui.bibtex import COPY_JS  # noqa: E402
from ui.controls import (  # noqa: E402  (re-exported: part of ui.app's interface)
    EXAMPLES,
    build_filters,
    example_questions,
    load_papers,
    source_choices,
)
from ui.papers import build_papers_tab  # noqa: E402

__all__ = [
    "EXAMPLES", "RagUI", "build_filters", "create_app", "example_questions", "launch", "source_choices",
    "theme",
]

log = logging.getLogger(__name__)

AnswerStream = Callable[..., Iterator[Any]]
"""Same signature as ``rag.answer_stream``: yields ``Hits``, then ``str`` deltas, then the ``Answer``."""

CSS_PATH = Path(__file__).with_name("style.css")
SYSTEM_FONTS = ["ui-sans-serif", "system-ui", "-apple-system", "Segoe UI", "Roboto", "sans-serif"]
MONO_FONTS = ["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"]
MAX_K = 20

def theme() -> gr.themes.Base:
    """The default Gradio look with system fonts only (no font files or stylesheets fetched)."""
    return gr.themes.Default(font=SYSTEM_FONTS, font_mono=MONO_FONTS)


def _clean_model(model: str | None) -> str | None:
    model = (model or "").strip()
    return model or None


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # gradio may normalise content to [{"type": "text", "text": ...}]
        return " ".join(str(c.get("text", "")) for c in content if isinstance(c, dict))
    return str(content or "")


def _copy(chat: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [dict(m) for m in chat]


def _friendly(exc: BaseException) -> str:
    if isinstance(exc, RagError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}. The server log has the details; try again or change the settings."


class RagUI:
    """The handlers behind the page, independent of the layout so tests can call them directly."""

    def __init__(self, settings: Settings, answer_fn: AnswerStream | None = None) -> None:
        self.settings = settings
        self._answer_fn = answer_fn
        self.ready = threading.Event()
        """Cleared while the models load in the background; answers wait for it (no double loading)."""
        self.ready.set()

    def start_warm_up(self) -> None:
        """Load the models in a background thread (only for the real pipeline)."""
        if self._answer_fn is not None:
            return
        self.ready.clear()

        def run() -> None:
            try:
                warm_up(self.settings)
            finally:
                self.ready.set()

        threading.Thread(target=run, name="rag-warm-up", daemon=True).start()

    @property
    def answer_fn(self) -> AnswerStream:
        if self._answer_fn is None:
            from rag.pipeline import answer_stream

            self._answer_fn = answer_stream
        return self._answer_fn

    def stream(
        self,
        question: str,
        history: Sequence[tuple[str, str]] | None = None,
        *,
        model: str | None = None,
        filters: Filters | None = None,
        k: int | None = None,
    ) -> Iterator[Any]:
        self.ready.wait()
        return iter(
            self.answer_fn(
                question,
                model=_clean_model(model),
                filters=filters,
                k=int(k) if k else None,
                settings=self.settings,
                history=history or None,
            )
        )

    # --- chat ---------------------------------------------------------------------------------------

    def respond(
        self,
        message: str,
        chat: list[dict[str, Any]] | None,
        history: list[tuple[str, str]] | None,
        year_min: str | float | None,
        year_max: str | float | None,
        author: str | None,
        sources: list[str] | str | None,
        model: str | None,
        k: float | None,
    ) -> Iterator[tuple[str, list[dict[str, Any]], Any, list[tuple[str, str]]]]:
        """Chat handler: yields (textbox, chat messages, sources HTML, history) as the answer streams."""
        chat = [dict(m, content=_content_text(m.get("content"))) for m in chat or []]
        history = list(history or [])
        question = (message or "").strip()
        if not question:
            yield "", _copy(chat), gr.skip(), history
            return
        chat.append({"role": "user", "content": question})
        waiting = "_Searching the abstracts…_"
        if not self.ready.is_set():
            waiting = "_Loading the models (once, after start)…_"
        chat.append({"role": "assistant", "content": waiting})
        panel = render.render_empty()
        yield "", _copy(chat), panel, history
        try:
            filters = build_filters(year_min, year_max, author, sources)
            streamed = ""
            final: Answer | None = None
            note: str | None = None
            for item in self.stream(question, history, model=model, filters=filters, k=int(k or 0) or None):
                if isinstance(item, Answer):
                    final = item
                elif isinstance(item, Hits):
                    note = item.note
                    panel = render.render_hits(item, item.filters, note)
                    chat[-1]["content"] = "_Writing the answer…_"
                    yield "", _copy(chat), panel, history
                elif isinstance(item, str):
                    streamed += item
                    chat[-1]["content"] = render.chat_partial(streamed)
                    yield "", _copy(chat), panel, history
            if final is None:
                raise RuntimeError("the answer stream ended without an answer")
            chat[-1]["content"] = render.chat_text(final)
            panel = render.render_answer(final, note)
            if not final.error:
                history.append((question, final.text))
            yield "", _copy(chat), panel, history
        except Exception as exc:  # the page must stay usable: report in the chat, log the trace
            if not isinstance(exc, RagError):
                log.exception("answering %r failed", question)
            chat[-1]["content"] = render.chat_error(_friendly(exc))
            if "rag-card" not in panel:
                panel = render.render_error_panel("No sources: the request failed.")
            yield "", _copy(chat), panel, history

    # --- API ----------------------------------------------------------------------------------------

    def api_answer(
        self,
        question: str,
        year_min: int | None = None,
        year_max: int | None = None,
        author: str = "",
        source: str = "",
        model: str = "",
        k: int | None = None,
    ) -> dict[str, Any]:
        """Answer a question from the indexed abstracts, with verified citations.

        Same as ``rag.answer``: returns ``rag.Answer`` as JSON (text, citations with their papers,
        abstained, hits, the filters applied, model, error). ``author`` and ``source`` take several values
        separated by commas; empty arguments do not filter.
        """
        final: Answer | None = None
        try:
            sources = [s.strip() for s in (source or "").split(",")]
            filters = build_filters(year_min, year_max, author, sources)
            for item in self.stream(question, model=model, filters=filters, k=k):
                if isinstance(item, Answer):
                    final = item
        except RagError as exc:
            raise gr.Error(str(exc)) from exc
        if final is None:
            raise gr.Error("The answer stream ended without an answer.")
        return final.model_dump(mode="json")


class RagBlocks(gr.Blocks):
    """gr.Blocks whose launch() defaults keep the page offline (system-font theme, our CSS, no SSR)."""

    def launch(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("theme", theme())
        kwargs.setdefault("css_paths", [CSS_PATH])
        kwargs.setdefault("ssr_mode", False)
        kwargs.setdefault("footer_links", ["api", "settings"])
        return super().launch(*args, **kwargs)


def create_app(
    settings: Settings | None = None,
    answer_fn: AnswerStream | None = None,
    *,
    papers: Sequence[Paper] | None = None,
    concurrency: int | None = None,
    preload: bool = False,
) -> gr.Blocks:
    """Build the chat app. ``answer_fn`` replaces ``rag.answer_stream`` (tests inject a fake).

    ``papers`` feeds the source-page and year choices (default: the corpus of ``settings``).
    ``concurrency`` is how many answers run at once (default: 1 for the in-process local model,
    which is single-threaded, else 4); further requests wait in the queue and see their position.
    ``preload`` loads the models in the background now (the first answer waits for it to finish).
    """
    settings = settings or Settings()
    ui = RagUI(settings, answer_fn)
    papers = list(papers) if papers is not None else load_papers(settings)
    years = sorted({p.year for p in papers if p.year is not None})
    default_model = settings.llm.model
    model_choices = list(dict.fromkeys([default_model, DEFAULT_LOCAL_MODEL]))
    if concurrency is None:
        concurrency = 1 if default_model.startswith("local/") else 4

    with RagBlocks(title="rag — ask the paper abstracts", analytics_enabled=False, fill_width=True) as demo:
        history = gr.State([])
        with gr.Sidebar(label="Search options", open=True, width=300):
            gr.Markdown(
                "### Search options\nThe same filters as `rag.answer(...)`; empty fields do not filter."
            )
            year_choices = [str(y) for y in years]
            with gr.Row():
                year_min = gr.Dropdown(
                    choices=year_choices, value=None, allow_custom_value=True, label="Year from",
                    elem_id="rag-year-min", min_width=100,
                )
                year_max = gr.Dropdown(
                    choices=year_choices, value=None, allow_custom_value=True, label="Year to",
                    elem_id="rag-year-max", min_width=100,
                )
            author = gr.Textbox(
                label="Author", placeholder="e.g. Flammarion (several: comma-separated)", elem_id="rag-author"
            )
            sources = gr.Dropdown(
                choices=source_choices(papers), multiselect=True, allow_custom_value=True,
                label="Source page", elem_id="rag-source",
            )
            model = gr.Dropdown(
                choices=model_choices, value=default_model, allow_custom_value=True,
                label="Model (local default, or any litellm id)", elem_id="rag-model",
            )
            k = gr.Slider(
                1, MAX_K, value=min(settings.retrieve.k, MAX_K), step=1,
                label="Number of papers", elem_id="rag-k",
            )
        with gr.Tabs(elem_id="rag-tabs"):
            with gr.Tab("Ask", id="ask"):
                gr.Markdown(
                    "## Ask the paper abstracts\nAnswers come only from the indexed abstracts; every claim "
                    "cites a paper, and each citation number matches a card under **Sources**.",
                    elem_id="rag-intro",
                )
                with gr.Row(equal_height=False):
                    with gr.Column(scale=3, min_width=360):
                        chatbot = gr.Chatbot(
                            label="Conversation", height=560, elem_id="rag-chat", buttons=["copy"],
                            feedback_options=None,
                            placeholder="Ask a question about the papers, or pick an example.",
                        )
                        with gr.Row():
                            question = gr.Textbox(
                                show_label=False, placeholder="Ask about the papers…", scale=6, lines=1,
                                max_lines=4, elem_id="rag-question", autofocus=True, submit_btn=False,
                            )
                            ask = gr.Button(
                                "Ask", variant="primary", scale=1, min_width=80, elem_id="rag-ask"
                            )
                            clear = gr.Button("Clear", scale=1, min_width=80, elem_id="rag-clear")
                        gr.Examples(example_questions(), inputs=question, label="Example questions")
                    with gr.Column(scale=2, min_width=300):
                        panel = gr.HTML(
                            render.render_empty(), elem_id="rag-sources-panel", js_on_load=COPY_JS
                        )
            with gr.Tab("Papers", id="papers", elem_id="rag-papers-tab"):
                build_papers_tab(papers, [year_min, year_max, author, sources])

        inputs = [question, chatbot, history, year_min, year_max, author, sources, model, k]
        outputs = [question, chatbot, panel, history]
        for trigger in (question.submit, ask.click):
            trigger(
                ui.respond, inputs, outputs, api_visibility="private", show_progress="hidden",
                concurrency_id="answer",
            )
        clear.click(
            lambda: ("", [], render.render_empty(), []), None, outputs, api_visibility="private", queue=False
        )
        gr.api(ui.api_answer, api_name="answer", concurrency_id="answer")  # one limit for chat + API
        api.register(ui)  # /answer_stream, for `rag ask --server`

    demo.queue(default_concurrency_limit=concurrency, max_size=64)
    if preload:
        ui.start_warm_up()
    return demo


def warm_up(settings: Settings) -> None:
    """Load the retrieval models and the local model now, so the first question does not wait for them."""
    try:
        from rag.retrieve import search

        search("warm-up", k=1, settings=settings)
        from rag.llm import preload

        preload(settings)
        log.info("models loaded")
    except Exception as exc:  # only an optimisation: the first question reports real problems
        log.info("warm-up skipped: %s", exc)


def launch(
    settings: Settings | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 7860,
    answer_fn: AnswerStream | None = None,
    concurrency: int | None = None,
    preload: bool = True,
    **kwargs: Any,
) -> Any:
    """Build and serve the app (blocks until interrupted unless ``prevent_thread_lock=True``).

    With ``preload`` the models are loaded in the background while the page is already served.
    """
    settings = settings or Settings()
    demo = create_app(settings, answer_fn, concurrency=concurrency, preload=preload)
    local = "127.0.0.1" if host in ("0.0.0.0", "", "::") else host
    api.announce(settings.home, f"http://{local}:{port}/")  # for `rag ask --server` of this data home
    return demo.launch(server_name=host, server_port=port, **kwargs)
