"""`slick-hf filter ANNOTATED`: a user's annotated set, in its own schema, without its Unknown examples."""

import json
from collections.abc import Sequence
from pathlib import Path

from slick_hf.cli.parsing import parse
from slick_hf.configs import FilterArguments, listed
from slick_hf.errors import SlickError

HELP = "a user's annotated set in its own schema without its Unknown rows (or relabelled IDK)"


def annotation_meta(source: str, config: str) -> dict:
    """The `slick_annotation.json` of one config of an annotated dataset (a folder or a Hub id)."""
    from slick_hf.hub import META_FILE

    path = Path(source) / config / META_FILE
    if not Path(source).is_dir():
        from huggingface_hub import hf_hub_download

        try:
            path = Path(hf_hub_download(source, f"{config}/{META_FILE}", repo_type="dataset"))
        except Exception:  # not found, offline: say what is missing
            raise SlickError(f"{source} config {config!r} has no {META_FILE}: annotate it with slick-hf") from None
    if not path.is_file():
        raise SlickError(f"{source} config {config!r} has no {META_FILE}: annotate it with slick-hf")
    return json.loads(path.read_text())


def only_config(source: str) -> str:
    """The one annotation config of a local folder; SlickError naming them when there are several or none."""
    from slick_hf.hub import META_FILE

    configs = sorted(p.parent.name for p in Path(source).glob(f"*/{META_FILE}"))
    if len(configs) != 1:
        raise SlickError(f"{source} has configs {', '.join(configs) or '(none)'}: pick one with --config")
    return configs[0]


def main(argv: Sequence[str]) -> None:
    """Filter the annotated splits, write OUT (Hub-style, with a card), push if asked."""
    from slick_hf.annotate.folder import load_annotated
    from slick_hf.hub import check_writable_dir, push_folder
    from slick_hf.variants.filter import filter_annotated, write_filtered_folder

    (args,) = parse((FilterArguments,), argv, "filter", positionals=("source",), dataset_config=True)
    config = args.dataset_config or only_config(args.source)
    if config == "default":
        raise SlickError("the annotation config is named 'default', the name of the filtered set's config")
    drop, splits = listed(args.drop) or [], listed(args.splits) or []
    meta = annotation_meta(args.source, config)
    check_writable_dir(Path(args.output_dir))
    annotated = load_annotated(args.source, config, split=None)
    data_format = meta.get("dataset", {}).get("format")
    result = filter_annotated(
        annotated, splits, drop, args.relabel_idk, args.idk_answer, data_format, args.min_stability
    )
    model = meta.get("model", {})
    filter_meta = {
        "source": args.source,
        "config": config,
        "model": f"{model.get('model_id')}@{model.get('model_revision')}",
        "format": result.format,
        "drop": drop,
        "relabel_idk": args.relabel_idk,
        "idk_answer": args.idk_answer,
        "splits": splits,
        "min_stability": args.min_stability,
        "counts": result.counts,
    }
    out = write_filtered_folder(Path(args.output_dir), result, filter_meta)
    for split in splits:
        print(f"{split}: {len(annotated[split])} -> {len(result.user[split])} rows")
    print(f"filtered dataset: {out}")
    if args.push_to_hub:
        print(f"pushed: {push_folder(out, args.push_to_hub, 'dataset')}")
