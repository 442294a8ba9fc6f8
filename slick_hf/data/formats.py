"""A user's dataset in its own format -> question rows SliCK can annotate, the original row kept whole.

Formats (`--dataset-format`; `auto` detects one from the columns):

- `entityquestions`: the slick-hf question schema: `id`, `relation`, `question`, `answers` (a list).
- `triviaqa` (`mandarjoshi/trivia_qa`, `rc.nocontext`): `question`, `question_id`, and an `answer`
  struct whose `value` and `aliases` are the gold strings.
- `nq_open` (`google-research-datasets/nq_open`): `question` and an `answer` list.
- `popqa` (`akariasai/PopQA`): `question`, `prop` (the relation), `possible_answers` (a JSON list).
- `messages`: chat rows; the user turn is the question, the assistant turn the answer.
- `prompt_completion`: TRL's prompt/completion rows; the prompt is the question.
- `columns`: any dataset, with `--question-column` and `--answers-column` (a string or a list).

Every row keeps its original columns in the `slick_source` struct, so `slick-hf filter` writes the
set back in its own schema. Ids come from the data (`--id-column`, `id`, `question_id`) or, when it
has none, from a hash of the row's content (stable across runs; a repeated row gets `~2`, `~3`).
Rows without a relation form one group, `default`. Chat rows whose answer is not short-form (more than
`--max-answer-tokens` whitespace-separated tokens, an answer that normalises to nothing, or more
than one user or assistant turn) are kept with `slick_skipped` saying why; SliCK judges the rest.
"""

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field

import pyarrow as pa
from datasets import Dataset, DatasetInfo, Features, Value

from slick_hf.core.normalize import normalize_answer
from slick_hf.core.schema import QUESTION_FEATURES
from slick_hf.errors import SlickError

FORMATS = ("auto", "entityquestions", "triviaqa", "nq_open", "popqa", "messages", "prompt_completion", "columns")
CHAT_FORMATS = ("messages", "prompt_completion")
SOURCE_COLUMN = "slick_source"
SKIP_COLUMN = "slick_skipped"
NOT_SHORT_FORM = "not short-form"
MULTI_TURN = "not short-form: multi-turn"
EXEMPLAR = "exemplar (held out)"
ONE_GROUP = "default"


@dataclass
class DataFormat:
    """How to read a user's dataset (`slick-hf annotate --dataset PATH_OR_HUB_ID`)."""

    dataset_format: str = field(default="auto", metadata={"help": "format of a user dataset", "choices": list(FORMATS)})
    dataset_config: str | None = field(default=None, metadata={"help": "its Hub config, e.g. rc.nocontext"})
    question_column: str | None = field(default=None, metadata={"help": "format columns: the question column"})
    answers_column: str | None = field(
        default=None, metadata={"help": "format columns: the gold answer column (a string or a list of strings)"}
    )
    relation_column: str | None = field(
        default=None, metadata={"help": "column grouping questions into relations (default: one group)"}
    )
    id_column: str | None = field(default=None, metadata={"help": "column of unique ids (default: a content hash)"})
    exemplar_split: str | None = field(
        default=None,
        metadata={
            "help": "split the few-shot exemplars come from (default: dev/validation when there is one, "
            "else a held-out slice of the first annotated split)"
        },
    )
    max_answer_tokens: int = field(
        default=16, metadata={"help": "chat rows: longest answer SliCK judges, in whitespace-separated tokens"}
    )

    def __post_init__(self) -> None:
        if self.dataset_format not in FORMATS:
            raise SlickError(f"--dataset-format must be one of {', '.join(FORMATS)}, got {self.dataset_format!r}")
        if self.dataset_format == "columns" and not (self.question_column and self.answers_column):
            raise SlickError("--dataset-format columns needs --question-column and --answers-column")
        if self.dataset_format != "columns" and (self.question_column or self.answers_column):
            raise SlickError("--question-column and --answers-column go with --dataset-format columns")
        if self.max_answer_tokens < 1:
            raise SlickError(f"--max-answer-tokens must be >= 1, got {self.max_answer_tokens}")

    def to_dict(self) -> dict:
        """The settings that decide the questions (part of an annotation job's signature)."""
        return {k: v for k, v in vars(self).items() if v is not None}


def detect_format(features: Features, name: str) -> str:
    """The format a dataset's columns say it is in; SlickError naming the columns when none fits."""
    cols = set(features)
    answer = features.get("answer")
    if "messages" in cols:
        return "messages"
    if {"prompt", "completion"} <= cols:
        return "prompt_completion"
    if {"prop", "possible_answers"} <= cols:
        return "popqa"
    if isinstance(answer, dict) and "aliases" in answer:
        return "triviaqa"
    if cols & {"relation", "answers"}:
        return "entityquestions"
    if "question" in cols and answer is not None:
        return "nq_open"
    raise SlickError(
        f"cannot tell the format of {name} from its columns ({', '.join(sorted(cols))}); pass --dataset-format "
        f"({', '.join(FORMATS[1:])}), e.g. columns with --question-column and --answers-column"
    )


def _need(features: Features, cols: list[str], name: str, fmt: str) -> None:
    missing = [c for c in cols if c and c not in features]
    if missing:
        raise SlickError(
            f"{name}: missing column(s) {', '.join(missing)} for format {fmt}; found {', '.join(features)}"
        )


def _strings(value, where: str) -> list[str]:
    """Gold answers as a list of strings: a string, a list, or a JSON-encoded list."""
    if isinstance(value, str) and value.startswith("["):
        try:
            value = json.loads(value)
        except ValueError:
            pass
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return list(dict.fromkeys(value))
    raise SlickError(f"{where}: answers must be a string or a list of strings, got {value!r}")


def _chat_turns(row: dict, fmt: str) -> tuple[str, str, str | None]:
    """(question, answer, skip reason) of a chat or prompt/completion row."""
    if fmt == "prompt_completion":
        prompt, completion = row["prompt"], row["completion"]
        if isinstance(prompt, list) or isinstance(completion, list):  # conversational prompt/completion
            return _chat_turns({"messages": [*(prompt or []), *(completion or [])]}, "messages")
        return prompt or "", completion or "", None
    turns = [m for m in row["messages"] or [] if m.get("role") != "system"]
    users = [m for m in turns if m.get("role") == "user"]
    answers = [m for m in turns if m.get("role") == "assistant"]
    question = users[0]["content"] if users else ""
    answer = answers[0]["content"] if answers else ""
    shape_ok = len(turns) == 2 and turns[0].get("role") == "user" and turns[1].get("role") == "assistant"
    return question or "", answer or "", None if shape_ok else MULTI_TURN


def _question_answers(row: dict, fmt: str, spec: DataFormat, where: str) -> tuple[str, list[str], str | None]:
    """(question, gold answers, skip reason) of one row in format `fmt`."""
    if fmt in CHAT_FORMATS:
        question, answer, skip = _chat_turns(row, fmt)
        answer = answer.strip()
        if skip is None and (len(answer.split()) > spec.max_answer_tokens or not normalize_answer(answer)):
            skip = NOT_SHORT_FORM
        return question.strip(), [answer], skip
    if fmt == "triviaqa":
        ans = row["answer"] or {}
        return row["question"], _strings([a for a in [ans.get("value"), *(ans.get("aliases") or [])] if a], where), None
    if fmt == "popqa":
        return row["question"], _strings(row["possible_answers"], where), None
    if fmt == "columns":
        return row[spec.question_column], _strings(row[spec.answers_column], where), None
    if fmt == "nq_open":
        return row["question"], _strings(row["answer"], where), None
    if not isinstance(row["answers"], list):  # entityquestions: the rest is checked by validate_questions
        raise SlickError(f"{where}: column 'answers' must be a list of strings, found {row['answers']!r}")
    return row["question"], row["answers"], None


def _id_column(features: Features, fmt: str, spec: DataFormat) -> str | None:
    if spec.id_column:
        return spec.id_column
    return {"triviaqa": "question_id"}.get(fmt, "id" if "id" in features else None)


def _relation_column(fmt: str, spec: DataFormat) -> str | None:
    return spec.relation_column or {"popqa": "prop", "entityquestions": "relation"}.get(fmt)


def _content_id(row: dict, split: str, seen: Counter) -> str:
    digest = hashlib.sha256(json.dumps(row, sort_keys=True, default=str).encode()).hexdigest()[:16]
    seen[digest] += 1
    return f"{split}/{digest}" + (f"~{seen[digest]}" if seen[digest] > 1 else "")


def convert_split(ds: Dataset, fmt: str, spec: DataFormat, split: str, name: str) -> Dataset:
    """Question rows (`QUESTION_FEATURES`, `slick_skipped`, `slick_source`) for one split in format `fmt`."""
    where = f"{name} [{split}]"
    relation_col, id_col = _relation_column(fmt, spec), _id_column(ds.features, fmt, spec)
    required = {
        "triviaqa": ["question", "answer"],
        "nq_open": ["question", "answer"],
        "popqa": ["question", "possible_answers"],
        "messages": ["messages"],
        "prompt_completion": ["prompt", "completion"],
        "columns": [spec.question_column, spec.answers_column],
        "entityquestions": ["question", "answers"],
    }[fmt]
    _need(ds.features, [*required, relation_col, spec.id_column], where, fmt)
    columns: dict[str, list] = {name: [] for name in QUESTION_FEATURES} | {SKIP_COLUMN: []}
    seen: Counter = Counter()
    for i, row in enumerate(ds):
        question, answers, skip = _question_answers(row, fmt, spec, f"{where} row {i}")
        _check_text(question, answers, f"{where} row {i}")
        rid = row[id_col] if id_col else _content_id(row, split, seen)
        relation = row[relation_col] if relation_col else ONE_GROUP
        columns["id"].append(rid if rid is None or isinstance(rid, str) else str(rid))
        columns["relation"].append(relation if relation is None or isinstance(relation, str) else str(relation))
        columns["subject"].append("")
        columns["question"].append(question)
        columns["answers"].append(answers)
        columns["split"].append(split)
        columns[SKIP_COLUMN].append(skip)
    skipped = columns.pop(SKIP_COLUMN)
    features = Features({**QUESTION_FEATURES, SOURCE_COLUMN: dict(ds.features), SKIP_COLUMN: Value("string")})
    source = ds.with_format("arrow")[:]
    struct = pa.StructArray.from_arrays([source.column(c).combine_chunks() for c in ds.column_names], ds.column_names)
    table = pa.Table.from_pydict(columns, schema=QUESTION_FEATURES.arrow_schema)
    table = table.append_column(SOURCE_COLUMN, struct).append_column(SKIP_COLUMN, pa.array(skipped, pa.string()))
    return Dataset(table.cast(features.arrow_schema), info=DatasetInfo(features=features))


def _check_text(question, answers, where: str) -> None:
    """SlickError unless the question is a string (or null) and every answer a string."""
    if question is not None and not isinstance(question, str):
        raise SlickError(f"{where}: the question {question!r} is {type(question).__name__}, not text")
    bad = [a for a in answers or [] if a is not None and not isinstance(a, str)]
    if bad:
        raise SlickError(f"{where}: the answer {bad[0]!r} is {type(bad[0]).__name__}, not text")


def source_rows(ds: Dataset) -> Dataset:
    """The original rows of converted (or annotated) question rows, in the user's own schema."""
    column = ds.with_format("arrow")[:].column(SOURCE_COLUMN)
    struct = column.combine_chunks() if column.num_chunks else pa.array([], type=column.type)
    features = Features(ds.features[SOURCE_COLUMN])
    table = pa.Table.from_arrays([struct.field(i) for i in range(struct.type.num_fields)], names=list(features))
    return Dataset(table, info=DatasetInfo(features=features))
