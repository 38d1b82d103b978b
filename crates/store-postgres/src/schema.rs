//! The diesel view of the tables in `migrations/`, written by hand to match them.
//!
//! Keep this file in step with the migrations: a column added there must be added here,
//! with the same nullability. The contract suite exercises every column, so a mismatch
//! fails it on the first row read.

diesel::table! {
    /// Tenants (`tenants_name_key`: names unique platform-wide).
    tenants (id) {
        /// Tenant id (UUID v7).
        id -> Uuid,
        /// Display name.
        name -> Text,
        /// Creation time.
        created_at -> Timestamptz,
    }
}

diesel::table! {
    /// Environments of a tenant (`environments_tenant_name_key`).
    environments (id) {
        /// Environment id.
        id -> Uuid,
        /// Owning tenant.
        tenant_id -> Uuid,
        /// Name, unique per tenant.
        name -> Text,
        /// Creation time.
        created_at -> Timestamptz,
    }
}

diesel::table! {
    /// Users and service accounts.
    principals (id) {
        /// Principal id.
        id -> Uuid,
        /// Owning tenant.
        tenant_id -> Uuid,
        /// `user` or `service_account`.
        kind -> Text,
        /// A user's email; `NULL` for service accounts.
        email -> Nullable<Text>,
        /// A user's display name or a service account's name.
        name -> Nullable<Text>,
        /// `admin`, `operator` or `viewer`.
        role -> Text,
        /// Whether the principal is disabled.
        disabled -> Bool,
        /// Creation time.
        created_at -> Timestamptz,
    }
}

diesel::table! {
    /// API token metadata (never secrets).
    api_tokens (id) {
        /// Token id.
        id -> Uuid,
        /// Owning tenant.
        tenant_id -> Uuid,
        /// Owner; `NULL` once the owner was deleted.
        owner_id -> Nullable<Uuid>,
        /// Display name.
        name -> Text,
        /// `admin`, `operator` or `viewer`.
        role -> Text,
        /// Whether the token reaches every environment.
        all_environments -> Bool,
        /// The environments it reaches when not all (a CHECK forbids NULL elements).
        environment_ids -> Array<Uuid>,
        /// Own rate limit, if any.
        rate_limit_per_minute -> Nullable<Int4>,
        /// Expiry.
        expires_at -> Timestamptz,
        /// Creation time.
        created_at -> Timestamptz,
        /// Last recorded use.
        last_used_at -> Nullable<Timestamptz>,
        /// Revocation time.
        revoked_at -> Nullable<Timestamptz>,
        /// Non-secret hint of the current secret.
        hint -> Text,
    }
}

diesel::table! {
    /// SHA-256 digests of API token secrets, current and rotated-out.
    api_token_secrets (digest) {
        /// The digest (32 bytes).
        digest -> Bytea,
        /// The token it belongs to.
        token_id -> Uuid,
        /// When a rotated-out secret stops working; `NULL` for the current one.
        valid_until -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    /// The audit log.
    audit_events (id) {
        /// Event id.
        id -> Uuid,
        /// Owning tenant.
        tenant_id -> Uuid,
        /// `token`, `platform` or `public`.
        actor_kind -> Text,
        /// The acting token, for `token` actors.
        actor_id -> Nullable<Uuid>,
        /// `noun.verb`.
        action -> Text,
        /// The thing acted on.
        target_id -> Nullable<Uuid>,
        /// When it happened.
        at -> Timestamptz,
        /// Extra non-secret facts.
        details -> Jsonb,
    }
}

diesel::joinable!(environments -> tenants (tenant_id));
diesel::joinable!(principals -> tenants (tenant_id));
diesel::joinable!(api_tokens -> tenants (tenant_id));
diesel::joinable!(api_token_secrets -> api_tokens (token_id));
diesel::joinable!(audit_events -> tenants (tenant_id));

diesel::allow_tables_to_appear_in_same_query!(
    tenants,
    environments,
    principals,
    api_tokens,
    api_token_secrets,
    audit_events,
);
