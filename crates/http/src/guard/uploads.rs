//! The bound on large uploads in flight: a results body may be 16 MiB, and each one is
//! held (as bytes, then as typed results) until its request ends, so a process serves
//! only [`LARGE_UPLOADS`] of them at once and answers the next with 503 + `Retry-After`.

use std::time::Duration;

use actix_web::HttpMessage as _;
use actix_web::dev::ServiceRequest;
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::error::{ApiError, ErrorCode};
use crate::extract::{BODY_LIMIT, BodyLimit, declared_length};

/// Large uploads one process takes at once. Worst case per process: this many bodies at
/// the route's cap, each with its decoded value (docs/SECURITY.md, "Memory per request").
pub const LARGE_UPLOADS: usize = 4;

/// How long a large upload waits for a turn before it is told to come back.
const WAIT: Duration = Duration::from_secs(2);

static PERMITS: Semaphore = Semaphore::const_new(LARGE_UPLOADS);

/// Held in the request's extensions for as long as the request lives.
struct Turn(#[allow(dead_code)] SemaphorePermit<'static>);

/// Takes a turn for `req` when it may carry a body above the ordinary [`BODY_LIMIT`]
/// (its route allows more, and it declares more or no length at all); ordinary bodies
/// never wait.
///
/// # Errors
/// 503 with `Retry-After` when no turn comes free within a short wait.
pub(super) async fn take_turn(req: &ServiceRequest) -> Result<(), ApiError> {
    let cap = req.app_data::<BodyLimit>().map_or(BODY_LIMIT, |l| l.0);
    let declared = declared_length(req.headers());
    if cap <= BODY_LIMIT || declared.is_some_and(|n| n <= BODY_LIMIT) {
        return Ok(());
    }
    let busy = || {
        ApiError::new(
            ErrorCode::ServiceUnavailable,
            "the server is taking as many large uploads as it can",
        )
        .hint("Send the results again after the time in Retry-After.")
        .retry_after(1)
    };
    let permit = tokio::time::timeout(WAIT, PERMITS.acquire())
        .await
        .map_err(|_| busy())?
        .map_err(|_| busy())?;
    req.extensions_mut().insert(Turn(permit));
    Ok(())
}
