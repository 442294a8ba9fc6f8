"""Tests of the `evaluate` module evaluation/slick_exact_match, loaded through `evaluate.load`."""

import doctest
from pathlib import Path

import evaluate
import pytest

from slick_hf.core.normalize import exact_match
from slick_hf.evaluate.scoring import METRIC_DIR as MODULE_DIR  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[2]
CATEGORIES = ("HighlyKnown", "MaybeKnown", "WeaklyKnown", "Unknown")
GROUPS = (*CATEGORIES, "Known")


@pytest.fixture(scope="module")
def metric():
    return evaluate.load(str(MODULE_DIR), keep_in_memory=True)


def test_module_layout():
    assert MODULE_DIR == REPO_ROOT / "evaluation" / "slick_exact_match"  # the one source, in a checkout
    for name in ("slick_exact_match.py", "README.md", "app.py", "requirements.txt", "tests.py"):
        assert (MODULE_DIR / name).is_file(), name
    card = (MODULE_DIR / "README.md").read_text(encoding="utf-8")
    header = card.split("---")[1]
    for field in ("title:", "emoji:", "sdk: gradio", "app_file: app.py", "- evaluate", "- metric"):
        assert field in header
    assert "slick-hf" in (MODULE_DIR / "requirements.txt").read_text().split()


def test_loads_offline_by_relative_path(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(REPO_ROOT)
    module = evaluate.load("evaluation/slick_exact_match")
    assert type(module).__name__ == "SlickExactMatch"
    assert module.compute(predictions=["a"], references=[["b"]])["exact_match"] == 0.0


def test_the_space_test_cases(metric):
    import importlib.util

    spec = importlib.util.spec_from_file_location("space_tests", MODULE_DIR / "tests.py")
    cases = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cases)
    assert len(cases.test_cases) >= 2
    for case in cases.test_cases:
        inputs = {k: v for k, v in case.items() if k != "result"}
        result = metric.compute(**inputs)
        assert {k: result[k] for k in case["result"]} == pytest.approx(case["result"])


def test_overall_keys_without_categories(metric):
    results = metric.compute(predictions=["Paris"], references=[["Paris"]])
    assert results == {"exact_match": 1.0, "count": 1, "answered": 1.0, "exact_match_answered": 1.0}


def test_any_alias_matches(metric):
    results = metric.compute(
        predictions=["United States", "Londres", "NYC", "Big Apple"],
        references=[["USA", "United States"], ["London"], ["New York", "NYC"], ["New York"]],
    )
    assert results["exact_match"] == pytest.approx(2 / 4)
    assert results["count"] == 4


@pytest.mark.parametrize(
    ("prediction", "reference", "expected"),
    [
        ("The  U.S.A.", "usa", True),  # case, punctuation, article, whitespace
        ("  paris\n", "Paris", True),
        ("An Apple", "apple", True),
        ("Theater", "ater", False),  # 'the' inside a word is not an article
        ("Lyon, France", "Lyon", False),
        ("Saint-Étienne", "SaintÉtienne", True),  # ASCII '-' removed, accent kept
        ("Saint-Étienne", "saint etienne", False),
    ],
)
def test_normalisation(metric, prediction, reference, expected):
    results = metric.compute(predictions=[prediction], references=[[reference]])
    assert results["exact_match"] == float(expected)


def test_plain_string_reference_is_one_alias(metric):
    # datasets would split a plain string in a Sequence column into characters: "P" must not match "Paris".
    results = metric.compute(predictions=["Paris", "P"], references=[["Paris"], "Paris"])
    assert results["exact_match"] == pytest.approx(1 / 2)
    results = metric.compute(predictions=["x", "P"], references=["x", "Paris"], return_per_example=True)
    assert results["per_example_correct"] == [True, False]


def test_per_category(metric):
    predictions = ["Paris", "Rome", "Berlin", "Oslo", "Kyiv", "no", "Madrid", "Lima"]
    references = [["Paris"], ["Rome"], ["Bonn"], ["Oslo"], ["Kiev", "Kyiv"], ["Bern"], ["Madrid"], ["Quito"]]
    categories = [
        "HighlyKnown",  # right
        "HighlyKnown",  # right
        "MaybeKnown",  # wrong
        "MaybeKnown",  # right
        "WeaklyKnown",  # right (second alias)
        "Unknown",  # wrong
        "Unknown",  # right
        "Unknown",  # wrong
    ]
    r = metric.compute(predictions=predictions, references=references, categories=categories)
    assert r["count"] == 8 and r["exact_match"] == pytest.approx(5 / 8)
    expected = {
        "HighlyKnown": (2, 2 / 2),
        "MaybeKnown": (2, 1 / 2),
        "WeaklyKnown": (1, 1 / 1),
        "Unknown": (3, 1 / 3),
        "Known": (5, 4 / 5),
    }
    for group, (count, em) in expected.items():
        assert r[f"count_{group}"] == count, group
        assert r[f"exact_match_{group}"] == pytest.approx(em), group
        assert r[f"answered_{group}"] == 1.0
        assert r[f"exact_match_answered_{group}"] == pytest.approx(em)
    # key order: overall, then the groups in category order
    keys = list(r)
    assert keys[:4] == ["exact_match", "count", "answered", "exact_match_answered"]
    assert [k.removeprefix("count_") for k in keys if k.startswith("count_")] == list(GROUPS)


def test_classlabel_ints_equal_names(metric):
    predictions = ["p", "b", "c", "d", "e"]
    references = [["p"], ["x"], ["c"], ["d"], ["x"]]
    names = ["HighlyKnown", "MaybeKnown", "WeaklyKnown", "Unknown", "Unknown"]
    ints = [CATEGORIES.index(n) for n in names]
    by_name = metric.compute(predictions=predictions, references=references, categories=names)
    by_int = metric.compute(predictions=predictions, references=references, categories=ints)
    mixed = metric.compute(predictions=predictions, references=references, categories=[0, "MaybeKnown", 2, 3, 3])
    assert by_name == by_int == mixed
    assert by_int["exact_match_Unknown"] == pytest.approx(1 / 2)
    assert by_int["count_Known"] == 3


def test_numpy_ints_accepted(metric):
    np = pytest.importorskip("numpy")
    r = metric.compute(predictions=["p", "b"], references=[["p"], ["p"]], categories=np.array([3, 0]))
    assert r["exact_match_Unknown"] == 1.0 and r["exact_match_HighlyKnown"] == 0.0


def test_categories_missing_from_batch(metric):
    r = metric.compute(
        predictions=["p", "b", "c"],
        references=[["p"], ["b"], ["x"]],
        categories=["HighlyKnown", "Unknown", "Unknown"],
    )
    for group in ("MaybeKnown", "WeaklyKnown"):
        assert r[f"count_{group}"] == 0
        assert r[f"exact_match_{group}"] is None
        assert r[f"answered_{group}"] is None
        assert r[f"exact_match_answered_{group}"] is None
    assert r["count_Known"] == 1 and r["exact_match_Known"] == 1.0
    assert r["exact_match_Unknown"] == pytest.approx(1 / 2)

    only_unknown = metric.compute(predictions=["p"], references=[["b"]], categories=["Unknown"])
    assert only_unknown["count_Known"] == 0 and only_unknown["exact_match_Known"] is None


def test_empty_input(metric):
    r = metric.compute(predictions=[], references=[])
    assert r == {"exact_match": None, "count": 0, "answered": None, "exact_match_answered": None}
    r = metric.compute(predictions=[], references=[], categories=[])
    assert r["count"] == 0 and r["exact_match"] is None
    assert all(r[f"count_{g}"] == 0 and r[f"exact_match_{g}"] is None for g in GROUPS)


def test_abstentions(metric):
    predictions = [
        "I don't know",  # abstains (Unknown)
        "i dont know.",  # abstains after normalisation (Unknown)
        "I don't know the answer",  # abstains by prefix (WeaklyKnown)
        "Bern",  # answered, right (Unknown)
        "Rome",  # answered, wrong (MaybeKnown)
        "Paris",  # answered, right (HighlyKnown)
        "I don't knowledge",  # answered (not a whole-word prefix), wrong (HighlyKnown)
    ]
    references = [["Oslo"], ["Lima"], ["Kyiv"], ["Bern"], ["Milan"], ["Paris"], ["x"]]
    categories = [3, 3, 2, 3, 1, 0, 0]
    r = metric.compute(predictions=predictions, references=references, categories=categories, return_per_example=True)
    assert r["per_example_abstained"] == [True, True, True, False, False, False, False]
    assert r["per_example_correct"] == [False, False, False, True, False, True, False]
    assert r["exact_match"] == pytest.approx(2 / 7)
    assert r["answered"] == pytest.approx(4 / 7)
    assert r["exact_match_answered"] == pytest.approx(2 / 4)
    assert (r["answered_Unknown"], r["exact_match_answered_Unknown"]) == (pytest.approx(1 / 3), 1.0)
    assert (r["answered_WeaklyKnown"], r["exact_match_answered_WeaklyKnown"]) == (0.0, None)
    assert r["exact_match_WeaklyKnown"] == 0.0
    assert (r["answered_MaybeKnown"], r["exact_match_answered_MaybeKnown"]) == (1.0, 0.0)
    assert (r["answered_HighlyKnown"], r["exact_match_answered_HighlyKnown"]) == (1.0, 0.5)
    assert r["answered_Known"] == pytest.approx(3 / 4)
    assert r["exact_match_answered_Known"] == pytest.approx(1 / 3)

    exact = metric.compute(predictions=predictions, references=references, abstention_match="exact")
    assert exact["answered"] == pytest.approx(5 / 7)  # "... the answer" is now an answer
    assert exact["exact_match_answered"] == pytest.approx(2 / 5)


def test_abstention_patterns_option(metric):
    predictions = ["No idea!", "I don't know", "Paris"]
    references = [["p"], ["b"], ["Paris"]]
    custom = metric.compute(predictions=predictions, references=references, abstention_patterns=["no idea"])
    assert custom["answered"] == pytest.approx(2 / 3)
    single = metric.compute(predictions=predictions, references=references, abstention_patterns="No idea")
    assert single == custom
    off = metric.compute(predictions=predictions, references=references, abstention_patterns=None)
    assert off["answered"] == 1.0 and off["exact_match_answered"] == off["exact_match"]
    nothing_answered = metric.compute(predictions=["I don't know"], references=[["x"]])
    assert nothing_answered["answered"] == 0.0 and nothing_answered["exact_match_answered"] is None


def test_abstention_that_matches_gold_is_correct_but_not_answered(metric):
    r = metric.compute(predictions=["I don't know"], references=[["I don't know"]])
    assert r["exact_match"] == 1.0 and r["answered"] == 0.0 and r["exact_match_answered"] is None


def test_length_mismatch_raises(metric):
    with pytest.raises(ValueError, match="categories has 1 entries but there are 2 predictions"):
        metric.compute(predictions=["p", "b"], references=[["p"], ["b"]], categories=["Unknown"])
    with pytest.raises(ValueError):
        metric.compute(predictions=["p", "b"], references=[["p"]])


@pytest.mark.parametrize("bad", ["Known", "unknown", 4, -1, None, True, 1.0])
def test_unknown_category_raises(metric, bad):
    with pytest.raises(ValueError, match="HighlyKnown.*MaybeKnown.*WeaklyKnown.*Unknown") as info:
        metric.compute(predictions=["p", "b"], references=[["p"], ["b"]], categories=["Unknown", bad])
    assert "position 1" in str(info.value)


def test_bad_options_raise(metric):
    with pytest.raises(ValueError, match="abstention_match"):
        metric.compute(predictions=["p"], references=[["p"]], abstention_match="regex")
    with pytest.raises(ValueError, match="empty after normalisation"):
        metric.compute(predictions=["p"], references=[["p"]], abstention_patterns=["the ?!"])
    with pytest.raises(ValueError, match="not a string"):
        metric.compute(predictions=["p"], references=[["p"]], categories="Unknown")


TRICKY = [
    ("The  U.S.A.", ["usa"]),
    ("U.S.A", ["U S A"]),
    ("A. Smith", ["Smith"]),
    ("theatre", ["atre"]),
    ("Anne", ["ne"]),
    ("  Leonardo   da Vinci ", ["leonardo da vinci"]),
    ("Leonardo\tda\nVinci", ["Leonardo da Vinci"]),
    ("O'Brien", ["OBrien"]),
    ("O'Brien", ["O Brien"]),
    ("São Paulo", ["Sao Paulo"]),
    ("SÃO PAULO", ["são paulo"]),
    ("Rock & Roll", ["rock roll"]),
    ("Rock and Roll", ["rock & roll"]),
    ("1,000", ["1000"]),
    ("1.5", ["15"]),
    ("20th century", ["20th-century"]),
    ("20th century", ["20thcentury"]),
    ("“Quoted”", ['"Quoted"']),
    ("naïve", ["naive"]),
    ("Ελλάδα", ["ελλάδα"]),
    ("", ["x"]),
    ("I don't know", ["i dont know"]),
    ("A Tale of Two Cities", ["Tale of Two Cities", "x"]),
    ("Mary-Kate", ["marykate", "mary kate"]),
    ("x", []),
]


def test_agrees_with_slick_hf_exact_match(metric):
    predictions = [p for p, _ in TRICKY]
    references = [a for _, a in TRICKY]
    r = metric.compute(predictions=predictions, references=references, return_per_example=True)
    expected = [exact_match(p, a) for p, a in TRICKY]
    assert r["per_example_correct"] == expected
    assert r["exact_match"] == pytest.approx(sum(expected) / len(expected))
    assert 0 < sum(expected) < len(expected)  # the list really mixes matches and misses


def test_add_batch_then_compute_with_categories(metric):
    metric.add_batch(predictions=["p", "b"], references=[["p"], "x"])
    metric.add(prediction="c", reference="c")
    r = metric.compute(categories=["Unknown", "Unknown", "HighlyKnown"])
    assert r["count"] == 3 and r["exact_match"] == pytest.approx(2 / 3)
    assert r["exact_match_Unknown"] == pytest.approx(1 / 2) and r["exact_match_HighlyKnown"] == 1.0


def test_fast_on_10k_examples(metric):
    n = 10_000
    predictions = [("Paris", "The U.S.A.", "I don't know", "Lyon, France")[i % 4] for i in range(n)]
    references = [["Paris", "USA", "United States of America"][: 1 + i % 3] for i in range(n)]
    categories = [i % 4 for i in range(n)]
    r = metric.compute(predictions=predictions, references=references, categories=categories)
    assert r["count"] == n and sum(r[f"count_{c}"] for c in CATEGORIES) == n


def test_docstring_and_card_examples(metric, monkeypatch):
    """The examples in `_KWARGS_DESCRIPTION` and in README.md run as written, from the repo root."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(REPO_ROOT)
    parser = doctest.DocTestParser()
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    for name, text in (
        ("inputs_description", metric.inputs_description),
        ("README.md", (MODULE_DIR / "README.md").read_text(encoding="utf-8")),
    ):
        # a closing ``` fence would otherwise be read as part of the expected output
        text = "\n".join("" if line.startswith("```") else line for line in text.splitlines())
        test = parser.get_doctest(text, {"evaluate": evaluate}, name, name, 0)
        assert test.examples, name
        runner.run(test)
    assert runner.summarize(verbose=False).failed == 0
