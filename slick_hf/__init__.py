"""slick-hf: does this fine-tuning set teach the model facts it does not know?

SliCK (Gekhman et al. 2024) knowledge categories as Hugging Face datasets, TRL recipes and an
`evaluate` metric.
"""

__version__ = "0.2.0"
