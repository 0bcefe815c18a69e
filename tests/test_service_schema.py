"""Schema-driven tests: schemathesis generates requests from the service's own /openapi.json.

Whatever it sends (valid, odd or invalid), the service must never answer 500, and
every answer must match the documented status codes, content types and bodies.
Examples are bounded (and derandomised) so this runs in well under a minute.
"""
from __future__ import annotations

import httpx
import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)


@pytest.fixture(scope="module", autouse=True)
def hypothesis_home(tmp_path_factory):
    """Hypothesis keeps caches in ./.hypothesis by default: here they go to a temp folder instead."""
    from hypothesis.configuration import set_hypothesis_home_dir

    set_hypothesis_home_dir(tmp_path_factory.mktemp("hypothesis"))
    yield
    set_hypothesis_home_dir(None)


@pytest.fixture(scope="module")
def fuzz_service(module_services):
    svc = module_services("--models", "FAKE-VISUAL", "--workers", "1", "--queue-size", "10000", "--max-upload-mb", "1",
                          name="fuzz")
    svc.key = svc.new_key("fuzz")
    return svc


@pytest.fixture(scope="module")
def fuzz_schema(fuzz_service):
    schema_doc = httpx.get(fuzz_service.url + "/openapi.json").json()
    return schemathesis.openapi.from_dict(schema_doc)


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_no_generated_request_gets_a_500(fuzz_service, fuzz_schema, mode):
    """Every operation, valid data then invalid data (schemathesis' own pytest plugin predates pytest 9)."""
    headers = {"Authorization": f"Bearer {fuzz_service.key}"}
    operations = [result.ok() for result in fuzz_schema.get_all_operations()]
    exercised = 0
    for operation in operations:
        @given(case=operation.as_strategy(schemathesis.GenerationMode(mode)))
        @settings(max_examples=12, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def check(case):
            case.call_and_validate(base_url=fuzz_service.url, headers=headers, checks=CHECKS, timeout=30)

        try:
            check()
        except Unsatisfiable:
            assert mode == "negative"  # an operation without parameters has no invalid form
        else:
            exercised += 1
    assert exercised >= (8 if mode == "positive" else 5)
