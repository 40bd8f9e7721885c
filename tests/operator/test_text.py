"""The terminal text helpers: control characters escaped, amounts quantized, durations in words."""

from __future__ import annotations

from decimal import Decimal

from autoquant.operator.text import amount, duration, money, safe


def test_safe_escapes_every_control_character() -> None:
    """ESC, newline, tab, CR, DEL and C1 become visible escapes; printable text is unchanged."""
    assert safe("plain text é") == "plain text é"
    assert safe("a\x1b[2Jb\nc\td\re\x7ff\x9b") == "a\\x1b[2Jb\\nc\\td\\re\\x7ff\\x9b"


def test_amounts_and_money_are_quantized_for_reading() -> None:
    """An SMA's forty digits show as six places at most; cash to the cent; trailing zeros dropped."""
    third = Decimal(1) / Decimal(3) + 100
    assert amount(str(third)) == "100.333333"
    assert amount("0.5000") == "0.5" and amount("12") == "12" and amount(None) == ""
    assert money("0") == "0.00" and money("3.4616") == "3.46" and money(None) == "-"


def test_durations_in_words() -> None:
    """Nanoseconds become ms, s, min or h."""
    assert duration(4_837_688) == "5 ms"
    assert duration(4_800_000_000) == "4.8 s"
    assert duration(200 * 10**9) == "3 min 20 s"
    assert duration(7500 * 10**9) == "2 h 5 min"
