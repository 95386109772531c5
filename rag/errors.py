"""The exception tree. Library code raises these; the CLI turns them into one clean line.

Every message says what went wrong and what to do next.
"""

from __future__ import annotations

from pathlib import Path


class RagError(Exception):
    """Root of every error rag raises on purpose."""


class ConfigError(RagError):
    """A setting or argument is invalid."""


class SourceError(RagError):
    """A source file (or one entry in it) could not be read or parsed."""

    def __init__(self, path: str | Path, message: str, line: int | None = None) -> None:
        self.path = str(path)
        self.line = line
        self.detail = message
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {message}")


class UnknownFormatError(SourceError):
    """The file is not in any format rag knows."""


class EmptySourceError(SourceError):
    """The file is empty."""


class EncodingError(SourceError):
    """The file is binary or not UTF-8."""


class EntryParseError(SourceError):
    """One entry in an otherwise readable file could not be parsed."""


class CorpusError(RagError):
    """Loading failed (strict mode, or nothing loaded); carries every problem found."""

    def __init__(self, message: str, problems: list[SourceError] | None = None) -> None:
        self.problems = list(problems or [])
        lines = [message] + [f"  - {p}" for p in self.problems]
        super().__init__("\n".join(lines))


class IndexError_(RagError):
    """The index could not be built or opened."""


class StoreUnavailableError(IndexError_):
    """The Chroma server cannot be reached."""


class StoreCorruptError(IndexError_):
    """The Chroma directory is corrupt or not a Chroma directory."""


class IndexMissingError(IndexError_):
    """No index exists yet for these settings."""


class IndexBusyError(IndexError_):
    """Another process holds this home's writer lock (``rag index --no-wait``)."""


class QueryError(RagError):
    """The query or the filters are invalid."""


class LLMError(RagError):
    """A model call failed."""


class ModelNotInstalledError(LLMError):
    """The local model or its runtime is not installed."""


class LLMTimeoutError(LLMError):
    """The model did not answer within the timeout."""


class LLMAuthError(LLMError):
    """The provider's API key is missing or was rejected."""


class LLMProviderError(LLMError):
    """The provider (or the local model) failed: bad request, unknown model, server error, …"""


class PromptError(ConfigError):
    """A prompt template is missing or its placeholders are not the expected ones."""


class EmbeddingModelError(RagError):
    """The embedding model could not be loaded."""
