"""Questions in one schema (`slick_hf.core.schema.QUESTION_FEATURES`): the built-in geo set,
EntityQuestions, and users' own datasets."""

from slick_hf.data.load import DATASETS, LoadReport, load_questions, relation_sets, resolve_relations

__all__ = ["DATASETS", "LoadReport", "load_questions", "relation_sets", "resolve_relations"]
