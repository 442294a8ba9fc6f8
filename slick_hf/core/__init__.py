"""Pure building blocks every stage shares: SliCK categories, answer normalisation, prompts, schemas."""
