import pytest

from apps.core.plates import lookalike_key, normalise


@pytest.mark.parametrize(
    ("raw", "normal"),
    [("ab-12 cde", "AB12CDE"), ("AB12CDE", "AB12CDE"), (" a.b 1 ", "AB1"), ("ÄB12", "B12"), ("", "")],
)
def test_normal_form_keeps_only_upper_case_letters_and_digits(raw, normal):
    assert normalise(raw) == normal


@pytest.mark.parametrize(
    ("plate", "key"),
    [("O0DQ", "0000"), ("I1L", "111"), ("B8", "88"), ("S5", "55"), ("Z2", "22"), ("G6", "66"), ("AB12CDE", "A812C0E")],
)
def test_lookalike_key_maps_each_character_to_its_class(plate, key):
    assert lookalike_key(plate) == key


def test_plates_that_differ_only_in_lookalikes_share_a_key_but_not_a_normal_form():
    assert lookalike_key("AB12CDE") == lookalike_key("A812C0E")
    assert normalise("AB12CDE") != normalise("A812C0E")
