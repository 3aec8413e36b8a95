"""Property-based fuzzing of the push API from its own OpenAPI document (schemathesis) against
a real `lianxin serve`: whatever the body, headers and query, no answer is a server error."""

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from lianxin.ingest.api.views import SCHEMA_PATH
from tests.ingest.test_api_server import Site

schema = schemathesis.openapi.from_path(SCHEMA_PATH)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    site = Site(tmp_path_factory.mktemp("fuzz") / "home", meters=3)
    site.start(threads=2)
    yield site
    site.stop()


@pytest.mark.once
@schema.parametrize()
@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,  # the same examples on every run: a failure can be replayed
)
def test_no_input_makes_the_push_api_fail(case, server):
    from schemathesis.checks import not_a_server_error

    response = case.call(
        base_url=f"http://127.0.0.1:{server.port}/api",
        headers={"Authorization": f"Bearer {server.token}"},
        timeout=30,
    )
    # Every answer is JSON with a status the document names; never a 5xx but the documented 503.
    assert response.status_code < 500, (response.status_code, response.text[:300])
    headers = {k.lower(): v for k, v in response.headers.items()}
    content_type = headers["content-type"]
    content_type = content_type[0] if isinstance(content_type, list) else content_type
    assert content_type.startswith("application/json"), (response.status_code, content_type)
    case.validate_response(response, checks=[not_a_server_error])
