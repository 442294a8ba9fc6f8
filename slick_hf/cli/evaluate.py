"""`slick-hf evaluate --model M --annotated-dataset D`: exact match per SliCK category of any checkpoint."""

import json
from collections.abc import Sequence
from pathlib import Path

from slick_hf.cli.parsing import parse
from slick_hf.configs import EvaluateArguments, listed
from slick_hf.engines.factory import EngineArguments
from slick_hf.errors import SlickError

HELP = "score a model (folder or Hub id) per SliCK category on annotated test splits"


def main(argv: Sequence[str]) -> None:
    """Greedy answers on each split, the per-category table printed, results.json and predictions written."""
    from slick_hf.annotate.folder import load_annotated
    from slick_hf.engines.factory import make_engine
    from slick_hf.evaluate.scoring import evaluate_split
    from slick_hf.evaluate.table import print_results
    from slick_hf.hub import atomic_write_text, check_writable_dir
    from slick_hf.runs import RESULTS_FILE

    args, engine_args = parse((EvaluateArguments, EngineArguments), argv, "evaluate", dataset_config=True)
    out = Path(args.output_dir)
    check_writable_dir(out)
    annotated = load_annotated(args.annotated_dataset, args.dataset_config, split=None)
    splits = listed(args.splits)
    missing = [s for s in splits if s not in annotated]
    if missing:
        raise SlickError(f"{args.annotated_dataset} has no split {', '.join(missing)}; it has {', '.join(annotated)}")
    results: dict[str, dict] = {}
    with make_engine(args.model, engine_args) as engine:
        for split in splits:
            metrics, predictions = evaluate_split(
                engine, annotated[split], args.prompt_template, args.max_new_tokens, (args.idk_answer,)
            )
            predictions.to_json(out / f"predictions_{split}.jsonl")
            results[split] = metrics
        provenance = engine.info()
    record = {
        "model": args.model,
        "engine": provenance,
        "annotated_dataset": args.annotated_dataset,
        "annotation_config": args.dataset_config,
        "prompt_template": args.prompt_template,
        "results": results,
    }
    atomic_write_text(out / RESULTS_FILE, json.dumps(record, indent=2) + "\n")
    print_results({"model": results})
    print(f"evaluate: {out / RESULTS_FILE}")
