"""The dataset card's `dataset_info`: each config's features, so the Hub's viewer shows SliCK category names;
a card with `dataset_info` and `configs` still loads offline with `datasets.load_dataset`."""

from pathlib import Path

import yaml
from datasets import ClassLabel, Dataset, DatasetDict, Features, Value, load_dataset
from huggingface_hub import DatasetCard

from slick_hf.core.slick import CATEGORIES
from slick_hf.hub import write_dataset_repo

CATEGORY = ClassLabel(names=list(CATEGORIES))
CLASS_NAMES = {str(i): name for i, name in enumerate(CATEGORIES)}


def annotated(n: int, extra: bool = False) -> Dataset:
    columns = {"id": [f"q{i}" for i in range(n)], "slick_category": [i % 4 for i in range(n)]}
    features = {"id": Value("string"), "slick_category": CATEGORY}
    if extra:
        columns["slick_p_greedy"] = [0.5] * n
        features["slick_p_greedy"] = Value("float64")
    return Dataset.from_dict(columns, features=Features(features))


def meta(split: str) -> dict:
    return {
        "model": {"model_id": "org/A"},
        "dataset": {"source": "geo", "relations": ["capital"], "reports": {}},
        "exemplars": {},
        "splits": {split: {"num_examples": 1}},
    }


def header(folder: Path) -> dict:
    return yaml.safe_load((folder / "README.md").read_text().split("---\n")[1])


def info_by_config(folder: Path) -> dict[str, dict]:
    info = header(folder)["dataset_info"]
    return {e["config_name"]: e for e in ([info] if isinstance(info, dict) else info)}


def class_names(entry: dict) -> dict[str, str]:
    (feature,) = [f for f in entry["features"] if f["name"] == "slick_category"]
    return feature["dtype"]["class_label"]["names"]


def test_card_yaml_has_each_configs_features_with_the_category_names(tmp_path):
    write_dataset_repo(tmp_path, "org--A", DatasetDict(train=annotated(4), test=annotated(3)), meta("test"), str)
    infos = info_by_config(tmp_path)
    assert list(infos) == ["org--A"]
    assert class_names(infos["org--A"]) == CLASS_NAMES
    assert [f["name"] for f in infos["org--A"]["features"]] == ["id", "slick_category"]
    card = DatasetCard.load(tmp_path / "README.md")  # the YAML stays a valid card
    assert [c["config_name"] for c in card.data.configs] == ["org--A"]

    dd = load_dataset(str(tmp_path), "org--A", download_mode="force_redownload", verification_mode="no_checks")
    assert sorted(dd) == ["test", "train"] and dd["train"].num_rows == 4
    assert dd["test"].features["slick_category"].names == list(CATEGORIES)
    assert dd["test"].to_list() == annotated(3).to_list()


def test_dataset_info_follows_each_rewrite_and_keeps_other_configs_entries(tmp_path):
    (tmp_path / "human").mkdir()
    Dataset.from_dict({"q": ["a"]}).to_parquet(str(tmp_path / "human" / "test.parquet"))
    (tmp_path / "README.md").write_text(
        "---\n"
        "dataset_info:\n"
        "  config_name: human\n"
        "  features:\n"
        "  - name: q\n"
        "    dtype: string\n"
        "configs:\n"
        "- config_name: human\n"
        "  data_files:\n"
        "  - split: test\n"
        "    path: human/test.parquet\n"
        "---\n"
        "# Mine\n"
    )
    write_dataset_repo(tmp_path, "org--A", DatasetDict(test=annotated(2)), meta("test"), str)
    write_dataset_repo(tmp_path, "org--B", DatasetDict(test=annotated(2)), meta("test"), str)
    write_dataset_repo(tmp_path, "org--A", DatasetDict(test=annotated(3, extra=True)), meta("test"), str)
    infos = info_by_config(tmp_path)
    assert sorted(infos) == ["human", "org--A", "org--B"]
    assert infos["human"]["features"] == [{"name": "q", "dtype": "string"}]
    assert [f["name"] for f in infos["org--A"]["features"]] == ["id", "slick_category", "slick_p_greedy"]
    assert class_names(infos["org--A"]) == class_names(infos["org--B"]) == CLASS_NAMES
    for config, rows in (("org--A", 3), ("org--B", 2), ("human", 1)):
        dd = load_dataset(str(tmp_path), config, download_mode="force_redownload", verification_mode="no_checks")
        assert dd["test"].num_rows == rows


def test_no_dataset_info_for_a_config_whose_splits_disagree(tmp_path):
    write_dataset_repo(tmp_path, "org--A", DatasetDict(train=annotated(2)), meta("train"), str)
    write_dataset_repo(tmp_path, "org--A", DatasetDict(test=annotated(2, extra=True)), meta("test"), str)
    assert "dataset_info" not in header(tmp_path)
