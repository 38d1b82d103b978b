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
        /// The token policy's longest API token lifetime, 1-365 days; NULL: none.
        max_token_days -> Nullable<Int4>,
        /// The token policy's longest enrollment token lifetime, 1-720 hours; NULL: none.
        max_enrollment_hours -> Nullable<Int4>,
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
        /// Networks it may be used from (CIDR text); empty: anywhere.
        allowed_cidrs -> Array<Text>,
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
        /// `token`, `platform`, `public`, `agent` or `system`.
        actor_kind -> Text,
        /// The acting token or agent, for `token` and `agent` actors.
        actor_id -> Nullable<Uuid>,
        /// `noun.verb`.
        action -> Text,
        /// The thing acted on.
        target_id -> Nullable<Uuid>,
        /// When it happened.
        at -> Timestamptz,
        /// Extra non-secret facts.
        details -> Jsonb,
        /// The environments the event concerns; `NULL` for a tenant-wide event.
        environment_ids -> Nullable<Array<Uuid>>,
    }
}

diesel::table! {
    /// Fleets: sets of agents in one environment.
    fleets (id) {
        /// Fleet id.
        id -> Uuid,
        /// Owning tenant.
        tenant_id -> Uuid,
        /// The environment it lives in (same tenant, by a composite foreign key).
        environment_id -> Uuid,
        /// Display name.
        name -> Text,
        /// Creation time.
        created_at -> Timestamptz,
    }
}

diesel::table! {
    /// Enrollment tokens of fleets (metadata and the digest of the secret).
    enrollment_tokens (id) {
        /// Token id.
        id -> Uuid,
        /// Owning tenant.
        tenant_id -> Uuid,
        /// The fleet agents enroll into (deleted with it).
        fleet_id -> Uuid,
        /// SHA-256 digest of the secret (32 bytes, unique).
        digest -> Bytea,
        /// Enrollments allowed, 1-1000.
        max_uses -> Int4,
        /// Enrollments had, 0-`max_uses`.
        uses -> Int4,
        /// Expiry.
        expires_at -> Timestamptz,
        /// Issue time.
        created_at -> Timestamptz,
        /// Revocation time.
        revoked_at -> Nullable<Timestamptz>,
        /// Non-secret hint of the secret.
        hint -> Text,
        /// Labels every agent it enrolls carries (a JSON object of strings).
        labels -> Jsonb,
        /// Networks agents may enroll from with it (CIDR text); empty: anywhere.
        allowed_cidrs -> Array<Text>,
    }
}

diesel::table! {
    /// Enrolled agents.
    agents (id) {
        /// Agent id.
        id -> Uuid,
        /// Owning tenant.
        tenant_id -> Uuid,
        /// Its fleet (deleted with it).
        fleet_id -> Uuid,
        /// Host name.
        hostname -> Text,
        /// Platform.
        platform -> Text,
        /// Software version, as last reported.
        agent_version -> Nullable<Text>,
        /// SHA-256 digest of the agent's secret (32 bytes, unique).
        secret_digest -> Bytea,
        /// Enrollment time.
        enrolled_at -> Timestamptz,
        /// Last heartbeat.
        last_seen_at -> Nullable<Timestamptz>,
        /// Revocation time.
        revoked_at -> Nullable<Timestamptz>,
        /// Labels (a JSON object of strings).
        labels -> Jsonb,
    }
}

diesel::table! {
    /// JWT signing keys, platform-wide (`signing_keys_pkey`: kids unique).
    signing_keys (kid) {
        /// Key id.
        kid -> Text,
        /// The private key, sealed by the service.
        sealed_private_key -> Bytea,
        /// The raw public key.
        public_key -> Bytea,
        /// Creation time.
        created_at -> Timestamptz,
        /// Retirement time.
        retired_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    /// Scans requested of fleets.
    scans (id) {
        /// Scan id.
        id -> Uuid,
        /// Owning tenant.
        tenant_id -> Uuid,
        /// The fleet that runs it (deleted with it).
        fleet_id -> Uuid,
        /// The fleet's environment, copied at request time.
        environment_id -> Uuid,
        /// `inventory`, `ports`, `software` or `compliance`.
        scenario -> Text,
        /// Run-time limit in minutes, 1-1440; `NULL` for the domain's default.
        max_duration_minutes -> Nullable<Int4>,
        /// Not to be claimed before this.
        not_before -> Nullable<Timestamptz>,
        /// Not to be claimed after this.
        not_after -> Nullable<Timestamptz>,
        /// Most assets the results may hold, 1-100 000.
        max_assets -> Nullable<Int4>,
        /// `queued`, `running`, `completed`, `failed` or `expired`.
        status -> Text,
        /// Request time.
        requested_at -> Timestamptz,
        /// The claiming agent (no foreign key; see the migration).
        claimed_by -> Nullable<Uuid>,
        /// Claim time.
        claimed_at -> Nullable<Timestamptz>,
        /// Completion, failure or expiry time.
        finished_at -> Nullable<Timestamptz>,
        /// The target in its wire form (`"any"`, `"all"`, `{"agents": …}`, `{"labels": …}`).
        target -> Jsonb,
    }
}

diesel::table! {
    /// The parts of fan-out scans, one per targeted agent.
    scan_parts (scan_id, agent_id) {
        /// Its scan (deleted with it).
        scan_id -> Uuid,
        /// The agent that runs it.
        agent_id -> Uuid,
        /// `queued`, `running`, `completed`, `failed` or `cancelled`.
        status -> Text,
        /// Claim time.
        claimed_at -> Nullable<Timestamptz>,
        /// End time.
        finished_at -> Nullable<Timestamptz>,
        /// Why it failed.
        failure -> Nullable<Text>,
        /// The agent's results (JSON text) once completed.
        results -> Nullable<Text>,
    }
}

diesel::table! {
    /// The artifacts of completed scans.
    scan_artifacts (scan_id) {
        /// The scan (deleted with it).
        scan_id -> Uuid,
        /// The bundle, byte for byte as hashed (text, never jsonb).
        bundle_json -> Text,
        /// SHA-256 of the bundle, lowercase hex.
        bundle_sha256 -> Text,
        /// The report.
        report -> Jsonb,
        /// The passport, a compact JWS.
        passport -> Text,
    }
}

diesel::table! {
    /// Share links of scans (metadata and the digest of the token).
    share_links (id) {
        /// Link id.
        id -> Uuid,
        /// Owning tenant.
        tenant_id -> Uuid,
        /// The scan it shares (deleted with it).
        scan_id -> Uuid,
        /// SHA-256 digest of the token (32 bytes, unique).
        digest -> Bytea,
        /// `report`, `bundle` or `passport`.
        scope -> Text,
        /// Label.
        label -> Nullable<Text>,
        /// Expiry.
        expires_at -> Timestamptz,
        /// Accesses allowed, 1-10 000; `NULL` for unlimited.
        max_accesses -> Nullable<Int4>,
        /// Accesses had, 0-`max_accesses`.
        access_count -> Int4,
        /// Last access.
        last_accessed_at -> Nullable<Timestamptz>,
        /// Revocation time.
        revoked_at -> Nullable<Timestamptz>,
        /// Creation time.
        created_at -> Timestamptz,
        /// Non-secret hint of the token.
        hint -> Text,
    }
}

diesel::table! {
    /// Schedules: scan requests repeated every `interval_minutes`.
    schedules (id) {
        /// Schedule id.
        id -> Uuid,
        /// Owning tenant.
        tenant_id -> Uuid,
        /// The fleet whose scans it requests (deleted with it).
        fleet_id -> Uuid,
        /// The fleet's environment, copied at creation.
        environment_id -> Uuid,
        /// `inventory`, `ports`, `software` or `compliance`.
        scenario -> Text,
        /// Run-time limit of each scan in minutes, 1-1440; `NULL` for the default.
        max_duration_minutes -> Nullable<Int4>,
        /// Most assets each scan's results may hold, 1-100 000.
        max_assets -> Nullable<Int4>,
        /// How often it runs, 15-10 080 minutes.
        interval_minutes -> Int4,
        /// Whether it runs at all.
        enabled -> Bool,
        /// When it next enqueues a scan.
        next_run_at -> Timestamptz,
        /// When it last enqueued one.
        last_run_at -> Nullable<Timestamptz>,
        /// Creation time.
        created_at -> Timestamptz,
    }
}

diesel::joinable!(environments -> tenants (tenant_id));
diesel::joinable!(principals -> tenants (tenant_id));
diesel::joinable!(api_tokens -> tenants (tenant_id));
diesel::joinable!(api_token_secrets -> api_tokens (token_id));
diesel::joinable!(audit_events -> tenants (tenant_id));
diesel::joinable!(fleets -> tenants (tenant_id));
diesel::joinable!(fleets -> environments (environment_id));
diesel::joinable!(enrollment_tokens -> fleets (fleet_id));
diesel::joinable!(agents -> fleets (fleet_id));
diesel::joinable!(scans -> fleets (fleet_id));
diesel::joinable!(scan_artifacts -> scans (scan_id));
diesel::joinable!(scan_parts -> scans (scan_id));
diesel::joinable!(share_links -> scans (scan_id));
diesel::joinable!(schedules -> fleets (fleet_id));

diesel::allow_tables_to_appear_in_same_query!(
    tenants,
    environments,
    principals,
    api_tokens,
    api_token_secrets,
    audit_events,
    fleets,
    enrollment_tokens,
    agents,
    signing_keys,
    scans,
    scan_artifacts,
    scan_parts,
    share_links,
    schedules,
);
