"""PCPO: CTR-driven preference optimization of the prompt model (paper section 3.4, Algorithm 1)."""
