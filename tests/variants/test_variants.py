"""Tests of slick_hf.variants: D, D_Known, D_IDK, single-category and natural fine-tuning sets."""

import json
import math
import random
import re
import shutil
from collections import Counter
from fractions import Fraction

import datasets
import pytest
from datasets import Dataset, DatasetDict, Features, Sequence, Value

from slick_hf.annotate.folder import load_annotated
from slick_hf.cli import variants as variants_cli
from slick_hf.core.schema import CATEGORY_LABEL
from slick_hf.core.slick import CATEGORIES
from slick_hf.errors import SlickError
from slick_hf.hub import write_dataset_repo
from slick_hf.variants import (
    RATIO_SWEEP,
    RATIO_VARIANTS,
    VARIANTS,
    VariantSpec,
    build_variant,
    default_size,
    pool_counts,
    relation_quotas,
    variant_name,
    variant_summary,
)
from slick_hf.variants.pool import index_pool, is_feasible, relation_weights, variant_max_size

FEATURES = Features(
    {
        "id": Value("string"),
        "relation": Value("string"),
        "question": Value("string"),
        "answers": Sequence(Value("string")),
        "slick_category": CATEGORY_LABEL,
    }
)
# relation -> (HighlyKnown, MaybeKnown, WeaklyKnown, Unknown)
COUNTS = {"P17": (12, 8, 5, 30), "P19": (20, 15, 10, 18), "P36": (6, 9, 4, 40)}


def make_pool(counts=COUNTS, scale: int = 1) -> Dataset:
    rows = {k: [] for k in FEATURES}
    for rel, cs in counts.items():
        for ci, n in enumerate(cs):
            for k in range(n * scale):
                rows["id"].append(f"{rel}-{CATEGORIES[ci]}-{k:04d}")
                rows["relation"].append(rel)
                rows["question"].append(f"Question {k} about {rel} ({CATEGORIES[ci]})?")
                rows["answers"].append([f"answer {rel} {ci} {k}", f"alias {k}"])
                rows["slick_category"].append(ci)
    return Dataset.from_dict(rows, features=FEATURES)


@pytest.fixture(scope="module")
def pool() -> Dataset:
    return make_pool()


@pytest.fixture(scope="module")
def common_size(pool) -> int:
    """A |D| at which every variant, single-category ones included, is feasible."""
    return default_size(pool, variants=VARIANTS)


def with_string_categories(pool: Dataset) -> Dataset:
    names = [CATEGORIES[c] for c in pool["slick_category"]]
    return pool.remove_columns("slick_category").add_column("slick_category", names)


def per_relation(ds: Dataset) -> dict:
    return dict(Counter(ds["relation"][:]))


def rows(ds: Dataset) -> list[dict]:
    return [dict(r) for r in ds]


# ----------------------------------------------------------------------------- sizes and shares


def test_sizes_and_relation_quotas_are_shared(pool, common_size):
    quotas = relation_quotas(pool, common_size)
    assert sum(quotas.values()) == common_size
    for variant in VARIANTS:
        for x in RATIO_SWEEP if variant in RATIO_VARIANTS else (0.5,):
            ds = build_variant(pool, VariantSpec(variant, x, size=common_size))
            if variant == "known":
                unk = build_variant(pool, VariantSpec("ratio", x, size=common_size))
                assert len(ds) == common_size - variant_summary(unk)["categories"]["Unknown"]
                continue
            assert len(ds) == common_size, (variant, x)
            assert per_relation(ds) == {r: n for r, n in quotas.items() if n}, (variant, x)


def test_pool_shares_are_proportional(pool):
    totals = {r: sum(c) for r, c in COUNTS.items()}
    quotas = relation_quotas(pool, 100)
    for r, n in quotas.items():
        assert abs(n - 100 * totals[r] / sum(totals.values())) < 1


def test_largest_remainder_ties_break_by_relation_name():
    pool = make_pool({"B": (1, 1, 1, 1), "A": (1, 1, 1, 1), "C": (1, 1, 1, 1)})
    assert relation_quotas(pool, 4) == {"A": 2, "B": 1, "C": 1}
    assert relation_quotas(pool, 5) == {"A": 2, "B": 2, "C": 1}


@pytest.mark.parametrize("x", [0.0, 0.25, 0.5, 0.75, 1.0, 0.3])
def test_ratio_unknown_counts(pool, x):
    size = default_size(pool)
    ds = build_variant(pool, VariantSpec("ratio", x, size=size))
    summary = variant_summary(ds)
    assert summary["size"] == size
    assert summary["categories"]["Unknown"] == math.floor(x * size + 0.5)
    quotas = relation_quotas(pool, size)
    for r, n in quotas.items():
        unk = sum(1 for rel, c in zip(ds["relation"], ds["category"], strict=True) if rel == r and c == "Unknown")
        assert unk in (math.floor(x * n), math.ceil(x * n))
    assert not any(ds["is_idk"])


def test_default_size_makes_every_ratio_feasible_and_is_largest(pool):
    size = default_size(pool)
    counts = pool_counts(pool)
    for r, n in relation_quotas(pool, size).items():
        known = sum(counts[r][c] for c in CATEGORIES[:3])
        assert n <= min(known, counts[r]["Unknown"])
    for x in RATIO_SWEEP:
        for variant in ("ratio", "known", "idk"):
            spec = VariantSpec(variant, x)  # size=None -> default_size
            ds = build_variant(pool, spec)
            assert len(ds) == (size if variant != "known" else size - math.floor(x * size + 0.5))
    failures = 0
    for x in (0.0, 1.0):
        try:
            build_variant(pool, VariantSpec("ratio", x, size=size + 1))
        except SlickError:
            failures += 1
    assert failures >= 1


def test_paper_shares(pool):
    mins = {r: min(c) for r, c in COUNTS.items()}
    size = default_size(pool, shares="paper")
    assert size == sum(mins.values())
    assert relation_quotas(pool, size, shares="paper") == mins
    for variant in VARIANTS:
        ds = build_variant(pool, VariantSpec(variant, 0.5, shares="paper"))
        assert len(ds) == (size if variant != "known" else size - math.floor(0.5 * size + 0.5))
        if variant != "known":
            assert per_relation(ds) == mins


def test_paper_shares_drop_relations_lacking_a_category_and_collapse_clearly(caplog):
    pool = make_pool({"P1": (5, 5, 5, 5), "P2": (0, 5, 5, 5)})
    assert default_size(pool, shares="paper") == 5
    with caplog.at_level("WARNING"):
        ds = build_variant(pool, VariantSpec("ratio", shares="paper"))
    assert per_relation(ds) == {"P1": 5}
    assert "P2" in caplog.text
    empty = make_pool({"P1": (0, 5, 5, 5), "P2": (5, 0, 5, 5)})
    with pytest.raises(SlickError, match="shares='pool'") as err:
        default_size(empty, shares="paper")
    assert "P1: HK 0, MK 5, WK 5, Unk 5" in str(err.value)


def test_pool_shares_collapse_names_the_blocking_relation():
    pool = make_pool({"P1": (5, 5, 5, 5), "P2": (5, 5, 5, 0)})
    with pytest.raises(SlickError, match="P2") as err:
        default_size(pool)
    assert "\n" not in str(err.value)
    # an explicit size still works for variants that need no Unknown in P2
    assert len(build_variant(pool, VariantSpec("ratio", 0.0, size=10))) == 10


# ----------------------------------------------------------------------------- derived variants


def test_known_is_exactly_d_known_rows(pool):
    for x in (0.0, 0.5, 0.75):
        d = build_variant(pool, VariantSpec("ratio", x, seed=3))
        known = build_variant(pool, VariantSpec("known", x, seed=3))
        assert rows(known) == [r for r in rows(d) if r["category"] != "Unknown"]
        assert len(known) == len(d) - variant_summary(d)["categories"]["Unknown"]


def test_idk_is_d_with_unknown_answers_replaced(pool):
    d = build_variant(pool, VariantSpec("ratio", 0.5, seed=1))
    idk = build_variant(pool, VariantSpec("idk", 0.5, seed=1, idk_answer="No idea"))
    assert len(idk) == len(d)
    for a, b in zip(rows(d), rows(idk), strict=True):
        unknown = a["category"] == "Unknown"
        assert b == {**a, "completion": "No idea" if unknown else a["completion"], "is_idk": unknown}
    assert variant_summary(idk)["idk"] == variant_summary(d)["categories"]["Unknown"] > 0


def test_ratios_share_rows(pool):
    size = default_size(pool)
    by_x = {x: build_variant(pool, VariantSpec("ratio", x, size=size)) for x in RATIO_SWEEP}

    def ids(ds, unknown):
        return {i for i, c in zip(ds["id"], ds["category"], strict=True) if (c == "Unknown") == unknown}

    for lo, hi in zip(RATIO_SWEEP, RATIO_SWEEP[1:], strict=False):
        assert ids(by_x[lo], True) <= ids(by_x[hi], True)
        assert ids(by_x[hi], False) <= ids(by_x[lo], False)
    unknown_only = build_variant(pool, VariantSpec("Unknown", size=size))
    assert set(unknown_only["id"]) == ids(by_x[1.0], True)


@pytest.mark.parametrize("category", CATEGORIES)
def test_single_category_purity(pool, common_size, category):
    ds = build_variant(pool, VariantSpec(category, size=common_size))
    assert set(ds["category"]) == {category}
    assert len(set(ds["id"])) == len(ds) == common_size


def test_natural_mix_is_close_to_pool():
    big = make_pool(scale=10)
    ds = build_variant(big, VariantSpec("natural", size=600))
    assert len(ds) == 600
    pool_mix = Counter(CATEGORIES[c] for c in big["slick_category"])
    mix = variant_summary(ds)["categories"]
    for c in CATEGORIES:
        assert abs(mix[c] / 600 - pool_mix[c] / len(big)) < 0.06, c


def test_rows_are_interleaved(pool, common_size):
    ds = build_variant(pool, VariantSpec("ratio", 0.5, size=common_size))
    cats = ds["category"][:]
    assert cats != sorted(cats)
    rels = ds["relation"][:]
    assert rels != sorted(rels)


# ----------------------------------------------------------------------------- determinism


def test_deterministic_and_independent_of_row_order(pool):
    spec = VariantSpec("ratio", 0.25, seed=7)
    a = build_variant(pool, spec)
    assert rows(a) == rows(build_variant(pool, spec))
    shuffled = pool.shuffle(seed=123).flatten_indices()
    assert shuffled["id"][:] != pool["id"][:]
    assert rows(build_variant(shuffled, spec)) == rows(a)
    as_strings = with_string_categories(pool)
    assert as_strings["slick_category"][0] == "HighlyKnown"
    assert rows(build_variant(as_strings, spec)) == rows(a)


def test_different_seeds_differ(pool):
    a = build_variant(pool, VariantSpec("ratio", 0.5, seed=0))
    b = build_variant(pool, VariantSpec("ratio", 0.5, seed=1))
    assert set(a["id"]) != set(b["id"])
    assert per_relation(a) == per_relation(b)


# ----------------------------------------------------------------------------- format


def test_prompt_completion_format(pool):
    ds = build_variant(pool, VariantSpec("ratio", 0.5))
    assert ds.column_names == ["prompt", "completion", "id", "relation", "category", "answers", "is_idk"]
    assert ds.features["answers"] == Sequence(Value("string"))
    by_id = {r["id"]: r for r in pool}
    for r in ds:
        src = by_id[r["id"]]
        assert r["prompt"] == f"Answer the following question. {src['question']}\n"
        assert r["completion"] == src["answers"][0]
        assert r["answers"] == src["answers"]
        assert r["relation"] == src["relation"]
        assert r["category"] == CATEGORIES[src["slick_category"]]


def test_custom_templates(pool):
    spec = VariantSpec("idk", 0.5, prompt_template="Q: {question}\nA:", completion_template=" {answer}\n")
    ds = build_variant(pool, spec)
    for r in ds:
        assert r["prompt"].startswith("Q: ") and r["prompt"].endswith("\nA:")
        assert r["completion"] == (" I don't know\n" if r["is_idk"] else f" {r['answers'][0]}\n")


def test_variant_name_and_summary(pool):
    assert variant_name("ratio", 0.5) == "D_unk0.50"
    assert variant_name(VariantSpec("known", 0.25)) == "D_Known_unk0.25"
    assert variant_name("idk", 0.5) == "D_IDK_unk0.50"
    assert variant_name("HighlyKnown", 0.5) == "D_HighlyKnown"
    assert variant_name(VariantSpec("natural")) == "D_Natural"
    assert VariantSpec("ratio", 1.0).name == "D_unk1.00"
    s = variant_summary(build_variant(pool, VariantSpec("ratio", 0.5, size=20)))
    assert s["size"] == 20 and sum(s["categories"].values()) == 20 and sum(s["relations"].values()) == 20
    assert set(s["categories"]) == set(CATEGORIES)
    assert s["known"] + s["categories"]["Unknown"] == 20
    json.dumps(s)


# ----------------------------------------------------------------------------- errors


def largest_from(message: str) -> int:
    m = re.search(r"Largest \|D\| that works for this variant: (\d+)", message)
    assert m, message
    return int(m.group(1))


@pytest.mark.parametrize(("variant", "ratio"), [("HighlyKnown", 0.5), ("ratio", 0.5), ("ratio", 0.9), ("known", 0.0)])
def test_impossible_request_reports_counts_and_largest_size(pool, variant, ratio):
    spec = VariantSpec(variant, ratio, size=150)
    with pytest.raises(SlickError) as err:
        build_variant(pool, spec)
    msg = str(err.value)
    assert "\n" not in msg
    assert variant in msg and "|D| = 150" in msg
    for rel, (hk, mk, wk, unk) in COUNTS.items():
        assert f"{rel}: HK {hk}, MK {mk}, WK {wk}, Unk {unk}" in msg
    largest = largest_from(msg)
    assert len(build_variant(pool, VariantSpec(variant, ratio, size=largest))) > 0
    with pytest.raises(SlickError):
        build_variant(pool, VariantSpec(variant, ratio, size=largest + 1))


def test_largest_size_matches_brute_force():
    rng = random.Random(5)
    for _ in range(6):
        counts = {f"P{i}": tuple(rng.randint(0, 12) for _ in range(4)) for i in range(rng.randint(1, 3))}
        if not any(sum(c) for c in counts.values()):
            continue
        ix = index_pool(make_pool(counts))
        weights = relation_weights(ix, "pool")
        for variant in ("ratio", "WeaklyKnown", "natural"):
            for x in (0.0, 0.3, 0.5, 1.0):
                ratio = Fraction(x)
                brute = max(
                    (
                        n
                        for n in range(1, sum(map(sum, counts.values())) + 2)
                        if is_feasible(ix, weights, variant, ratio, n)
                    ),
                    default=0,
                )
                assert variant_max_size(ix, weights, variant, ratio) == brute, (counts, variant, x)


def test_defaulted_size_infeasible_for_single_category_suggests_sizes(pool, common_size):
    if default_size(pool) == common_size:
        pytest.skip("pool too even")
    with pytest.raises(SlickError, match="default size") as err:
        build_variant(pool, VariantSpec("WeaklyKnown"))
    assert f"= {common_size}" in str(err.value)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"unknown_ratio": -0.1}, r"\[0, 1\]"),
        ({"unknown_ratio": 1.5}, r"\[0, 1\]"),
        ({"unknown_ratio": float("nan")}, r"\[0, 1\]"),
        ({"variant": "D_bogus"}, "ratio, known, idk, HighlyKnown"),
        ({"size": 0}, ">= 1"),
        ({"size": -3}, ">= 1"),
        ({"size": 2.5}, "integer"),
        ({"shares": "equal"}, "pool, paper"),
        ({"prompt_template": "{query}"}, "unknown field"),
        ({"completion_template": "{answer"}, "format string"),
        ({"idk_answer": " "}, "idk_answer"),
    ],
)
def test_invalid_spec(kwargs, match):
    with pytest.raises(SlickError, match=match):
        VariantSpec(**kwargs)


def test_invalid_pools(pool):
    spec = VariantSpec("ratio", 0.5, size=4)
    with pytest.raises(SlickError, match="empty"):
        build_variant(pool.select([]), spec)
    with pytest.raises(SlickError, match="slick_category"):
        build_variant(pool.remove_columns("slick_category"), spec)
    with pytest.raises(SlickError, match="relation"):
        build_variant(pool.remove_columns("relation"), spec)
    bad = with_string_categories(pool).map(
        lambda r, i: {"slick_category": "Known?" if i == 0 else r["slick_category"]}, with_indices=True
    )
    with pytest.raises(SlickError, match="Known\\?"):
        build_variant(bad, spec)
    dup = datasets.concatenate_datasets([pool, pool.select([0])])
    with pytest.raises(SlickError, match="duplicate"):
        build_variant(dup, spec)
    with pytest.raises(SlickError, match="VariantSpec"):
        build_variant(pool, {"variant": "ratio"})
    with pytest.raises(SlickError, match="size"):
        relation_quotas(pool, 0)
    with pytest.raises(SlickError, match="unknown variant"):
        default_size(pool, variants=["bogus"])


# ----------------------------------------------------------------------------- loading


@pytest.fixture
def hub_folder(tmp_path, pool, monkeypatch):
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "annotated"
    unannotated = pool.remove_columns("slick_category")
    write_dataset_repo(folder, "org--ModelA", DatasetDict(train=pool, test=pool.select(range(5))), {}, lambda m: "x")
    write_dataset_repo(folder, "org--ModelB", DatasetDict(train=unannotated), {}, lambda m: "x")
    return folder


def test_load_annotated_round_trip(hub_folder, pool):
    ds = load_annotated(str(hub_folder), "org--ModelA", "train")
    assert ds.features["slick_category"] == CATEGORY_LABEL
    assert rows(ds) == rows(pool)
    spec = VariantSpec("idk", 0.5, seed=2)
    assert rows(build_variant(ds, spec)) == rows(build_variant(pool, spec))


def test_load_annotated_rereads_a_folder_rewritten_at_the_same_path(tmp_path, pool):
    folder = tmp_path / "annotated"
    for n in (5, 9):  # annotated again from scratch, with other limits
        shutil.rmtree(folder, ignore_errors=True)
        write_dataset_repo(folder, "org--ModelA", DatasetDict(train=pool, test=pool.select(range(n))), {}, str)
        assert len(load_annotated(str(folder), "org--ModelA", None)["test"]) == n


def test_load_annotated_errors(hub_folder, tmp_path):
    src = str(hub_folder)
    with pytest.raises(SlickError, match="no config 'org--Nope'; available configs: org--ModelA, org--ModelB"):
        load_annotated(src, "org--Nope", "train")
    with pytest.raises(SlickError, match="several configs.*org--ModelA, org--ModelB"):
        load_annotated(src, None, "train")
    with pytest.raises(SlickError, match="no split 'dev'; available splits: .*test.*train|train.*test"):
        load_annotated(src, "org--ModelA", "dev")
    with pytest.raises(SlickError, match="missing column.*slick_category"):
        load_annotated(src, "org--ModelB", "train")
    with pytest.raises(SlickError, match="not found"):
        load_annotated(str(tmp_path / "no-such-folder"), None, "train")


def test_cli_command(hub_folder, tmp_path, capsys):
    out = tmp_path / "variants"
    variants_cli.main(
        [
            str(hub_folder),
            "--dataset-config",
            "org--ModelA",
            "--variant",
            "ratio,idk,natural",
            "--unknown-ratio",
            "0,0.5",
            "--output-dir",
            str(out),
        ]
    )
    names = sorted(p.name for p in out.iterdir())
    assert names == ["D_IDK_unk0.00", "D_IDK_unk0.50", "D_Natural", "D_unk0.00", "D_unk0.50"]
    summary = json.loads((out / "D_unk0.50" / "summary.json").read_text())
    ds = Dataset.from_parquet(str(out / "D_unk0.50" / "train.parquet"))
    assert summary["size"] == len(ds) == summary["spec"]["size"]
    assert "D_unk0.50" in capsys.readouterr().out


def test_cli_all_uses_a_size_every_variant_supports(hub_folder, pool, tmp_path):
    out = tmp_path / "all"
    variants_cli.main(
        [str(hub_folder), "--dataset-config", "org--ModelA", "--variant", "all", "--output-dir", str(out)]
    )
    assert len(list(out.iterdir())) == 3 * len(RATIO_SWEEP) + 5
    sizes = {json.loads(p.read_text())["spec"]["size"] for p in out.glob("*/summary.json")}
    assert sizes == {default_size(pool, variants=VARIANTS)}
    with pytest.raises(SlickError, match="valid"):
        variants_cli.main([str(hub_folder), "--dataset-config", "org--ModelA", "--variant", "Known"])
