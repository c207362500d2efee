"""Kubernetes quantities: exact parsing and kube's canonical spelling."""

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestra.api.quantity import QUANTITY_ERROR, Quantity, QuantityError, format_quantity, parse_quantity


@pytest.mark.parametrize(
    ("text", "value", "canonical"),
    [
        ("100m", Fraction(1, 10), "100m"),
        ("1Gi", Fraction(2**30), "1Gi"),
        ("0.5", Fraction(1, 2), "500m"),
        (".5", Fraction(1, 2), "500m"),
        ("1000m", Fraction(1), "1"),
        ("1024Mi", Fraction(2**30), "1Gi"),
        ("1.5Gi", Fraction(3 * 2**29), "1536Mi"),
        ("1500", Fraction(1500), "1500"),
        ("1k", Fraction(1000), "1k"),
        ("12e6", Fraction(12_000_000), "12e6"),
        ("1E", Fraction(10**18), "1E"),
        ("512", Fraction(512), "512"),
        ("0", Fraction(0), "0"),
        ("-1", Fraction(-1), "-1"),
        (2, Fraction(2), "2"),
        (0.25, Fraction(1, 4), "250m"),
        ("1.0000000001", Fraction(1_000_000_001, 10**9), "1000000001n"),
    ],
    ids=str,
)
def test_parse_and_canonical(text, value, canonical):
    assert parse_quantity(text) == value
    assert format_quantity(text) == canonical


@pytest.mark.parametrize("text", ["", "abc", "1.2.3", "1X", ".", "1Gib", True])
def test_rejects_non_quantities_with_kube_message(text):
    with pytest.raises(QuantityError, match="quantities must match"):
        parse_quantity(text)
    assert QUANTITY_ERROR.startswith("quantities must match the regular expression")


def test_ordering():
    assert Quantity.parse("500m") < Quantity.parse("1")
    assert Quantity.parse("1Gi") > Quantity.parse("1G")


@given(st.integers(min_value=0, max_value=10**12), st.sampled_from(["m", "", "k", "Ki", "Mi", "Gi"]))
def test_canonical_round_trips(n, suffix):
    q = Quantity.parse(f"{n}{suffix}")
    assert Quantity.parse(str(q)).value == q.value
