"""slick_hf.prompts: exemplar sets drawn once per relation from dev, and the prompt format."""

import pytest

from slick_hf.annotate.rows import exemplar_pools_by_relation
from slick_hf.core.prompts import draw_exemplar_pools, exemplars_for, render_prompt
from slick_hf.core.slick import SlickConfig
from slick_hf.errors import SlickError


def _rows(relation: str, n: int, start: int = 0) -> list[dict]:
    return [
        {
            "id": f"{relation}/{i}",
            "relation": relation,
            "question": f"{relation} question {i}?",
            "answers": [f"answer {i}", f"alias {i}"],
        }
        for i in range(start, start + n)
    ]


DEV_A = _rows("A", 30)
DEV_B = _rows("B", 25)


def _ids(pools):
    return [[e["id"] for e in pool] for pool in pools]


def test_pools_shape_and_content():
    pools = draw_exemplar_pools(DEV_A + DEV_B, "A", num_prompts=10, num_shots=4, seed=0)
    assert len(pools) == 10
    by_id = {r["id"]: r for r in DEV_A}
    for pool in pools:
        assert len(pool) == 5  # num_shots + one spare for a target that is itself in dev
        assert len({e["id"] for e in pool}) == 5
        for e in pool:
            assert set(e) == {"id", "question", "answer"}
            row = by_id[e["id"]]  # KeyError if an exemplar came from relation B
            assert e["question"] == row["question"]
            assert e["answer"] == row["answers"][0]
    # ten random 5-sets out of 30 rows: they are not all the same set
    assert len({frozenset(ids) for ids in _ids(pools)}) > 1


def test_pools_deterministic_per_seed():
    first = draw_exemplar_pools(DEV_A, "A", 10, 4, seed=0)
    again = draw_exemplar_pools(list(DEV_A), "A", 10, 4, seed=0)
    other = draw_exemplar_pools(DEV_A, "A", 10, 4, seed=1)
    assert first == again
    assert _ids(first) != _ids(other)


def test_pools_of_a_relation_do_not_depend_on_other_relations():
    alone = draw_exemplar_pools(DEV_A, "A", 10, 4, seed=3)
    mixed = draw_exemplar_pools(DEV_B[:10] + DEV_A + DEV_B[10:], "A", 10, 4, seed=3)
    assert alone == mixed
    # and relations with the same rows shape still get different draws (seeded by relation)
    renamed = [dict(r, relation="C") for r in DEV_A]
    assert _ids(draw_exemplar_pools(renamed, "C", 10, 4, seed=3)) != _ids(alone)


def test_exemplar_pools_by_relation_matches_draw(geo_dev):
    cfg = SlickConfig(num_prompts=10, num_shots=4, seed=5)
    pools = exemplar_pools_by_relation(geo_dev, ["continent", "capital", "capital"], cfg)
    assert sorted(pools) == ["capital", "continent"]
    rows = geo_dev.to_list()
    for rel in ("capital", "continent"):
        assert pools[rel] == draw_exemplar_pools(rows, rel, 10, 4, seed=5)


def test_exemplars_never_contain_the_target_synthetic():
    num_shots = 4
    pools = draw_exemplar_pools(DEV_A, "A", 10, num_shots, seed=0)
    for row in DEV_A:
        for pool in pools:
            shots = exemplars_for(pool, row["id"], num_shots)
            assert len(shots) == num_shots
            assert row["id"] not in {e["id"] for e in shots}
            assert all(e["question"] != row["question"] for e in shots)
            # dropping the target keeps the order of the remaining exemplars
            assert shots == [e for e in pool if e["id"] != row["id"]][:num_shots]


def test_exemplars_never_contain_the_target_geo(geo_dev):
    cfg = SlickConfig(num_prompts=10, num_shots=4)
    pools = exemplar_pools_by_relation(geo_dev, ["capital"], cfg)["capital"]
    capital_dev = [r for r in geo_dev.to_list() if r["relation"] == "capital"]
    for row in capital_dev:
        for pool in pools:
            shots = exemplars_for(pool, row["id"], cfg.num_shots)
            assert len(shots) == cfg.num_shots
            assert row["id"] not in {e["id"] for e in shots}


def test_exemplars_for_a_question_outside_dev_are_the_first_shots():
    pool = draw_exemplar_pools(DEV_A, "A", 1, 4, seed=0)[0]
    assert exemplars_for(pool, "test/123", 4) == pool[:4]


def test_too_small_dev_is_an_error():
    with pytest.raises(SlickError, match="relation A has 4 dev examples; 5 are needed"):
        draw_exemplar_pools(DEV_A[:4] + DEV_B, "A", 10, 4, seed=0)
    with pytest.raises(SlickError, match="relation Z has 0 dev examples"):
        draw_exemplar_pools(DEV_A, "Z", 10, 4, seed=0)
    # exactly num_shots + 1 rows is enough
    assert len(draw_exemplar_pools(DEV_A[:5], "A", 10, 4, seed=0)) == 10


def test_geo_dev_limited_to_two_per_relation_is_too_small(geo_small):
    with pytest.raises(SlickError, match="relation capital has 2 dev examples; 5 are needed"):
        exemplar_pools_by_relation(geo_small["dev"], ["capital"], SlickConfig())


def test_rows_without_answers_are_not_exemplars():
    rows = DEV_A[:4] + [dict(r, answers=[]) for r in DEV_A[4:10]]
    with pytest.raises(SlickError, match="has 4 dev examples"):
        draw_exemplar_pools(rows, "A", 2, 4, seed=0)


def test_render_prompt_exact_format():
    shots = [{"id": str(i), "question": f"Q{i}?", "answer": f"a{i}"} for i in range(4)]
    prompt = render_prompt(shots, "What is the capital of France?")
    assert prompt == (
        "Q: Q0?\nA: a0\n\nQ: Q1?\nA: a1\n\nQ: Q2?\nA: a2\n\nQ: Q3?\nA: a3\n\nQ: What is the capital of France?\nA:"
    )
    assert render_prompt([], "x?") == "Q: x?\nA:"


def test_render_prompt_from_drawn_pool_uses_canonical_answer():
    pool = draw_exemplar_pools(DEV_A, "A", 1, 4, seed=0)[0]
    prompt = render_prompt(exemplars_for(pool, "target", 4), "target?")
    blocks = prompt.split("\n\n")
    assert len(blocks) == 5
    for block, e in zip(blocks[:4], pool[:4], strict=True):
        assert block == f"Q: {e['question']}\nA: {e['answer']}"
        assert e["answer"].startswith("answer ")
    assert blocks[-1] == "Q: target?\nA:"
