"""Generated creatives for the catalog: the trained prompt model writes, the renderer paints, the RM ranks.

``caig generate`` (``caig.generate.run.generate_creatives``): for each chosen product the PM writes K
candidate background descriptions, each is rendered (SD1.5 + ControlNet inpainting in production, the
procedural renderer locally) with the safety check and the AI-generated label, the frozen RM ranks the
candidates (both orders, Bradley-Terry), and the best M are registered as creatives of the data directory
with their provenance and RM priors (``caig.generate.register``).
"""
