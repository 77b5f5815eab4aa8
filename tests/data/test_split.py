"""Train/test split by product: exact size, deterministic, independent of input order."""

from caig.data.split import held_out_products as held_out


def test_split_size_and_determinism():
    products = [f"P{i:03d}" for i in range(50)]
    test = held_out(products, 0.2, seed=0)
    assert len(test) == 10 and test <= set(products)
    assert held_out(reversed(products), 0.2, seed=0) == test
    assert held_out(products * 2, 0.2, seed=0) == test  # duplicates do not matter
    assert held_out(products, 0.2, seed=1) != test


def test_edge_cases_keep_both_sides_non_empty():
    assert held_out(["P1", "P2"], 0.01, seed=0) != set()  # at least one test product
    assert len(held_out(["P1", "P2"], 0.99, seed=0)) == 1  # at least one train product
    assert held_out(["P1"], 0.5, seed=0) == set()
    assert held_out(["P1", "P2", "P3"], 0.0, seed=0) == set()
