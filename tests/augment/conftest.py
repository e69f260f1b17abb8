import pytest


@pytest.fixture(params=["cpu", "gpu"])
def backend(request):
    return request.param
