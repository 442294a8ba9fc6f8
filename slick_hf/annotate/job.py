"""The `slick-hf annotate` job: questions + model -> a Hub-style annotated dataset folder."""

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from datasets import Dataset, DatasetDict

from slick_hf import __version__
from slick_hf.annotate.card import category_stats, render_annotation_section
from slick_hf.annotate.executors import ChunkExecutor
from slick_hf.annotate.folder import config_problems
from slick_hf.annotate.journal import CHUNK_SIZE, annotate_dataset
from slick_hf.annotate.rows import exemplar_pools_by_relation
from slick_hf.core.slick import SlickConfig
from slick_hf.data.formats import SKIP_COLUMN, DataFormat
from slick_hf.data.load import DATASETS
from slick_hf.data.user import load_question_splits
from slick_hf.engines.base import Engine
from slick_hf.errors import SlickError
from slick_hf.hub import META_FILE, config_name_for, load_card, write_dataset_repo

logger = logging.getLogger(__name__)
WORK_DIR = ".slick_work"


@dataclass
class AnnotateJob:
    """Everything one annotation run needs; `run` is resumable and idempotent."""

    dataset: str
    output_dir: Path
    model: str
    splits: Sequence[str] = ("train", "dev", "test")
    data_dir: Path | None = None
    relations: str | Sequence[str] | None = None
    limit_per_relation: int | None = None
    config_name: str | None = None
    slick: SlickConfig = field(default_factory=SlickConfig)
    chunk_size: int = CHUNK_SIZE
    split_suffix: str = ""
    dtype: str = "float32"  # what the engine computes in (resolved; "server" behind servers)
    data_format: DataFormat | None = None  # how a user's dataset is read (dropped for the built-in ones)

    def __post_init__(self) -> None:
        if self.dataset in DATASETS:  # geo and EntityQuestions have one schema: no format in their signature
            self.data_format = None

    def signature(self) -> dict:
        """What decides a split's content: a finished split with the same signature is reused."""
        return {
            "dataset": self.dataset,
            "relations": self.relations if isinstance(self.relations, str | None) else list(self.relations),
            "limit_per_relation": self.limit_per_relation,
            "slick": self.slick.to_dict(),
            "dtype": self.dtype,
        } | ({"data_format": self.data_format.to_dict()} if self.data_format is not None else {})

    def is_done(self) -> bool:
        """True when every split of this job is in the folder with this signature, its files intact
        (rows and sha256 as recorded: `config_problems`)."""
        config = self.config_name or config_name_for(self.model)
        meta_path = Path(self.output_dir) / config / META_FILE
        if not meta_path.exists() or config_problems(self.output_dir, config):
            return False
        done = json.loads(meta_path.read_text()).get("splits", {})
        return all(_with_dtype(done.get(s + self.split_suffix, {}).get("job")) == self.signature() for s in self.splits)

    @cached_property
    def inputs(self) -> tuple[DatasetDict, dict, str, str]:
        """Questions, exemplar pools per relation, data report, where exemplars come from: checked before
        any model loads (and the output folder's card, which the run rewrites)."""
        if (Path(self.output_dir) / "README.md").exists():
            load_card(Path(self.output_dir) / "README.md")
        questions, exemplar_rows, report, exemplars_from = load_question_splits(
            self.dataset,
            self.data_dir,
            self.splits,
            self.relations,
            self.limit_per_relation,
            self.data_format,
            self.slick,
        )
        relations = sorted({r for ds in questions.values() for r in judged_relations(ds)})
        return questions, exemplar_pools_by_relation(exemplar_rows, relations, self.slick), report, exemplars_from

    def run(self, engine: Engine | ChunkExecutor) -> Path:
        """Annotate every requested split with `engine` (or an executor's workers); write the folder; return it."""
        served = engine.info().get("dtype")  # server engines do not know theirs
        if served is not None and served != self.dtype:
            raise SlickError(f"the engine computes in {served}, but this annotation job is for {self.dtype}")
        questions, pools, report, exemplars_from = self.inputs
        relations = sorted(pools)
        config_name = self.config_name or config_name_for(self.model)
        out_dir = Path(self.output_dir)
        annotated = DatasetDict(
            {
                split + self.split_suffix: annotate_dataset(
                    ds,
                    {r: pools[r] for r in judged_relations(ds)},
                    engine,
                    self.slick,
                    out_dir / WORK_DIR / config_name / (split + self.split_suffix),
                    self.chunk_size,
                    desc=f"SliCK {split}",
                )
                for split, ds in questions.items()
            }
        )
        meta = {
            "model": {**engine.info(), "argument": self.model},
            "slick": self.slick.to_dict(),
            "dataset": {
                "source": self.dataset,
                "relations": relations,
                "reports": {", ".join(annotated): report},
                "exemplars_from": exemplars_from,
                **({"format": self.data_format.to_dict()} if self.data_format is not None else {}),
            },
            "exemplars": pools,
            "splits": {split: category_stats(ds) | {"job": self.signature()} for split, ds in annotated.items()},
            "slick_hf_version": __version__,
        }
        write_dataset_repo(out_dir, config_name, annotated, meta, render_annotation_section)
        logger.info("Annotated dataset written to %s (config %s)", out_dir, config_name)
        return out_dir


def _with_dtype(job: dict | None) -> dict | None:
    """A recorded job signature; those written before dtypes were recorded are float32's."""
    return job if job is None or "dtype" in job else {**job, "dtype": "float32"}


def judged_relations(ds: Dataset) -> set[str]:
    """Relations of the rows SliCK judges (those not marked `slick_skipped`)."""
    if SKIP_COLUMN not in ds.column_names:
        return set(ds["relation"][:])
    return {r for r, s in zip(ds["relation"][:], ds[SKIP_COLUMN][:], strict=True) if s is None}
