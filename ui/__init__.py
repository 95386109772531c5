"""The Gradio chat UI over rag's Python API. ``from ui.app import create_app``; started by ``rag ui``."""
