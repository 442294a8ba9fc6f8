"""Tiny copies of Hub QA and chat datasets, laid out as their Hub repos are, and an engine that knows some answers.

Each writer puts `data/<split>-00000-of-00001.parquet` files with the real dataset's column names
and types (TriviaQA's nested `answer` struct, PopQA's JSON-encoded lists) under a folder, so
`datasets.load_dataset(folder)` reads it as it reads the Hub repo.
"""

import json
from collections.abc import Sequence
from pathlib import Path

from datasets import Dataset, Features, List, Value

from slick_hf.engines.base import Engine, GenerationRequest
from slick_hf.hub import parquet_name

CAPITALS = [
    ("France", "Paris"),
    ("Japan", "Tokyo"),
    ("Italy", "Rome"),
    ("Germany", "Berlin"),
    ("Spain", "Madrid"),
    ("Egypt", "Cairo"),
    ("Kenya", "Nairobi"),
    ("Canada", "Ottawa"),
    ("Peru", "Lima"),
    ("Chile", "Santiago"),
    ("Tuvalu", "Funafuti"),
    ("Palau", "Ngerulmud"),
    ("Nauru", "Yaren"),
    ("Kiribati", "Tarawa"),
    ("Vanuatu", "Port Vila"),
    ("Bhutan", "Thimphu"),
]
MORE_CAPITALS = [
    ("Norway", "Oslo"),
    ("Sweden", "Stockholm"),
    ("Poland", "Warsaw"),
    ("Greece", "Athens"),
    ("Cuba", "Havana"),
    ("Nepal", "Kathmandu"),
    ("Chad", "N'Djamena"),
    ("Fiji", "Suva"),
]
KNOWN_GREEDY = {"Paris", "Tokyo", "Rome", "Berlin", "Madrid", "Cairo"}  # HighlyKnown to `FactEngine`
KNOWN_SAMPLED = {"Nairobi", "Ottawa"}  # WeaklyKnown: right only when sampling


def question(country: str) -> str:
    """The fixtures' question about a country."""
    return f"What is the capital of {country}?"


class FactEngine(Engine):
    """No model: answers the last `Q: ...` of a prompt right when it knows it (greedy or sampled), else wrong."""

    name = "facts"

    def __init__(self, model_id: str = "test/facts") -> None:
        self.model_id = model_id
        self.answers = {question(c): a for c, a in CAPITALS + MORE_CAPITALS}

    def generate(self, requests: Sequence[GenerationRequest]) -> list[list[str]]:
        out = []
        for r in requests:
            asked = r.prompt.rsplit("Q: ", 1)[-1].split("\n", 1)[0]
            gold = self.answers.get(asked, "")
            right = gold in KNOWN_GREEDY or (gold in KNOWN_SAMPLED and r.temperature > 0)
            out.append([f" {gold if right else 'Atlantis'}\n"] * r.n)
        return out

    def info(self) -> dict[str, str]:
        return {"engine": self.name, "model_id": self.model_id, "model_revision": "test"}


def _write(folder: Path, splits: dict[str, list[dict]], features: Features) -> Path:
    for split, rows in splits.items():
        path = folder / "data" / parquet_name(split)
        path.parent.mkdir(parents=True, exist_ok=True)
        Dataset.from_list(rows, features=features).to_parquet(str(path))
    return folder


def _halves(rows: list[dict]) -> tuple[list[dict], list[dict]]:
    return rows[::2], rows[1::2]


TRIVIAQA_ANSWER = {
    "aliases": List(Value("string")),
    "normalized_aliases": List(Value("string")),
    "matched_wiki_entity_name": Value("string"),
    "normalized_matched_wiki_entity_name": Value("string"),
    "normalized_value": Value("string"),
    "type": Value("string"),
    "value": Value("string"),
}
TRIVIAQA = Features(
    {
        "question": Value("string"),
        "question_id": Value("string"),
        "question_source": Value("string"),
        "entity_pages": {k: List(Value("string")) for k in ("doc_source", "filename", "title", "wiki_context")},
        "search_results": {
            "description": List(Value("string")),
            "filename": List(Value("string")),
            "rank": List(Value("int32")),
            "title": List(Value("string")),
            "url": List(Value("string")),
            "search_context": List(Value("string")),
        },
        "answer": TRIVIAQA_ANSWER,
    }
)


def write_triviaqa(folder: Path) -> Path:
    """`mandarjoshi/trivia_qa`, config `rc.nocontext`: train and validation."""
    rows = [
        {
            "question": question(c),
            "question_id": f"tc_{i}",
            "question_source": "http://www.quizwise.com/",
            "entity_pages": {k: [] for k in ("doc_source", "filename", "title", "wiki_context")},
            "search_results": {k: [] for k in TRIVIAQA["search_results"]},
            "answer": {
                "aliases": [a, a.upper()],
                "normalized_aliases": [a.lower()],
                "matched_wiki_entity_name": "",
                "normalized_matched_wiki_entity_name": "",
                "normalized_value": a.lower(),
                "type": "WikipediaEntity",
                "value": a,
            },
        }
        for i, (c, a) in enumerate(CAPITALS)
    ]
    train, validation = _halves(rows)
    return _write(folder, {"train": train, "validation": validation}, TRIVIAQA)


def write_nq_open(folder: Path) -> Path:
    """`google-research-datasets/nq_open`: train and validation, `answer` a list of strings."""
    features = Features({"question": Value("string"), "answer": List(Value("string"))})
    rows = [{"question": question(c), "answer": [a]} for c, a in CAPITALS]
    train, validation = _halves(rows)
    return _write(folder, {"train": train, "validation": validation}, features)


POPQA = Features(
    {
        "id": Value("int64"),
        "subj": Value("string"),
        "prop": Value("string"),
        "obj": Value("string"),
        "subj_id": Value("int64"),
        "prop_id": Value("int64"),
        "obj_id": Value("int64"),
        "s_aliases": Value("string"),
        "o_aliases": Value("string"),
        "s_uri": Value("string"),
        "o_uri": Value("string"),
        "s_wiki_title": Value("string"),
        "o_wiki_title": Value("string"),
        "s_pop": Value("int64"),
        "o_pop": Value("int64"),
        "question": Value("string"),
        "possible_answers": Value("string"),
    }
)


def write_popqa(folder: Path) -> Path:
    """`akariasai/PopQA`: one `test` split; `prop` is the relation, `possible_answers` a JSON list."""
    rows = [
        {
            "id": 1000 + i,
            "subj": c,
            "prop": "capital",
            "obj": a,
            "subj_id": i,
            "prop_id": 22,
            "obj_id": 100 + i,
            "s_aliases": "[]",
            "o_aliases": json.dumps([a.upper()]),
            "s_uri": f"http://www.wikidata.org/entity/Q{i}",
            "o_uri": f"http://www.wikidata.org/entity/Q{100 + i}",
            "s_wiki_title": c,
            "o_wiki_title": a,
            "s_pop": 1000,
            "o_pop": 1000,
            "question": question(c),
            "possible_answers": json.dumps([a, a.upper()]),
        }
        for i, (c, a) in enumerate(CAPITALS)
    ]
    return _write(folder, {"test": rows}, POPQA)


CHAT = Features(
    {
        "prompt_id": Value("string"),
        "messages": List({"content": Value("string"), "role": Value("string")}),
        "category": Value("string"),
    }
)
LONG_ANSWER = "It is a city with a long history, many museums, parks and a river that runs right through its centre."


def _chat(facts: list[tuple[str, str]], prefix: str) -> list[dict]:
    return [
        {
            "prompt_id": f"{prefix}{i}",
            "messages": [{"content": question(c), "role": "user"}, {"content": a, "role": "assistant"}],
            "category": "geo",
        }
        for i, (c, a) in enumerate(facts)
    ]


def chat_rows() -> list[dict]:
    """Single-turn capital questions, plus one long-form answer and one multi-turn conversation."""
    rows = _chat(CAPITALS, "p")
    long_form = [{"content": "Tell me about Paris.", "role": "user"}, {"content": LONG_ANSWER, "role": "assistant"}]
    multi = [
        *rows[0]["messages"],
        {"content": "And of Japan?", "role": "user"},
        {"content": "Tokyo", "role": "assistant"},
    ]
    rows += [
        {"prompt_id": "long", "messages": long_form, "category": "open"},
        {"prompt_id": "multi", "messages": multi, "category": "geo"},
    ]
    return rows


def write_messages(folder: Path) -> Path:
    """A chat SFT set (`messages` of role/content) with train and validation splits."""
    rows = chat_rows()
    return _write(folder, {"train": rows, "validation": _chat(MORE_CAPITALS, "v")}, CHAT)


def write_prompt_completion(folder: Path) -> Path:
    """A TRL prompt/completion set with a single train split."""
    features = Features({"prompt": Value("string"), "completion": Value("string")})
    rows = [{"prompt": question(c), "completion": a} for c, a in CAPITALS]
    return _write(folder, {"train": rows}, features)


def write_columns(folder: Path) -> Path:
    """A QA set with its own column names (`query`, `gold` string, `topic`, integer `qid`), train and test."""
    features = Features(
        {"qid": Value("int64"), "topic": Value("string"), "query": Value("string"), "gold": Value("string")}
    )
    rows = [{"qid": i, "topic": "capital", "query": question(c), "gold": a} for i, (c, a) in enumerate(CAPITALS)]
    train, test = _halves(rows)
    return _write(folder, {"train": train, "test": test}, features)
