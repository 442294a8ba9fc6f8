"""The paper's practical advice as a command: a user's own fine-tuning set without its Unknown examples.

`filter_annotated` takes an annotated user dataset and returns, per filtered split, the user's rows in
their own schema (chat rows stay chat rows, prompt/completion rows stay so) with the rows of the
dropped categories (Unknown by default) removed, or with their answer replaced by the IDK answer.
Rows SliCK did not judge (not short-form, held-out exemplars) are kept and counted. It also returns
the kept rows with their annotation (`slick_idk` marks relabelled rows), which the recipe trains on
with `variant: whole`.
"""

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from datasets import Dataset, DatasetDict, Value

from slick_hf.atomic_dir import new_version
from slick_hf.core.schema import STABILITY_COLUMN, category_names
from slick_hf.core.slick import CATEGORIES
from slick_hf.data.formats import CHAT_FORMATS, SOURCE_COLUMN, DataFormat, detect_format, source_rows
from slick_hf.errors import SlickError
from slick_hf.hub import atomic_write_text, parquet_name, write_parquet

IDK_COLUMN = "slick_idk"
FILTER_META = "slick_filter.json"
NOT_JUDGED = "not judged"


@dataclass
class FilterResult:
    """The filtered set in the user's schema, the kept annotated rows, and what happened per split."""

    user: DatasetDict
    annotated: DatasetDict
    counts: dict = field(default_factory=dict)  # split -> relation -> category|"not judged" -> {kept, removed}
    format: str = "entityquestions"  # the user rows' format


def _resolved_format(ds: Dataset, recorded: Mapping | None) -> tuple[str, DataFormat]:
    spec = DataFormat(**recorded) if recorded else DataFormat("entityquestions")
    if SOURCE_COLUMN not in ds.column_names:
        return "entityquestions", spec
    fmt = spec.dataset_format
    return (detect_format(ds.features[SOURCE_COLUMN], "the annotated rows") if fmt == "auto" else fmt), spec


def _relabel(row: dict, fmt: str, spec: DataFormat, idk: str) -> dict:
    """A user row with its answer replaced by the IDK answer, in the row's own format."""
    row = dict(row)
    if fmt == "messages":
        row["messages"] = [m | {"content": idk} if m.get("role") == "assistant" else m for m in row["messages"]]
    elif fmt == "prompt_completion":
        done = row["completion"]
        row["completion"] = [m | {"content": idk} for m in done] if isinstance(done, list) else idk
    elif fmt == "triviaqa":
        keys = ("value", "normalized_value", "matched_wiki_entity_name", "normalized_matched_wiki_entity_name")
        answer = {k: v for k, v in (row["answer"] or {}).items()}
        answer |= {k: idk for k in keys if k in answer} | {k: [idk] for k in ("aliases", "normalized_aliases")}
        row["answer"] = answer
    elif fmt == "popqa":
        row["possible_answers"] = f'["{idk}"]'
    else:
        column = {"nq_open": "answer", "columns": spec.answers_column}.get(fmt, "answers")
        row[column] = idk if isinstance(row[column], str) else [idk]
    return row


def _user_rows(ds: Dataset) -> Dataset:
    """The user's own columns of annotated rows."""
    if SOURCE_COLUMN in ds.column_names:
        return source_rows(ds)
    return ds.remove_columns([c for c in ds.column_names if c.startswith("slick_")])


def _firm(ds: Dataset, min_stability: float) -> list[bool]:
    """Whether each row's label is at least `min_stability` stable (every row when it is 0)."""
    if min_stability <= 0.0:
        return [True] * len(ds)
    if STABILITY_COLUMN not in ds.column_names:
        raise SlickError(
            "--min-stability needs the slick_label_stability column, which annotations made before label "
            "stability was recorded lack: annotate the set again"
        )
    return [s is not None and s >= min_stability for s in ds[STABILITY_COLUMN][:]]


def filter_split(
    ds: Dataset,
    drop: Sequence[str],
    relabel_idk: bool,
    idk_answer: str,
    data_format: Mapping | None = None,
    min_stability: float = 0.0,
) -> tuple[Dataset, Dataset, dict]:
    """(user rows, annotated rows, counts) of one annotated split with the `drop` categories removed or relabelled.

    With `min_stability`, only rows whose label is at least that stable are removed or relabelled; the
    others are kept and counted as `kept_uncertain`.
    """
    cats = category_names(ds, allow_missing=True)
    if cats is None:
        raise SlickError("the split has no slick_category column: annotate it first (slick-hf annotate)")
    fmt, spec = _resolved_format(ds, data_format)
    firm = _firm(ds, min_stability)
    hit = [c in drop and f for c, f in zip(cats, firm, strict=True)]
    counts: dict[str, dict[str, Counter]] = {}
    for rel, cat, h, f in zip(ds["relation"][:], cats, hit, firm, strict=True):
        outcome = "removed" if h else "kept" if f or cat not in drop else "kept_uncertain"
        counts.setdefault(rel, {}).setdefault(cat or NOT_JUDGED, Counter())[outcome] += 1
    if relabel_idk:
        kept = ds
        user = _user_rows(ds)
        rows = [_relabel(r, fmt, spec, idk_answer) if h else r for r, h in zip(user.to_list(), hit, strict=True)]
        user = Dataset.from_list(rows, features=user.features) if any(hit) else user
        if SOURCE_COLUMN in ds.column_names and any(hit):
            kept = ds.remove_columns(SOURCE_COLUMN).add_column(SOURCE_COLUMN, rows, feature=user.features)
            kept = kept.select_columns(ds.column_names)
    else:
        kept = ds.select([i for i, h in enumerate(hit) if not h])
        user = _user_rows(kept)
    idk = list(hit) if relabel_idk else [False] * len(kept)
    kept = kept.add_column(IDK_COLUMN, idk, feature=Value("bool"))
    return user, kept, {r: {c: dict(n) for c, n in sorted(by.items(), key=str)} for r, by in sorted(counts.items())}


def filter_annotated(
    annotated: DatasetDict,
    splits: Sequence[str],
    drop: Sequence[str] = ("Unknown",),
    relabel_idk: bool = False,
    idk_answer: str = "I don't know",
    data_format: Mapping | None = None,
    min_stability: float = 0.0,
) -> FilterResult:
    """Filter `splits` of an annotated dataset; its other splits are kept, judged rows only, for evaluation."""
    bad = [c for c in drop if c not in CATEGORIES]
    if bad or not drop:
        raise SlickError(f"--drop takes SliCK categories ({', '.join(CATEGORIES)}), got {', '.join(drop) or 'none'}")
    if not idk_answer.strip():
        raise SlickError("--idk-answer must not be empty")
    missing = [s for s in splits if s not in annotated]
    if missing or not splits:
        raise SlickError(f"no split {', '.join(missing) or '(none given)'} to filter; it has {', '.join(annotated)}")
    result = FilterResult(DatasetDict(), DatasetDict())
    for split, ds in annotated.items():
        if split in splits:
            result.user[split], result.annotated[split], result.counts[split] = filter_split(
                ds, drop, relabel_idk, idk_answer, data_format, min_stability
            )
            result.format = _resolved_format(ds, data_format)[0]
        else:
            cats = category_names(ds, allow_missing=True) or []
            judged = ds.select([i for i, c in enumerate(cats) if c is not None])
            result.annotated[split] = judged.add_column(IDK_COLUMN, [False] * len(judged), feature=Value("bool"))
    return result


def render_filter_card(meta: Mapping) -> str:
    """The dataset card body of a filtered set: what was removed per category and relation, from what."""
    what = "relabelled to the IDK answer" if meta["relabel_idk"] else "removed"
    kind = "chat" if meta["format"] in CHAT_FORMATS else meta["format"]
    out = [
        "# Filtered with SliCK",
        "",
        f"This is `{meta['source']}` (config `{meta['config']}`, annotated by `{meta['model']}`) in its own "
        f"schema ({kind} rows), with the rows of categor{'y' if len(meta['drop']) == 1 else 'ies'} "
        f"{', '.join(meta['drop'])} {what}"
        + (f" (`{meta['idk_answer']}`)" if meta["relabel_idk"] else "")
        + ", following Gekhman et al. 2024 ([arXiv:2405.05904](https://arxiv.org/abs/2405.05904)): "
        "fine-tuning on examples the model does not know teaches it to hallucinate.",
        "",
        "Rows SliCK could not judge (answers that are not short-form, held-out few-shot exemplars) are kept.",
        *(
            [
                "",
                f"Only labels at least {meta['min_stability']} stable (`slick_label_stability`) were {what}; rows of "
                f"those categories with a less stable label are kept as uncertain (counted below).",
            ]
            if meta.get("min_stability")
            else []
        ),
        "",
        f"- config `default`: the filtered set ({', '.join(meta['splits'])}), the columns of the original",
        f"- config `{meta['config']}`: the kept rows with their SliCK annotation (`{IDK_COLUMN}` marks relabelled "
        "rows) and the other annotated splits (judged rows only), for `slick-hf recipe` with `variant: whole`",
    ]
    for split, by_relation in meta["counts"].items():
        totals: Counter = Counter()
        rows = []
        for rel, by_cat in by_relation.items():
            cells = []
            for cat in (*CATEGORIES, NOT_JUDGED):
                by = by_cat.get(cat, {})
                kept, removed = by.get("kept", 0) + by.get("kept_uncertain", 0), by.get("removed", 0)
                totals[cat, "kept"] += kept
                totals[cat, "removed"] += removed
                cells.append(f"{kept} / {removed}")
            rows.append(f"| {rel} | " + " | ".join(cells) + " |")
        total = " | ".join(f"{totals[c, 'kept']} / {totals[c, 'removed']}" for c in (*CATEGORIES, NOT_JUDGED))
        n_removed = sum(v for (_, k), v in totals.items() if k == "removed")
        uncertain_line = []
        if meta.get("min_stability"):
            uncertain = Counter()
            for by_cat in by_relation.values():
                for cat, by in by_cat.items():
                    uncertain[cat] += by.get("kept_uncertain", 0)
            shown = ", ".join(f"{cat} {n}" for cat, n in uncertain.items() if n) or "none"
            uncertain_line = ["", f"Kept as uncertain (stability below {meta['min_stability']}): {shown}."]
        out += [
            "",
            f"## {split}: {sum(totals.values())} rows, {n_removed} {what}",
            "",
            f"Kept / {what}, per relation and SliCK category:",
            "",
            "| relation | " + " | ".join((*CATEGORIES, NOT_JUDGED)) + " |",
            "|---" * (len(CATEGORIES) + 2) + "|",
            f"| all | {total} |",
            *rows,
            *uncertain_line,
        ]
    return "\n".join(out)


def write_filtered_folder(out_dir: Path, result: FilterResult, meta: Mapping) -> Path:
    """Write the filtered set as a Hub-style dataset folder: `data/` (default config), the annotated
    config, `slick_filter.json` and a card; the folder is replaced whole (`atomic_dir.new_version`)."""
    from huggingface_hub import DatasetCard, DatasetCardData

    out_dir, config = Path(out_dir), meta["config"]
    with new_version(out_dir) as stage:
        for folder, splits in (("data", result.user), (config, result.annotated)):
            for split, ds in splits.items():
                write_parquet(ds, stage / folder / parquet_name(split))
        atomic_write_text(stage / FILTER_META, json.dumps(dict(meta), indent=2, sort_keys=True))
        configs = [
            {"config_name": name, "data_files": [{"split": s, "path": f"{folder}/{s}-*.parquet"} for s in splits]}
            for name, folder, splits in (("default", "data", result.user), (config, config, result.annotated))
        ]
        data = DatasetCardData(tags=["slick", "hallucination", "sft"], configs=configs)
        card = DatasetCard(f"---\n{data.to_yaml()}\n---\n{render_filter_card(meta)}\n")
        atomic_write_text(stage / "README.md", str(card))
    return out_dir
