"""The one expression evaluator: values, errors that say what failed, and the sandbox."""

from __future__ import annotations

import pytest

from appbook.server.expressions import ExpressionError, compile_expression, evaluate

CONTEXT = {"record": {"amount": 12000, "status": 1, "tags": ["a", "b"]}, "inputs": {"days": 3}}


def test_values() -> None:
    assert evaluate("record.amount > 10000 and inputs.days < 5", CONTEXT) is True
    assert evaluate("record.amount * 2", CONTEXT) == 24000
    assert evaluate("'b' in record.tags", CONTEXT) is True
    assert evaluate("record['status'] == 1", CONTEXT) is True
    assert evaluate("record.amount | round(-3) | int", CONTEXT) == 12000
    assert compile_expression("1 + 1") is compile_expression("1 + 1")  # compiled once


def test_errors_name_the_expression_and_where() -> None:
    with pytest.raises(ExpressionError, match=r"steps.big: 'record.amont > 1': .*amont"):
        evaluate("record.amont > 1", CONTEXT, where="steps.big")
    with pytest.raises(ExpressionError, match=r"'nothing\.here': 'nothing' is undefined"):
        evaluate("nothing.here", CONTEXT)
    with pytest.raises(ExpressionError, match="failed: ZeroDivisionError"):
        evaluate("record.amount / 0", CONTEXT)
    with pytest.raises(ExpressionError, match="is not a valid expression"):
        evaluate("record.amount >", CONTEXT)


def test_the_sandbox_keeps_internals_out_of_reach() -> None:
    for escape in (
        "record.__class__.__mro__",
        "().__class__.__base__.__subclasses__()",
        "record.tags.append('x')",
        "cycler.__init__.__globals__",
    ):
        with pytest.raises(ExpressionError):
            evaluate(escape, CONTEXT)
    assert CONTEXT["record"]["tags"] == ["a", "b"]  # nothing was changed


def test_a_failed_expression_is_a_422_over_http() -> None:
    from appbook.extension.status import status_of

    assert status_of(ExpressionError("x")) == 422


def test_a_missing_key_is_an_error_naming_the_expression_and_where() -> None:
    with pytest.raises(ExpressionError) as info:
        evaluate("inputs.days", {"inputs": {}}, where="step scan")
    assert info.value.message == (
        "step scan: 'inputs.days': no key or attribute 'days' "
        "(write `| default(none)` to allow a missing one)"
    )
    assert evaluate("inputs.days | default(7)", {"inputs": {}}) == 7
