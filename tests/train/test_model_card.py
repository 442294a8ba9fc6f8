"""The model card of a run folder, from a run's recorded results (no training, no torch): its Hub
metadata names the base model by Hub id, the datasets, and the EARLY_STOP results per category and split."""

import json
from pathlib import Path

import pytest
import yaml
from huggingface_hub import ModelCard

from slick_hf.core.slick import CATEGORIES
from slick_hf.models import PROVENANCE_FILE, SMOLLM2_ALIAS, SMOLLM2_HUB_ID, smollm2_dir
from slick_hf.train.card import metric_name, write_model_card

SPLITS = ("test", "test_ood")


def split_metrics(overall: float, missing: tuple[str, ...] = ()) -> dict:
    """Metrics of one split as `slick-hf evaluate` records them; `missing` categories have no questions."""
    out = {"exact_match": overall, "count": 20, "answered": 0.9}
    for i, c in enumerate(CATEGORIES):
        absent = c in missing
        out[f"exact_match_{c}"] = None if absent else round(overall + (i - 2) / 10, 4)
        out[f"count_{c}"] = 0 if absent else 5
    return out


def fake_run(**changes) -> dict:
    """A run.json as the recipe writes it, with different numbers at each stopping point."""
    run = {
        "run_name": "D_unk0.50",
        "base_model": SMOLLM2_ALIAS,
        "variant": "D_unk0.50",
        "variant_summary": {"size": 8, "categories": {c: 2 for c in CATEGORIES}},
        "annotated_dataset": "me/slick-geo",
        "source_dataset": "geo",
        "annotation_config": "smollm2-135m",
        "training": {"best_epoch": 2.0, "epochs": 4.0},
        "results": {
            "early_stop": {"test": split_metrics(0.5), "test_ood": split_metrics(0.3)},
            "convergence": {"test": split_metrics(0.45), "test_ood": split_metrics(0.25)},
        },
        "weights_kept": True,
    }
    return run | changes


def yaml_header(readme: Path) -> dict:
    return yaml.safe_load(readme.read_text().split("---\n")[1])


@pytest.fixture
def converted_alias(tmp_path, monkeypatch) -> Path:
    """The alias's converted checkpoint in a private cache, recording its Hub id as the conversion does."""
    monkeypatch.setenv("SLICK_HF_CACHE", str(tmp_path / "cache"))
    folder = smollm2_dir()
    folder.mkdir(parents=True)
    (folder / PROVENANCE_FILE).write_text(json.dumps({"model_id": SMOLLM2_HUB_ID, "alias": SMOLLM2_ALIAS}))
    return folder


def test_card_metadata_names_the_hub_base_model_datasets_and_each_category_and_split(tmp_path, converted_alias):
    run = fake_run()
    write_model_card(tmp_path, run)
    data = ModelCard.load(tmp_path / "README.md").data
    assert data.base_model == SMOLLM2_HUB_ID
    assert data.datasets == ["me/slick-geo"]
    assert data.model_name == "D_unk0.50"
    assert data.library_name == "transformers" and data.pipeline_tag == "text-generation"
    assert "slick" in data.tags

    found = {(r.dataset_split, r.metric_name): r for r in data.eval_results}
    expected = {(s, metric_name(c)) for s in SPLITS for c in (None, *CATEGORIES)}
    assert set(found) == expected and len(data.eval_results) == len(expected)  # one entry each
    for result in found.values():
        assert result.task_type == "question-answering"
        assert result.dataset_type == "me/slick-geo" and result.dataset_config == "smollm2-135m"
        assert result.metric_type == "exact_match"
    for split in SPLITS:  # the EARLY_STOP model's numbers, in percent
        early = run["results"]["early_stop"][split]
        assert found[(split, metric_name(None))].metric_value == pytest.approx(100 * early["exact_match"])
        for c in CATEGORIES:
            assert found[(split, metric_name(c))].metric_value == pytest.approx(100 * early[f"exact_match_{c}"])
    # huggingface_hub merges the entries of one split (same task and dataset) into one model-index result
    index = yaml_header(tmp_path / "README.md")["model-index"]
    assert [r["dataset"]["split"] for r in index[0]["results"]] == list(SPLITS)
    assert "out-of-distribution test" in index[0]["results"][1]["dataset"]["name"]


def test_the_alias_not_converted_here_still_names_its_hub_id(tmp_path, monkeypatch):
    monkeypatch.setenv("SLICK_HF_CACHE", str(tmp_path / "empty-cache"))
    write_model_card(tmp_path, fake_run())
    assert ModelCard.load(tmp_path / "README.md").data.base_model == SMOLLM2_HUB_ID


def test_a_converted_folder_names_the_hub_id_its_provenance_records(tmp_path, converted_alias):
    write_model_card(tmp_path, fake_run(base_model=str(converted_alias)))
    assert ModelCard.load(tmp_path / "README.md").data.base_model == SMOLLM2_HUB_ID


def test_local_paths_are_never_written_as_base_model_or_datasets(tmp_path):
    model = tmp_path / "my-model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    annotated = tmp_path / "annotations" / "geo"
    annotated.mkdir(parents=True)
    run = fake_run(base_model=str(model), annotated_dataset=str(annotated))
    write_model_card(tmp_path / "run", run)
    header = yaml_header(tmp_path / "run" / "README.md")
    assert "base_model" not in header
    assert header["datasets"] == ["geo"]  # the local folder's source dataset
    assert str(tmp_path) not in yaml.safe_dump(header)
    data = ModelCard.load(tmp_path / "run" / "README.md").data
    assert {r.dataset_type for r in data.eval_results} == {"geo"}

    write_model_card(tmp_path / "run", run | {"source_dataset": str(model / "questions.jsonl")})
    header = yaml_header(tmp_path / "run" / "README.md")
    assert "datasets" not in header and str(tmp_path) not in yaml.safe_dump(header)


def test_a_category_without_test_questions_has_no_entry(tmp_path, converted_alias):
    run = fake_run()
    run["results"]["early_stop"]["test_ood"] = split_metrics(0.3, missing=("Unknown",))
    write_model_card(tmp_path, run)
    names = {(r.dataset_split, r.metric_name) for r in ModelCard.load(tmp_path / "README.md").data.eval_results}
    assert ("test_ood", metric_name("Unknown")) not in names
    assert ("test", metric_name("Unknown")) in names and len(names) == 2 * (1 + len(CATEGORIES)) - 1
