"""p-values as people should read them: labelled by their test, never ``p = 0``.

A computed p-value can be exactly 0 only by accident (floating-point underflow) and a Monte
Carlo p-value cannot be smaller than its resolution ``1 / (n + 1)``; printing "p = 0" claims a
certainty no test gives. :func:`format_p` writes a bound instead, and :class:`PValue` keeps the
value together with the name of the test that produced it, so every table, widget and notebook
says the same thing the same way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["PValue", "format_p", "SMALLEST_P"]

#: Below this a p-value is printed as a bound (double precision underflows near 1e-308).
SMALLEST_P = 1e-300


def format_p(p: float, *, floor: float | None = None) -> str:
    """Write a p-value for people: two significant digits, a bound where the value is not exact.

    Parameters
    ----------
    p
        The p-value.
    floor
        The smallest p-value the test can resolve (a Monte Carlo test with ``n`` draws:
        ``1 / (n + 1)``); at or below it the text is a bound, ``p ≤ floor``.

    Examples
    --------
    >>> format_p(0.0312), format_p(2.4e-18), format_p(0.0)
    ('p = 0.031', 'p = 2.4e-18', 'p < 1e-300')
    >>> format_p(1 / 101, floor=1 / 101)
    'p ≤ 0.0099'
    >>> format_p(float("nan"))
    'p = n/a'
    """
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "p = n/a"
    p = float(p)
    if floor is not None and p <= floor:
        return f"p ≤ {floor:.2g}"
    if p < SMALLEST_P:
        return f"p < {SMALLEST_P:.0e}"
    if p >= 0.995:
        return "p = 1"
    return f"p = {p:.2g}"


@dataclass(frozen=True)
class PValue:
    """A p-value with the test that produced it.

    Attributes
    ----------
    value
        The p-value (a float in [0, 1]; NaN when no test could be made).
    test
        The test, as a reader needs it: ``"exact binomial test"``.
    floor
        The resolution of the test (Monte Carlo), or None for an exact or analytic value.

    Examples
    --------
    >>> str(PValue(3e-19, "exact binomial test"))
    'p = 3e-19 (exact binomial test)'
    >>> float(PValue(0.5, "x")) < 1
    True
    """

    value: float
    test: str
    floor: float | None = None

    def __str__(self) -> str:
        return f"{format_p(self.value, floor=self.floor)} ({self.test})"

    def __float__(self) -> float:
        return float(self.value)

    @property
    def text(self) -> str:
        """The value alone, as :func:`format_p` writes it."""
        return format_p(self.value, floor=self.floor)
