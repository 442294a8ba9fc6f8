"""slick_hf.data and slick_hf.geo: schema, filters, relation registry, download, built-in geo set."""

from __future__ import annotations

import functools
import http.server
import json
import os
import threading
import zipfile
from pathlib import Path

import datasets
import pytest

from slick_hf.core.schema import QUESTION_FEATURES as FEATURES
from slick_hf.data import entityquestions, geo
from slick_hf.data.entityquestions import IN_DISTRIBUTION, OUT_OF_DISTRIBUTION, extract_subject
from slick_hf.data.load import LoadReport, load_questions, relation_sets, resolve_relations, templates
from slick_hf.errors import SlickError
from slick_hf.testing.network import free_port

COLUMNS = ["id", "relation", "subject", "question", "answers", "split"]
SHARED_EQ = Path(
    os.environ.get("SLICK_EQ_DIR") or Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "entityquestions"
)

P17 = "Which country is {} located in?"
P19 = "Where was {} born?"

# A tiny EntityQuestions tree. Train P17: 0 kept, 1 multi-answer, 2 subject asked in test,
# 3 no answer, 4 answer asked in test, 5 kept.
FIXTURE = {
    "train": {
        "P17": [
            (P17.format("Alpha"), ["France"]),
            (P17.format("Beta"), ["Germany", "Deutschland"]),
            (P17.format("Gamma"), ["Italy"]),
            (P17.format("Delta"), []),
            (P17.format("Zeta"), ["Epsilon"]),
            (P17.format("Eta"), ["Spain"]),
        ],
        "P19": [(P19.format("Ann Lee"), ["Oslo"]), (P19.format("Bo Park"), ["Seoul"])],
    },
    "dev": {
        "P17": [(P17.format("Theta"), ["Peru"]), (P17.format("Iota"), ["Chile"])],
        "P19": [(P19.format("Cy Young"), ["Lima"])],
    },
    "test": {
        "P17": [
            (P17.format("Gamma"), ["Italy"]),
            (P17.format("Epsilon"), ["Spain"]),
            (P17.format("Kappa"), ["Chad", "Tchad"]),
        ],
        "P19": [(P19.format("Di Moss"), ["Rome"])],
    },
}


def write_eq(root: Path, tree=FIXTURE, with_templates: bool = True) -> Path:
    for split, rels in tree.items():
        folder = root / "dataset" / split
        folder.mkdir(parents=True, exist_ok=True)
        for rel, recs in rels.items():
            records = [{"question": q, "answers": a} for q, a in recs]
            (folder / f"{rel}.{split}.json").write_text(json.dumps(records, indent=4))
    if with_templates:
        (root / "relation_query_templates.json").write_text(
            json.dumps({"P17": "Which country is [X] located in?", "P19": "Where was [X] born?"})
        )
    return root


@pytest.fixture
def eq_dir(tmp_path: Path) -> Path:
    return write_eq(tmp_path / "eq")


def by_subject(ds: datasets.Dataset) -> dict[str, dict]:
    return {row["subject"]: row for row in ds}


# ---- relation registry -----------------------------------------------------------------------


def test_relation_sets_and_resolution():
    assert IN_DISTRIBUTION == tuple("P17 P19 P26 P36 P40 P69 P131 P136 P264 P495 P740 P800".split())
    assert OUT_OF_DISTRIBUTION == tuple("P50 P112 P127 P170 P175 P176 P407".split())
    assert relation_sets("entityquestions") == {
        "in_distribution": IN_DISTRIBUTION,
        "out_of_distribution": OUT_OF_DISTRIBUTION,
    }
    assert resolve_relations("entityquestions", None) == IN_DISTRIBUTION
    assert resolve_relations("entityquestions", "id") == IN_DISTRIBUTION
    assert resolve_relations("entityquestions", "ood") == OUT_OF_DISTRIBUTION
    assert resolve_relations("entityquestions", "all") == IN_DISTRIBUTION + OUT_OF_DISTRIBUTION
    assert resolve_relations("entityquestions", "p50, P17,P50") == ("P50", "P17")
    assert resolve_relations("entityquestions", ["P407", "in_distribution"]) == ("P407", *IN_DISTRIBUTION)
    geo_sets = relation_sets("geo")
    assert len(geo_sets["in_distribution"]) >= 3 and len(geo_sets["out_of_distribution"]) >= 2
    assert not set(geo_sets["in_distribution"]) & set(geo_sets["out_of_distribution"])
    assert set(geo_sets["in_distribution"]) | set(geo_sets["out_of_distribution"]) == set(templates("geo"))
    assert resolve_relations("geo", "ood") == geo_sets["out_of_distribution"]


@pytest.mark.parametrize("spec", ["P999", "P17,capital", "", [], ["P17", "nope"]])
def test_unknown_relation_is_an_error(spec):
    with pytest.raises(SlickError) as err:
        resolve_relations("entityquestions", spec)
    if spec not in ("", []):
        assert "P17" in str(err.value) and "ood" in str(err.value)  # names the valid ones


def test_bad_arguments_are_errors(eq_dir):
    with pytest.raises(SlickError, match="Unknown dataset"):
        load_questions("trivia")
    with pytest.raises(SlickError, match="Unknown dataset"):
        relation_sets("trivia")
    with pytest.raises(SlickError, match="Unknown split"):
        load_questions("geo", splits=["train", "validation"])
    with pytest.raises(SlickError, match="No split"):
        load_questions("geo", splits=[])
    for limit in (0, -3):
        with pytest.raises(SlickError, match="limit_per_relation"):
            load_questions("entityquestions", eq_dir, relations="P17", limit_per_relation=limit)
    with pytest.raises(SlickError, match="built in"):
        load_questions("geo", data_dir=eq_dir)
    with pytest.raises(SlickError, match="does not exist"):
        load_questions("entityquestions", eq_dir / "nowhere")
    with pytest.raises(SlickError, match="does not look like EntityQuestions"):
        load_questions("entityquestions", eq_dir / "dataset" / "train")


def test_extract_subject():
    assert extract_subject("Who is [X]'s child?", "Who is Ada Lovelace's child?") == "Ada Lovelace"
    assert extract_subject("Which country is [X] located in?", "Which country is Bad Ems located in?") == "Bad Ems"
    assert extract_subject("Where was [X] born?", "Where did Ada die?") is None
    assert extract_subject("Where was [X] born?", "Where was  born?") is None  # empty subject
    assert templates("entityquestions")["P40"] == "Who is [X]'s child?"
    assert len({r for r in templates("entityquestions") if r in IN_DISTRIBUTION + OUT_OF_DISTRIBUTION}) == 19


# ---- EntityQuestions from a folder -----------------------------------------------------------


def test_eq_schema_ids_and_filters(eq_dir):
    dd, report = load_questions("entityquestions", eq_dir, relations="P17,P19")
    assert list(dd) == ["train", "dev", "test"]
    for split, ds in dd.items():
        assert ds.column_names == COLUMNS
        assert ds.features == FEATURES
        assert set(ds["split"]) == {split}
    train = by_subject(dd["train"])
    assert set(train) == {"Alpha", "Eta", "Ann Lee", "Bo Park"}
    assert train["Alpha"] == {
        "id": "eq/P17/train/0",
        "relation": "P17",
        "subject": "Alpha",
        "question": "Which country is Alpha located in?",
        "answers": ["France"],
        "split": "train",
    }
    assert train["Eta"]["id"] == "eq/P17/train/5"  # index in the original file, before filtering
    assert set(by_subject(dd["test"])) == {"Gamma", "Epsilon", "Di Moss"}  # Kappa: two answers
    assert report.dropped_multi_answer == {
        "train": {"P17": 1, "P19": 0},
        "dev": {"P17": 0, "P19": 0},
        "test": {"P17": 1, "P19": 0},
    }
    assert report.dropped_empty == {"train": {"P17": 1}}
    assert report.dropped_test_overlap == {"P17": 2, "P19": 0}  # Gamma (subject), Zeta (answer Epsilon)
    assert report.kept == {
        "train": {"P17": 2, "P19": 2},
        "dev": {"P17": 2, "P19": 1},
        "test": {"P17": 2, "P19": 1},
    }
    assert report.total_kept == sum(len(ds) for ds in dd.values()) == 10
    assert report.missing == []
    text = report.summary()
    assert "kept 10" in text and "more than one answer: 2" in text and "asked about in test: 2" in text


def test_eq_filters_can_be_switched_off(eq_dir):
    dd, report = load_questions(
        "entityquestions", eq_dir, relations=["P17"], drop_multi_answer=False, drop_test_overlap=False
    )
    train = by_subject(dd["train"])
    assert set(train) == {"Alpha", "Beta", "Gamma", "Zeta", "Eta"}  # Delta has no answer: always dropped
    assert train["Beta"]["answers"] == ["Germany", "Deutschland"]
    assert "Kappa" in by_subject(dd["test"])
    assert report.dropped_multi_answer == {} and report.dropped_test_overlap == {}
    assert report.dropped_empty == {"train": {"P17": 1}}


def test_overlap_filter_reads_test_even_when_not_requested(eq_dir):
    dd, report = load_questions("entityquestions", eq_dir, relations="P17", splits="train")
    assert list(dd) == ["train"]
    assert set(dd["train"]["subject"]) == {"Alpha", "Eta"}
    assert report.dropped_test_overlap == {"P17": 2}
    assert report.kept == {"train": {"P17": 2}}


def test_missing_relation_reported_unless_named(eq_dir):
    dd, report = load_questions("entityquestions", eq_dir)  # default: the 12 in-distribution relations
    assert set(dd["train"]["relation"]) == {"P17", "P19"}
    assert "train/P36" in report.missing and "test/P800" in report.missing
    assert "train/P17" not in report.missing
    assert "missing files" in report.summary()
    with pytest.raises(SlickError, match="P36"):
        load_questions("entityquestions", eq_dir, relations="P17,P36")
    with pytest.raises(SlickError, match="No EntityQuestions file"):  # nothing at all to load
        load_questions("entityquestions", eq_dir, relations="ood")


def test_empty_split_keeps_schema(tmp_path):
    tree = {"train": FIXTURE["train"], "test": FIXTURE["test"]}  # no dev files at all
    root = write_eq(tmp_path / "eq", tree)
    dd, report = load_questions("entityquestions", root, relations="in_distribution")
    assert len(dd["dev"]) == 0
    assert dd["dev"].features == FEATURES and dd["dev"].column_names == COLUMNS
    assert "dev/P17" in report.missing


def test_eq_layouts_and_builtin_templates(tmp_path, eq_dir):
    expected, _ = load_questions("entityquestions", eq_dir, relations="P17,P19")
    # the `dataset` folder itself; a folder holding the unzipped archive's top folder
    for where in (eq_dir / "dataset", eq_dir.parent):
        got, _ = load_questions("entityquestions", where, relations="P17,P19")
        assert {s: ds.to_list() for s, ds in got.items()} == {s: ds.to_list() for s, ds in expected.items()}
    bare = write_eq(tmp_path / "bare", with_templates=False)  # falls back to the built-in table
    got, _ = load_questions("entityquestions", bare, relations="P17,P19")
    assert got["train"].to_list() == expected["train"].to_list()


def test_malformed_files_name_the_file(tmp_path):
    root = write_eq(tmp_path / "eq")
    bad = root / "dataset" / "dev" / "P19.dev.json"
    bad.write_text("[{")
    with pytest.raises(SlickError, match="P19.dev.json"):
        load_questions("entityquestions", root, relations="P17,P19")
    bad.write_text(json.dumps([{"question": "Where was X born?", "answers": "Rome"}]))
    with pytest.raises(SlickError, match=r"P19\.dev\.json, record 0"):
        load_questions("entityquestions", root, relations="P17,P19")
    bad.write_text(json.dumps([{"question": "Who is X?", "answers": ["Rome"]}]))
    with pytest.raises(SlickError, match="does not fit the P19 template"):
        load_questions("entityquestions", root, relations="P17,P19")


def test_limit_per_relation_is_seeded_and_stable():
    full, _ = load_questions("geo", relations="capital,currency", splits="dev")
    a, report = load_questions("geo", relations="capital,currency", splits="dev", limit_per_relation=7)
    b, _ = load_questions("geo", relations="capital,currency", splits="dev", limit_per_relation=7)
    c, _ = load_questions("geo", relations="capital,currency", splits="dev", limit_per_relation=7, seed=1)
    assert a["dev"]["id"] == b["dev"]["id"]
    assert a["dev"]["id"] != c["dev"]["id"]
    assert report.kept == {"dev": {"capital": 7, "currency": 7}}
    assert set(a["dev"]["id"]) < set(full["dev"]["id"])
    order = {id_: i for i, id_ in enumerate(full["dev"]["id"])}
    assert [order[i] for i in a["dev"]["id"]] == sorted(order[i] for i in a["dev"]["id"])  # file order kept
    assert report.dropped_by_limit["dev"]["capital"] == full["dev"]["relation"].count("capital") - 7


# ---- download and cache ----------------------------------------------------------------------


def make_zip(path: Path, tree=FIXTURE) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for split, rels in tree.items():
            for rel, recs in rels.items():
                records = [{"question": q, "answers": a} for q, a in recs]
                zf.writestr(f"dataset/{split}/{rel}.{split}.json", json.dumps(records))
    return path


def test_download_extracts_once_and_caches(tmp_path, monkeypatch):
    served = tmp_path / "served"
    served.mkdir()
    make_zip(served / "dataset.zip")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    cache = tmp_path / "cache"
    monkeypatch.setenv("SLICK_HF_CACHE", str(cache))
    monkeypatch.setenv("SLICK_EQ_URL", f"http://127.0.0.1:{server.server_address[1]}/dataset.zip")
    try:
        first, report = load_questions("entityquestions", relations="P17,P19")
    finally:
        server.shutdown()
        server.server_close()
    assert set(first["train"]["subject"]) == {"Alpha", "Eta", "Ann Lee", "Bo Park"}  # built-in templates
    assert Path(report.source) == cache / "entityquestions" / "dataset"
    assert sorted(p.name for p in cache.iterdir()) == ["entityquestions"]  # no temp leftovers
    # Second load: the server is gone, the cache answers.
    second, _ = load_questions("entityquestions", relations="P17,P19")
    assert {s: ds.to_list() for s, ds in second.items()} == {s: ds.to_list() for s, ds in first.items()}


def test_download_from_file_url(tmp_path):
    archive = make_zip(tmp_path / "dataset.zip")
    folder = entityquestions.download_entityquestions(url=archive.as_uri(), cache=tmp_path / "cache")
    assert (folder / "dataset" / "test" / "P17.test.json").is_file()


def test_unreachable_url_is_a_clean_error(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("SLICK_HF_CACHE", str(cache))
    monkeypatch.setenv("SLICK_EQ_URL", f"http://127.0.0.1:{free_port()}/dataset.zip")
    with pytest.raises(SlickError, match="--data-dir") as err:
        load_questions("entityquestions", relations="P17")
    assert "failed" in str(err.value)
    assert not (cache / "entityquestions").exists()
    assert list(cache.iterdir()) == []  # the temp folder is gone too


def test_not_a_zip_is_not_cached(tmp_path):
    junk = tmp_path / "dataset.zip"
    junk.write_text("<html>moved</html>")
    with pytest.raises(SlickError, match="not a readable zip"):
        entityquestions.download_entityquestions(url=junk.as_uri(), cache=tmp_path / "cache")
    assert not (tmp_path / "cache" / "entityquestions").exists()


# ---- built-in geo ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def geo_all():
    return load_questions("geo", relations="all")


def test_geo_schema_and_sizes(geo_all):
    dd, report = geo_all
    assert list(dd) == ["train", "dev", "test"]
    for split, ds in dd.items():
        assert ds.column_names == COLUMNS and ds.features == FEATURES
        assert set(ds["split"]) == {split}
        assert all(row["answers"] and all(row["answers"]) for row in ds)
        assert all(row["question"] == geo.TEMPLATES[row["relation"]].replace("[X]", row["subject"]) for row in ds)
    for rel in geo.TEMPLATES:
        assert report.kept["dev"][rel] >= 20, rel  # enough for exemplar sets
        assert report.kept["test"][rel] >= 20, rel
        assert report.kept["train"][rel] >= 100, rel
    assert isinstance(report, LoadReport) and report.total_dropped_multi_answer == 0
    # The multi-answer filter does not apply to geo: aliases of one answer survive.
    rows = by_subject(dd["train"].filter(lambda r: r["relation"] == "city_country"))
    assert len(rows["Tokyo"]["answers"]) == 1
    assert any(len(a) > 1 for ds in dd.values() for a in ds["answers"])


def test_geo_famous_and_obscure_facts(geo_all):
    dd, _ = geo_all
    facts = {(r["relation"], r["subject"]): r["answers"] for ds in dd.values() for r in ds}
    assert facts["capital", "France"] == ["Paris"]
    assert facts["city_country", "Tokyo"] == ["Japan"]
    assert facts["city_country", "Paris"] == ["France"]  # Paris, Texas does not make it ambiguous
    assert facts["continent", "Brazil"] == ["South America"]
    assert facts["currency", "Japan"][0] == "Yen"
    assert facts["capital", "United States"][0] == "Washington, D.C."
    assert "USA" in facts["city_country", "Chicago"]
    assert facts["county_state", "Los Angeles County"] == ["California"]
    assert facts["city_continent", "Tokyo"] == ["Asia"] and facts["city_continent", "Lima"] == ["South America"]
    assert ("city_continent", "Istanbul") not in facts  # a transcontinental country: left out
    assert ("city_country", "Kingston") not in facts  # Jamaica or Ontario: left out
    assert ("capital", "Georgia") not in facts  # Tbilisi or Atlanta: left out
    # obscure ones too: small towns of small countries
    small = [s for (rel, s), a in facts.items() if rel == "city_country" and a[0] in ("Slovenia", "Malta", "Bhutan")]
    assert len(small) >= 5


def test_geo_deterministic_splits_disjoint_ids_unique(geo_all):
    dd, report = geo_all
    ids = [i for ds in dd.values() for i in ds["id"]]
    assert len(ids) == len(set(ids))
    assert all(
        i.startswith(f"geo/{r}/{s}/")
        for ds in dd.values()
        for i, r, s in zip(ds["id"], ds["relation"], ds["split"], strict=True)
    )
    subjects = {s: set(ds["subject"]) for s, ds in dd.items()}
    assert not subjects["train"] & subjects["dev"]
    assert not subjects["train"] & subjects["test"]
    assert not subjects["dev"] & subjects["test"]
    # A capital and its country share a split (no "capital of France" in train, "country of Paris" in test).
    by_rel_subject = {(r["relation"], r["subject"]): r["split"] for ds in dd.values() for r in ds}
    assert by_rel_subject["capital", "France"] == by_rel_subject["city_country", "Paris"]
    # Rebuilt from scratch: the same rows.
    geo.build.cache_clear()
    again, _ = load_questions("geo", relations="all")
    assert {s: ds.to_list() for s, ds in again.items()} == {s: ds.to_list() for s, ds in dd.items()}
    assert report.total_dropped_test_overlap == sum(report.dropped_test_overlap.values()) > 0


def test_geo_overlap_filter(geo_all):
    dd, report = geo_all
    test_subjects = set(dd["test"]["subject"])
    for row in dd["train"]:
        assert row["subject"] not in test_subjects
        assert not set(row["answers"]) & test_subjects
    unfiltered, _ = load_questions("geo", relations="all", splits="train", drop_test_overlap=False)
    assert len(unfiltered["train"]) == len(dd["train"]) + report.total_dropped_test_overlap


# ---- the real EntityQuestions files (development copy) ----------------------------------------

needs_shared = pytest.mark.skipif(not (SHARED_EQ / "dataset").is_dir(), reason=f"no EntityQuestions at {SHARED_EQ}")


@needs_shared
def test_shared_eq_counts_and_filters():
    dd, report = load_questions("entityquestions", SHARED_EQ, relations="P17,P36,P800")
    assert report.missing == []
    assert 7000 < report.kept["train"]["P17"] <= 8000
    assert 900 < report.kept["test"]["P17"] <= 1000
    assert 150 < report.kept["dev"]["P800"] <= 220
    assert report.total_dropped_multi_answer > 0
    assert report.total_dropped_test_overlap > 0
    first = dd["test"][0]
    assert first["id"] == "eq/P17/test/0" and first["question"] == P17.format(first["subject"])
    p36 = by_subject(dd["train"].filter(lambda r: r["relation"] == "P36"))
    assert all(q == f"What is the capital of {s}?" for s, q in ((s, r["question"]) for s, r in p36.items()))
    assert all(len(a) == 1 for a in dd["train"]["answers"])
    again, _ = load_questions("entityquestions", SHARED_EQ, relations="P17,P36,P800")
    assert again["train"]["id"] == dd["train"]["id"]
    assert len(set(dd["train"]["id"])) == len(dd["train"])


@needs_shared
def test_shared_eq_test_sizes_match_the_paper():
    # SPEC.md: in-distribution test 10,481 and OOD test 5,848 after the multi-answer filter.
    _, report = load_questions("entityquestions", SHARED_EQ, relations="id", splits="test")
    assert report.total_kept == 10481
    _, report = load_questions("entityquestions", SHARED_EQ, relations="ood", splits="test")
    assert report.total_kept == 5848
