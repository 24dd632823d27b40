"""Errors are problem documents; the OpenAPI document is 3.1 and the docs page is served."""

from __future__ import annotations

from typing import Any


def test_unknown_route_and_method_are_problems(server: Any) -> None:
    api = server.account()
    r = api.get("/v1/nothing")
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
    assert r.json()["status"] == 404 and r.json()["instance"] == "/v1/nothing"
    r = api.request("PATCH", "/v1/numbers")
    assert r.status_code == 405 and r.json()["title"] == "Method Not Allowed"


def test_openapi_and_docs(server: Any) -> None:
    spec = server.client.get("/openapi.json").json()
    assert spec["openapi"].startswith("3.1")
    assert "bearer" in str(spec["components"]["securitySchemes"]).lower()
    assert "Problem" in spec["components"]["schemas"]
    assert server.client.get("/docs").status_code == 200
