"""Expressions in definitions (workflow conditions, dataflow mappings), evaluated safely.

One evaluator for every expression Appbook runs: Jinja2's ``ImmutableSandboxedEnvironment``
compiles ``record.amount > 10000 and inputs.urgent`` into a function of a context. The
sandbox refuses attribute access to internals (``__class__``, ``__globals__``, …) and calls
that mutate objects; undefined names are errors, not silent blanks. Never ``eval``.

>>> evaluate("record.amount * 2", {"record": {"amount": 21}})
42
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

from .errors import AppbookError


class ExpressionError(AppbookError):
    """An expression that does not compile, or fails when evaluated."""

    code = "expression_failed"


@lru_cache(maxsize=2)
def _environment(html: bool = False) -> Any:
    from jinja2 import StrictUndefined
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    # HTML templates escape every value they insert (a record's text cannot add markup or
    # scripts to a rendered page or PDF); ``| safe`` marks a value as trusted HTML.
    return ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=html)


@lru_cache(maxsize=4096)
def compile_expression(text: str) -> Callable[..., Any]:
    """``text`` compiled once (cached); ExpressionError if it is not an expression."""
    from jinja2 import TemplateSyntaxError

    try:
        compiled: Callable[..., Any] = _environment().compile_expression(
            text, undefined_to_none=False
        )
    except TemplateSyntaxError as exc:
        raise ExpressionError(f"{text!r} is not a valid expression: {exc.message}") from None
    return compiled


def evaluate(text: str, context: Mapping[str, Any], *, where: str = "") -> Any:
    """The value of ``text`` with ``context``'s names; ExpressionError saying what failed
    (``where`` names the step or field, for the message)."""
    from jinja2 import UndefinedError
    from jinja2.exceptions import SecurityError

    prefix = f"{where}: " if where else ""
    from jinja2 import Undefined

    function = compile_expression(text)
    try:
        value = function(**context)
    except UndefinedError as exc:
        raise ExpressionError(f"{prefix}{text!r}: {exc.message}") from None
    except SecurityError as exc:
        raise ExpressionError(f"{prefix}{text!r} is not allowed: {exc}") from None
    except Exception as exc:  # a type error, a division by zero, …: the maker's to fix
        raise ExpressionError(f"{prefix}{text!r} failed: {type(exc).__name__}: {exc}") from None
    if isinstance(value, Undefined):  # `item.x` of an item without x comes back undefined
        missing = getattr(value, "_undefined_name", None)
        raise ExpressionError(
            f"{prefix}{text!r}: no key or attribute {missing!r} "
            "(write `| default(none)` to allow a missing one)"
        )
    return value


@lru_cache(maxsize=1024)
def compile_template(text: str, *, html: bool = False) -> Any:
    """``text`` compiled once (cached) as a template (``"Invoice {{ record.number }}"``;
    ``html``: values are HTML-escaped); ExpressionError if it does not compile."""
    from jinja2 import TemplateSyntaxError

    try:
        return _environment(html).from_string(text)
    except TemplateSyntaxError as exc:
        raise ExpressionError(
            f"{text!r} is not a valid template (line {exc.lineno}): {exc.message}"
        ) from None


def render(text: str, context: Mapping[str, Any], *, where: str = "", html: bool = False) -> str:
    """``text`` rendered as a sandboxed template with ``context``'s names (undefined names
    are errors; ``html``: every inserted value HTML-escaped); ExpressionError naming the
    template and ``where`` when it fails."""
    from jinja2 import UndefinedError
    from jinja2.exceptions import SecurityError

    prefix = f"{where}: " if where else ""
    try:
        template = compile_template(text, html=html)
    except ExpressionError as exc:
        raise ExpressionError(f"{prefix}{exc.message}") from None
    try:
        return str(template.render(**context))
    except UndefinedError as exc:
        raise ExpressionError(f"{prefix}template {text!r}: {exc.message}") from None
    except SecurityError as exc:
        raise ExpressionError(f"{prefix}template {text!r} is not allowed: {exc}") from None
    except Exception as exc:  # a type error, a division by zero, …: the maker's to fix
        raise ExpressionError(
            f"{prefix}template {text!r} failed: {type(exc).__name__}: {exc}"
        ) from None
