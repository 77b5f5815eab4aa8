"""The store circuit of the selector's KServe models: which store failures keep it from asking again."""

from __future__ import annotations

import pytest

from caig.bandit.types import StoreFull, StoreUnavailable
from caig.serving.selector_models import StoreCircuit


def failing(error: Exception):
    def work() -> None:
        raise error

    return work


def test_an_unavailable_store_opens_the_circuit_for_its_time():
    circuit, asked = StoreCircuit(open_s=60), []
    with pytest.raises(StoreUnavailable):
        circuit.call(failing(StoreUnavailable()))
    assert not circuit.closed
    with pytest.raises(StoreUnavailable):  # refused without asking the store
        circuit.call(asked.append, "read")
    assert asked == []


def test_a_full_store_refuses_the_write_but_keeps_reads_and_readiness():
    circuit, asked = StoreCircuit(open_s=60), []
    with pytest.raises(StoreFull):
        circuit.call(failing(StoreFull()))
    assert circuit.closed
    circuit.call(asked.append, "read")
    assert asked == ["read"]
