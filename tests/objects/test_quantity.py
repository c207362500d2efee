"""Kubernetes quantities: exact parsing and kube's canonical spelling."""

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestra.objects.quantity import (
    INT64_MAX,
    INT64_MIN,
    QUANTITY_ERROR,
    SATURATED,
    SUFFIX_ERROR,
    Quantity,
    QuantityError,
    format_quantity,
    milli_value,
    parse_quantity,
)


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


# kube-apiserver 1.32 refuses none of these for its size (see orchestra.objects.quantity); what it
# stores, and what kube's MilliValue / Value would be without int64 overflow (saturated here).
@pytest.mark.parametrize(
    ("text", "value", "canonical", "milli", "units"),
    [
        ("1e20", Fraction(10**20), "100e18", INT64_MAX, INT64_MAX),
        ("1e400", Fraction(10**400), "10e399", INT64_MAX, INT64_MAX),
        ("9223372036854776k", Fraction(9223372036854776000), "9223372036854776k", INT64_MAX, INT64_MAX),
        ("9223372036854775", Fraction(9223372036854775), "9223372036854775", 9223372036854775000,
         9223372036854775),
        ("9223372036854776", Fraction(9223372036854776), "9223372036854776", INT64_MAX, 9223372036854776),
        ("100Ei", Fraction(INT64_MAX), "9223372036854775807", INT64_MAX, INT64_MAX),
        ("8Ei", Fraction(INT64_MAX), "9223372036854775807", INT64_MAX, INT64_MAX),
        ("7Ei", Fraction(7 * 2**60), "7Ei", INT64_MAX, 7 * 2**60),
        ("-100Ei", Fraction(-INT64_MAX), "-9223372036854775807", INT64_MIN, -INT64_MAX),
        ("1e30", Fraction(10**30), "1e30", INT64_MAX, INT64_MAX),
        ("1e25", Fraction(10**25), "10e24", INT64_MAX, INT64_MAX),
        ("-1e20", Fraction(-(10**20)), "-100e18", INT64_MIN, INT64_MIN),
        ("1000E", Fraction(10**21), "1000E", INT64_MAX, INT64_MAX),
        ("1e-20", Fraction(1, 10**9), "1e-9", 1, 1),
        ("0.1n", Fraction(1, 10**9), "1n", 1, 1),
        ("1e4294967296", Fraction(1), "1", 1000, 1),
        ("1e2147483648", Fraction(1, 10**9), "1e-9", 1, 1),
        ("1e2147483647", SATURATED, "10e999", INT64_MAX, INT64_MAX),
        ("1" * 5000, SATURATED, "1" + "0" * 982 + "E", INT64_MAX, INT64_MAX),
        ("0." + "0" * 5000 + "1", Fraction(1, 10**9), "1n", 1, 1),
        ("1." + "0" * 5000 + "1", Fraction(1_000_000_001, 10**9), "1000000001n", 1001, 2),
        ("0." + "0" * 5000 + "1Ki", Fraction(1, 10**9), "1n", 1, 1),
        ("1" * 5000 + "Ki", Fraction(INT64_MAX), "9223372036854775807", INT64_MAX, INT64_MAX),
        (10**30, Fraction(10**30), "1000000000000E", INT64_MAX, INT64_MAX),
        (10**2000, SATURATED, "1" + "0" * 982 + "E", INT64_MAX, INT64_MAX),
        (1e20, Fraction(10**20), "100e18", INT64_MAX, INT64_MAX),
    ],
    ids=["cpu-1e20", "1e400", "k-over-int64-milli", "units-fit-milli", "milli-over-int64", "100Ei-capped",
         "8Ei-capped", "7Ei-fits", "negative-binary-capped", "1e30", "1e25", "negative", "past-E",
         "tiny-rounds-up", "sub-nano", "exponent-wraps-int32", "exponent-wraps-negative",
         "saturated-exponent", "saturated-digits", "long-fraction", "long-fraction-rounds-up",
         "long-binary-fraction", "long-binary", "json-int", "huge-int", "json-float"],
)
def test_large_values_within_kube_bounds(text, value, canonical, milli, units):
    q = Quantity.parse(text)
    assert q.value == value
    assert str(q) == canonical
    assert (q.milli_value(), q.int_value()) == (milli, units)


@pytest.mark.parametrize(
    "text",
    ["1e", "1e-", "1E+", "1e99999999999999999999", "1e9223372036854775808", "1Ki5", "1mk", "1i", "1Mi-1"],
    ids=["bare-e", "bare-sign", "bare-sign-upper", "exponent-over-int64", "exponent-int64-overflow",
         "binary-with-digits", "two-suffixes", "lone-i", "binary-with-sign"],
)
def test_unknown_suffixes_with_kube_message(text):
    with pytest.raises(QuantityError) as err:
        parse_quantity(text)
    assert str(err.value) == SUFFIX_ERROR


def test_int64_exponents_are_truncated_to_int32_like_kube():
    assert parse_quantity("1e9223372036854775807") == Fraction(1, 10)  # int32(2^63-1) == -1
    assert parse_quantity("1e-9223372036854775808") == 1  # int32(-2^63) == 0


def test_milli_value_helper_raises_for_non_quantities():
    assert milli_value("250m") == 250
    with pytest.raises(QuantityError):
        milli_value("lots")
