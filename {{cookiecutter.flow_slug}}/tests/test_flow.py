"""Tests for the flow and its tasks. This file is yours: test your own tasks here."""

from __future__ import annotations

from prefect.executors import LocalExecutor

from {{ cookiecutter.__package }}.flow import flow
from {{ cookiecutter.__package }}.tasks import extract, load, transform


def test_transform_adds_tax() -> None:
    assert transform.run({"amount": 10}) == {"amount": 10, "amount_with_tax": 11.5}


def test_flow_loads_every_extracted_row() -> None:
    state = flow.run(
        parameters={"day": "2024-01-31"}, executor=LocalExecutor(), run_on_schedule=False
    )

    assert state.is_successful()
    assert state.result[flow.get_tasks(name=load.name)[0]].result == 3
    rows = state.result[flow.get_tasks(name=extract.name)[0]].result
    assert {row["day"] for row in rows} == {"2024-01-31"}


def test_flow_runs_on_its_configured_executor() -> None:
    state = flow.run(run_on_schedule=False)

    assert state.is_successful(), state.message
