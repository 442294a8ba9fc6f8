"""slick_hf.slick and slick_hf.normalize: categories, SQuAD normalisation, EM, config checks."""

import math

import pytest

from slick_hf.core.normalize import exact_match, normalize_answer
from slick_hf.core.slick import (
    CATEGORIES,
    KNOWN,
    SlickConfig,
    categorize,
    clean_completion,
    count_correct,
)
from slick_hf.errors import SlickError


@pytest.mark.parametrize(
    ("p_greedy", "p_sample", "expected"),
    [
        # P(T=0) = 1: HighlyKnown, whatever the samples say
        (1.0, 0.0, "HighlyKnown"),
        (1.0, 1.0, "HighlyKnown"),
        (10 / 10, 3 / 160, "HighlyKnown"),
        # 0 < P(T=0) < 1: MaybeKnown, both ends of the open interval
        (0.9, 0.0, "MaybeKnown"),
        (0.1, 0.0, "MaybeKnown"),
        (0.1, 1.0, "MaybeKnown"),
        (0.5, 0.0, "MaybeKnown"),
        (9 / 10, 160 / 160, "MaybeKnown"),
        (1e-9, 0.0, "MaybeKnown"),
        (1 - 1e-9, 0.0, "MaybeKnown"),
        # P(T=0) = 0: the samples decide
        (0.0, 1 / 160, "WeaklyKnown"),
        (0.0, 1.0, "WeaklyKnown"),
        (0.0, 0.0, "Unknown"),
    ],
)
def test_categorize_boundaries(p_greedy, p_sample, expected):
    assert categorize(p_greedy, p_sample) == expected


@pytest.mark.parametrize(
    ("p_greedy", "p_sample"),
    [(-0.01, 0.0), (1.01, 0.0), (0.0, -0.1), (0.0, 1.5), (2.0, 2.0), (math.nan, 0.0), (0.0, math.nan)],
)
def test_categorize_rejects_out_of_range(p_greedy, p_sample):
    with pytest.raises(ValueError):
        categorize(p_greedy, p_sample)


def test_categories_order_and_known():
    assert CATEGORIES == ("HighlyKnown", "MaybeKnown", "WeaklyKnown", "Unknown")
    assert KNOWN == ("HighlyKnown", "MaybeKnown", "WeaklyKnown")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Paris", "paris"),
        ("PARIS", "paris"),
        ("Paris.", "paris"),
        ("U.S.A.", "usa"),
        ("rock-and-roll!", "rockandroll"),
        ('"Paris", (France)', "paris france"),
        # articles are dropped only as whole words
        ("The Hague", "hague"),
        ("the hague", "hague"),
        ("an apple a day", "apple day"),
        ("A", ""),
        ("Theatre", "theatre"),
        ("Anthem", "anthem"),
        ("Athens", "athens"),
        ("then", "then"),
        ("Bethel", "bethel"),
        # punctuation is stripped before articles: "the-end" becomes one word
        ("the-end", "theend"),
        ("The-Hague", "thehague"),
        # whitespace folding
        ("  New   York\t City\n", "new york city"),
        ("", ""),
        ("   ", ""),
        # SQuAD strips string.punctuation only (ASCII); other characters survive
        ("São Paulo", "são paulo"),
        ("Saint-Étienne", "saintétienne"),
        ("«Paris»", "«paris»"),
        ("Paris\u2019", "paris\u2019"),
        ("Paris\u2014France", "paris\u2014france"),
    ],
)
def test_normalize_answer(text, expected):
    assert normalize_answer(text) == expected


@pytest.mark.parametrize(
    ("prediction", "answers", "expected"),
    [
        ("Paris", ["Paris"], True),
        (" paris.", ["Paris"], True),
        ("The United States", ["United States of America", "United States", "USA"], True),
        ("U.S.A.", ["United States", "USA"], True),
        ("usa", ["United States"], False),
        ("Paris, France", ["Paris"], False),
        ("Paris", ["Paris, France"], False),
        ("Pari", ["Paris"], False),
        ("", ["Paris"], False),
        ("Paris", [], False),
        ("the Hague", ["The Hague"], True),
        ("Hague", ["The Hague"], True),
    ],
)
def test_exact_match_with_aliases(prediction, answers, expected):
    assert exact_match(prediction, answers) is expected


def test_exact_match_accepts_any_iterable():
    assert exact_match("Tokyo", (a for a in ["Kyoto", "Tokyo"]))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (" Paris\nQ: What is the capital of Spain?", "Paris"),
        ("Paris", "Paris"),
        ("  Paris  ", "Paris"),
        ("Paris\r\nmore", "Paris"),
        ("\nParis", ""),
        ("", ""),
        (" New York City\n\n", "New York City"),
    ],
)
def test_clean_completion(text, expected):
    assert clean_completion(text) == expected


def test_count_correct():
    completions = [clean_completion(c) for c in [" Paris\nQ:", " paris.", " Lyon", "", " The Paris"]]
    assert count_correct(completions, ["Paris"]) == 3
    assert count_correct(completions, ["Lyon", "Paris"]) == 4
    assert count_correct([], ["Paris"]) == 0


def test_slick_config_defaults_are_the_papers():
    cfg = SlickConfig()
    assert (cfg.num_prompts, cfg.num_shots, cfg.num_samples) == (10, 4, 16)
    assert (cfg.temperature, cfg.top_k) == (0.5, 40)
    assert cfg.full_sampling is False
    assert cfg.max_generations == 170


def test_slick_config_max_generations_follows_parameters():
    assert SlickConfig(num_prompts=3, num_samples=4).max_generations == 15
    assert SlickConfig(num_prompts=1, num_samples=1).max_generations == 2


def test_slick_config_to_dict_round_trips():
    cfg = SlickConfig(num_prompts=3, num_samples=4, max_new_tokens=12, seed=7, full_sampling=True)
    assert SlickConfig(**cfg.to_dict()) == cfg
    assert cfg.to_dict()["seed"] == 7


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("num_prompts", 0),
        ("num_shots", 0),
        ("num_samples", 0),
        ("max_new_tokens", 0),
        ("top_k", 0),
        ("num_prompts", -3),
        ("temperature", 0.0),
        ("temperature", -0.5),
    ],
)
def test_slick_config_rejects_bad_values(field, value):
    with pytest.raises(SlickError, match=field):
        SlickConfig(**{field: value})
