"""The type and range of a numeric setting, declared once, by the object that takes it: a class's ``KNOBS``
(``TextDataModule.KNOBS``, ``Preprocess.KNOBS``, ``BeamDecoder.KNOBS``, …). The object checks its arguments against
it when built (``check``), and the commands check a composed config against the same declarations before anything
is built (``crnn_lit.config.check_values`` reads each node's ``_target_``), so ``data.batch_size=abc`` fails in one
line before any work, and a value used from Python fails the same way."""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass

from crnn_lit.paths import ConfigError


@dataclass(frozen=True)
class Knob:
    """``kind`` int or float (an int is a valid float; NaN is neither; infinity fits where the bounds allow it:
    ``open_ratio=inf`` never takes the lexicon word), bounds inclusive unless ``above`` (exclusive lower bound),
    ``None`` allowed when ``optional``, and ``words`` the non-numeric values it also takes (``auto``)."""

    kind: type
    low: float | None = None
    high: float | None = None
    above: bool = False
    optional: bool = False
    words: tuple[str, ...] = ()

    def problem(self, value) -> str | None:
        """Why ``value`` does not fit, or None."""
        if value is None:
            return None if self.optional else "must be set"
        if isinstance(value, str) and value in self.words:
            return None
        kind = numbers.Real if self.kind is float else numbers.Integral  # numpy's numbers too
        if isinstance(value, bool) or not isinstance(value, kind) or math.isnan(value):  # NaN would pass the bounds
            return f"expected {self}"
        too_low = self.low is not None and (value <= self.low if self.above else value < self.low)
        if too_low or (self.high is not None and value > self.high):
            return f"out of range, expected {self}"
        return None

    def __str__(self) -> str:
        bounds = [f"{'>' if self.above else '>='} {self.low:g}"] if self.low is not None else []
        bounds += [f"<= {self.high:g}"] if self.high is not None else []
        text = " ".join(["an integer" if self.kind is int else "a number", " and ".join(bounds)]).strip()
        others = [*self.words, *(["null"] if self.optional else [])]
        return text + (f" (or {' or '.join(others)})" if others else "")


Knobs = Mapping[str, Knob]  # an object's KNOBS: its argument → the knob it must fit
COUNT, SIZE = Knob(int, 0), Knob(int, 1)  # a count that may be 0; a size (batch, width, …) of at least 1


def check(knobs: Knobs, prefix: str = "", **values) -> None:
    """``ConfigError`` (one line: ``<prefix><name>=<value>: <why>``) for the first of ``values`` that does not fit
    its knob."""
    for name, value in values.items():
        problem = knobs[name].problem(value)
        if problem:
            raise ConfigError(f"{prefix}{name}={value!r}: {problem}")
