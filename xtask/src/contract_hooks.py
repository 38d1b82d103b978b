"""Schemathesis hooks of `cargo xtask contract` (loaded through SCHEMATHESIS_HOOKS).

A generated Idempotency-Key that is well formed is replaced by a fresh one per request,
as a client makes one per operation: the fuzzer draws the same few values for every
operation, and the server rightly answers a key reused for a different request with
422 IDEMPOTENCY_KEY_REUSED (tested in crates/http/tests/guards.rs). Malformed keys are
left alone, so their 422 is still checked against the document.

Operations that can destroy or throttle the fuzzer's own credentials (revoking,
rotating or re-limiting tokens, demoting, disabling or deleting principals, deleting
fleets, agents and environments, capping token lifetimes by the tenant's token policy,
which would turn later schema-valid requests into 422s) run with a throwaway token of a
second tenant
instead: the fuzzer still calls them with ids it saw (the other tenant's, so they must
answer 404) and with the throwaway tenant's own resources, which it may destroy.
"""

import os
import uuid

import schemathesis


def _well_formed(key):
    return isinstance(key, str) and 1 <= len(key) <= 255 and all(" " <= c <= "~" for c in key)


MAIN = os.environ.get("FLEETPASS_CONTRACT_TOKEN", "")
THROWAWAY = os.environ.get("FLEETPASS_CONTRACT_THROWAWAY_TOKEN", "")

DESTRUCTIVE = {
    ("PATCH", "/api/admin/tokens/{id}"),
    ("DELETE", "/api/admin/tokens/{id}"),
    ("POST", "/api/admin/tokens/{id}/rotate"),
    ("PATCH", "/api/admin/users/{id}"),
    ("DELETE", "/api/admin/users/{id}"),
    ("PATCH", "/api/admin/service-accounts/{id}"),
    ("DELETE", "/api/admin/service-accounts/{id}"),
    ("DELETE", "/api/admin/environments/{id}"),
    ("DELETE", "/tenant/discovery/fleets/{fleet_id}"),
    ("DELETE", "/tenant/discovery/agents/{agent_id}"),
    ("PUT", "/api/admin/token-policy"),
}


def _swap(container, name):
    if container and MAIN and THROWAWAY:
        for key in list(container):
            if key.lower() == name and isinstance(container[key], str):
                container[key] = container[key].replace(MAIN, THROWAWAY)


@schemathesis.hook
def before_call(context, case, kwargs):
    headers = case.headers
    for name in list(headers or {}):
        if name.lower() == "idempotency-key" and _well_formed(headers[name]):
            headers[name] = str(uuid.uuid4())
    if (case.operation.method.upper(), case.operation.path) in DESTRUCTIVE:
        _swap(headers, "authorization")
        _swap(headers, "x-api-key")
        _swap(case.query, "api_key")
