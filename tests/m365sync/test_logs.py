"""JSON log lines carry the request id (web) and the unit id (a sync run)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from m365sync.errors import ValidationFailed
from m365sync.logs import JsonFormatter, configure_product_logging, unit_logging
from m365sync.web.app import RequestIds


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("m365sync.test")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield stream
    logger.removeHandler(handler)


def records(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_sync_runs_lines_carry_its_unit_id(lines: io.StringIO) -> None:
    log = logging.getLogger("m365sync.test")
    with unit_logging("unit-42"):
        log.info("page %d stored", 3)
    log.warning("outside")

    inside, outside = records(lines)
    assert inside["unit_id"] == "unit-42" and inside["message"] == "page 3 stored"
    assert inside["level"] == "INFO" and inside["logger"] == "m365sync.test"
    assert "unit_id" not in outside


def test_a_requests_lines_carry_its_request_id(lines: io.StringIO) -> None:
    app = FastAPI()

    @app.get("/work")
    def work() -> dict[str, str]:  # a route run in a worker thread
        logging.getLogger("m365sync.test").info("working")
        return {}

    with TestClient(RequestIds(app)) as client:  # type: ignore[arg-type]
        answer = client.get("/work", headers={"X-Request-ID": "req-1"})

    assert answer.headers["x-request-id"] == "req-1"
    assert records(lines)[0]["request_id"] == "req-1"


def test_an_unknown_log_format_says_which_are_known() -> None:
    with pytest.raises(ValidationFailed) as caught:
        configure_product_logging("INFO", "xml", logging.Formatter())
    assert caught.value.fix == "Set M365SYNC_LOG_FORMAT to text or json."
