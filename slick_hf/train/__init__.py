"""Fine-tuning with TRL's SFTTrainer: EARLY_STOP on dev exact match, CONVERGENCE, training dynamics."""
