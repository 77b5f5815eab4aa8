"""Data stage: click-log ingestion, validation, and the reward model's and pre-training's data."""
