# Copyright 2025 The slick-hf authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.
"""SliCK exact match: closed-book QA exact match, overall and per SliCK knowledge category."""

# `evaluate` scans the import lines of this script to check its requirements: one module per import line.
import datasets
import evaluate

from slick_hf.core.normalize import exact_match, normalize_answer

_CITATION = """\
@inproceedings{gekhman2024finetuning,
    title = {Does Fine-Tuning {LLM}s on New Knowledge Encourage Hallucinations?},
    author = {Gekhman, Zorik and Yona, Gal and Aharoni, Roee and Eyal, Matan and Feder, Amir
              and Reichart, Roi and Herzig, Jonathan},
    booktitle = {Proceedings of the 2024 Conference on Empirical Methods in Natural Language Processing},
    year = {2024},
    eprint = {2405.05904},
    archivePrefix = {arXiv},
    url = {https://arxiv.org/abs/2405.05904},
}

@inproceedings{rajpurkar2016squad,
    title = {{SQ}u{AD}: 100,000+ Questions for Machine Comprehension of Text},
    author = {Rajpurkar, Pranav and Zhang, Jian and Lopyrev, Konstantin and Liang, Percy},
    booktitle = {Proceedings of the 2016 Conference on Empirical Methods in Natural Language Processing},
    year = {2016},
    pages = {2383--2392},
    url = {https://aclanthology.org/D16-1264},
}
"""

_DESCRIPTION = """\
Exact match (EM) for closed-book question answering, reported overall and per SliCK knowledge
category, as in Gekhman et al. (2024), "Does Fine-Tuning LLMs on New Knowledge Encourage
Hallucinations?".

SliCK (Sampling-based Categorization of Knowledge) puts every (question, answer) pair into one of
four categories according to how often the pre-trained model already produced the gold answer under
few-shot prompting: HighlyKnown, MaybeKnown, WeaklyKnown and Unknown ("Known" is the union of the
first three). The study reports test accuracy separately for each category of the test example,
which is what this metric computes.

A prediction is correct when, after SQuAD v1.1 normalisation (lower-case, remove punctuation, drop
the articles a/an/the, fold whitespace), it equals the normalised form of ANY of the gold aliases.
The normalisation is `slick_hf.core.normalize.normalize_answer`, the one definition used throughout
slick-hf (the same function labels the SliCK categories), imported rather than re-implemented.

The metric also measures abstention ("I don't know" answers, as produced by models fine-tuned on the
D_IDK variant): `answered` is the share of examples that did not abstain and `exact_match_answered`
the accuracy over those. All scores are fractions in [0, 1], not percentages.
"""

_KWARGS_DESCRIPTION = """
Computes exact match overall, per SliCK category and on answered (non-abstaining) examples.

Args:
    predictions (`list` of `str`): one predicted answer per example.
    references (`list` of `list` of `str`): the gold aliases of each example; a prediction is correct
        when it matches any one of them after normalisation. A reference given as a plain string is
        taken as a single alias. An alias that normalises to nothing ("", "the") raises a `ValueError`
        naming its position: it would count an empty prediction as correct.
    categories (`list` of `str` or `int`, optional): the SliCK category of each example, aligned with
        `predictions` (all examples accumulated with `add`/`add_batch`, in order, when those are used).
        Names: "HighlyKnown", "MaybeKnown", "WeaklyKnown", "Unknown"; or the `ClassLabel` ints 0, 1, 2,
        3 in that order. Any other value raises a `ValueError`. Without it, only the overall keys
        are returned.
    abstention_patterns (`str` or `list` of `str`, default `("I don't know",)`): answers that count as
        an abstention. `None` or an empty list turns abstention detection off (`answered` is 1.0).
    abstention_match (`str`, default `"prefix"`): how a prediction is compared with a pattern, both
        normalised as above. `"exact"`: the normalised prediction equals the normalised pattern.
        `"prefix"`: it equals the pattern or starts with it followed by a space (whole words only),
        so "I don't know." and "I don't know the answer" abstain, "I don't knowledge" does not.
    return_per_example (`bool`, default `False`): also return `per_example_correct` and
        `per_example_abstained`, one bool per example.

Returns:
    exact_match (`float` or `None`): share of examples whose prediction matches a gold alias.
        `None` when there are no examples.
    count (`int`): number of examples.
    answered (`float` or `None`): share of examples whose prediction is not an abstention.
    exact_match_answered (`float` or `None`): exact match over the answered examples only; `None`
        when no example was answered. An abstention is never counted correct in `exact_match`
        unless it matches a gold alias.
    With `categories`, for each C in HighlyKnown, MaybeKnown, WeaklyKnown, Unknown, Known (the first
    three together), always in that order and always present:
        exact_match_C, count_C, answered_C, exact_match_answered_C: as above, over the examples of
        category C. A category absent from the batch has count_C 0 and the three scores `None`.
    With `return_per_example=True`: per_example_correct, per_example_abstained (`list` of `bool`).

Examples:

    Any alias counts, after normalisation:

    >>> slick_em = evaluate.load("evaluation/slick_exact_match")  # from the slick-hf repo root
    >>> results = slick_em.compute(
    ...     predictions=["The  U.S.A.", "paris", "Lyon"],
    ...     references=[["USA", "United States"], ["Paris"], ["Marseille"]],
    ... )
    >>> print(results["exact_match"], results["count"], results["answered"])
    0.6666666666666666 3 1.0

    Per SliCK category (names or ClassLabel ints), with an abstention:

    >>> results = slick_em.compute(
    ...     predictions=["Paris", "Rome", "I don't know.", "Oslo"],
    ...     references=[["Paris"], ["Milan"], ["Bern"], ["Oslo"]],
    ...     categories=["HighlyKnown", "MaybeKnown", "Unknown", 0],
    ... )
    >>> print(results["exact_match_HighlyKnown"], results["count_HighlyKnown"])
    1.0 2
    >>> print(results["exact_match_Known"], results["count_Known"])
    0.6666666666666666 3
    >>> print(results["exact_match_WeaklyKnown"], results["count_WeaklyKnown"])
    None 0
    >>> print(results["answered"], results["exact_match_answered"])
    0.75 0.6666666666666666
    >>> print(results["answered_Unknown"], results["exact_match_answered_Unknown"])
    0.0 None
"""

CATEGORIES = ("HighlyKnown", "MaybeKnown", "WeaklyKnown", "Unknown")
KNOWN = CATEGORIES[:3]
# Groups reported per category, in this order; "Known" is the union of the first three categories.
GROUPS = (*CATEGORIES, "Known")
DEFAULT_ABSTENTION_PATTERNS = ("I don't know",)
_ABSTENTION_MATCH_MODES = ("exact", "prefix")


def _category_index(value, position):
    """The index in CATEGORIES of a category given by name or as a ClassLabel int."""
    if isinstance(value, str):
        try:
            return CATEGORIES.index(value)
        except ValueError:
            pass
    elif not isinstance(value, bool):
        try:
            index = value.__index__()  # int, numpy integer
        except (AttributeError, TypeError):
            index = None
        if index is not None and 0 <= index < len(CATEGORIES):
            return index
    valid = ", ".join(f"{i}/{name!r}" for i, name in enumerate(CATEGORIES))
    raise ValueError(
        f"Unknown SliCK category {value!r} at position {position}; valid categories (ClassLabel int or "
        f"name) are: {valid}."
    )


def _abstention_patterns(patterns):
    """Normalised, de-duplicated abstention patterns; a single string is one pattern."""
    if patterns is None:
        return ()
    if isinstance(patterns, str):
        patterns = (patterns,)
    normalised = []
    for pattern in patterns:
        if not isinstance(pattern, str):
            raise ValueError(f"abstention_patterns must be strings, got {pattern!r}.")
        norm = normalize_answer(pattern)
        if not norm:
            raise ValueError(
                f"Abstention pattern {pattern!r} is empty after normalisation and would match every "
                f"empty prediction; remove it."
            )
        if norm not in normalised:
            normalised.append(norm)
    return tuple(normalised)


def _as_aliases(reference):
    """A plain-string reference is a single alias (datasets would otherwise split it into characters)."""
    return [reference] if isinstance(reference, str) else reference


def _checked(predictions, references):
    """The batch with each reference as a list of aliases; ValueError (one line, naming the position)
    for a missing list, a length mismatch, or a prediction or alias that is not a string."""
    for name, value in (("predictions", predictions), ("references", references)):
        if value is None or isinstance(value, str):
            raise ValueError(f"{name} must be a list (one entry per example), got {type(value).__name__}.")
    references = [_as_aliases(r) for r in references]
    if len(predictions) != len(references):
        raise ValueError(f"Got {len(predictions)} predictions but {len(references)} references.")
    for i, (prediction, aliases) in enumerate(zip(predictions, references, strict=True)):
        if not isinstance(prediction, str):
            raise ValueError(f"prediction at position {i} must be a string, got {prediction!r}.")
        if not isinstance(aliases, list | tuple):
            raise ValueError(f"reference at position {i} must be a list of alias strings, got {aliases!r}.")
        for alias in aliases:
            if not isinstance(alias, str):
                raise ValueError(f"alias {alias!r} of the reference at position {i} is not a string; remove it.")
            if not normalize_answer(alias):
                raise ValueError(
                    f"alias {alias!r} of the reference at position {i} normalises to nothing (it would match an "
                    "empty prediction); remove it."
                )
    return list(predictions), references


def _share(numerator, denominator):
    return numerator / denominator if denominator else None


def _scores(correct, abstained, indices=None):
    """exact_match, count, answered, exact_match_answered over `indices` (all examples when None)."""
    if indices is None:
        indices = range(len(correct))
    count = n_correct = n_answered = n_correct_answered = 0
    for i in indices:
        count += 1
        n_correct += correct[i]
        if not abstained[i]:
            n_answered += 1
            n_correct_answered += correct[i]
    return {
        "exact_match": _share(n_correct, count),
        "count": count,
        "answered": _share(n_answered, count),
        "exact_match_answered": _share(n_correct_answered, n_answered),
    }


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class SlickExactMatch(evaluate.Metric):
    """Exact match with any gold alias, overall and per SliCK knowledge category."""

    def _info(self):
        return evaluate.MetricInfo(
            module_type="metric",
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": datasets.Value("string"),
                    "references": datasets.Sequence(datasets.Value("string")),
                }
            ),
            homepage="https://arxiv.org/abs/2405.05904",
            reference_urls=[
                "https://arxiv.org/abs/2405.05904",
                "https://rajpurkar.github.io/SQuAD-explorer/",
            ],
        )

    # `datasets` encodes a plain string given for a Sequence feature as a list of characters (only the
    # first example is type-checked), which would silently turn "Paris" into the aliases P, a, r, i, s.
    # Wrap plain strings as one alias before anything is written.
    def add_batch(self, *, predictions=None, references=None, **kwargs):
        """Add a batch of predictions and references (lists of aliases; a plain string is one alias)."""
        predictions, references = _checked(predictions, references)
        return super().add_batch(predictions=predictions, references=references, **kwargs)

    def add(self, *, prediction=None, reference=None, **kwargs):
        """Add one prediction and its reference (a list of aliases; a plain string is one alias)."""
        [prediction], [reference] = _checked([prediction], [reference])
        return super().add(prediction=prediction, reference=reference, **kwargs)

    def _compute(
        self,
        predictions,
        references,
        categories=None,
        abstention_patterns=DEFAULT_ABSTENTION_PATTERNS,
        abstention_match="prefix",
        return_per_example=False,
    ):
        if abstention_match not in _ABSTENTION_MATCH_MODES:
            raise ValueError(f"abstention_match must be one of {_ABSTENTION_MATCH_MODES}, got {abstention_match!r}.")
        patterns = _abstention_patterns(abstention_patterns)
        prefixes = tuple(p + " " for p in patterns) if abstention_match == "prefix" else ()

        n = len(predictions)
        if len(references) != n:  # evaluate already checks this; kept for direct calls
            raise ValueError(f"Got {n} predictions but {len(references)} references.")
        if categories is not None:
            if isinstance(categories, str):
                raise ValueError("categories must be a list with one SliCK category per example, not a string.")
            categories = list(categories)
            if len(categories) != n:
                raise ValueError(
                    f"categories has {len(categories)} entries but there are {n} predictions; "
                    f"give exactly one SliCK category per example."
                )
            category_ids = [_category_index(c, i) for i, c in enumerate(categories)]

        correct = []
        abstained = []
        for prediction, aliases in zip(predictions, references, strict=True):
            correct.append(exact_match(prediction, aliases))
            if patterns:
                norm = normalize_answer(prediction)
                abstained.append(norm in patterns or norm.startswith(prefixes))
            else:
                abstained.append(False)

        results = _scores(correct, abstained)
        if categories is not None:
            members = {group: [] for group in GROUPS}
            for i, cid in enumerate(category_ids):
                members[CATEGORIES[cid]].append(i)
            members["Known"] = sorted(i for c in KNOWN for i in members[c])
            for group in GROUPS:
                for key, value in _scores(correct, abstained, members[group]).items():
                    results[f"{key}_{group}"] = value
        if return_per_example:
            results["per_example_correct"] = correct
            results["per_example_abstained"] = abstained
        return results
