"""Offline evaluation: the prompt model's descriptions judged by the world's oracle (match rate, true CTR),
RM win rates, reward-hacking indicators, per-category uplift, plots and reports."""
