-- Reverts the foundation migration: drops every table it created, dependents first.
DROP TABLE audit_events;
DROP TABLE api_token_secrets;
DROP TABLE api_tokens;
DROP TABLE principals;
DROP TABLE environments;
DROP TABLE tenants;
