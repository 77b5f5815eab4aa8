"""The simulated e-commerce world: catalog, creatives, click logs and the oracle that knows the truth."""
