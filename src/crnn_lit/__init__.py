"""CRNN scene-text recognition. The Python API: ``from crnn_lit import Recognizer`` (crnn_lit.reading.recognizer)."""

__all__ = ["Prediction", "Recognizer"]


def __getattr__(name: str):
    # imported on first use: `import crnn_lit.config` (every entry point, the data CLI) need not load torch first
    if name in __all__:
        from crnn_lit.reading import recognizer

        return getattr(recognizer, name)
    raise AttributeError(f"module 'crnn_lit' has no attribute {name!r}")
