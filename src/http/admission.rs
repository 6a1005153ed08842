//! How much work is let in at once, so that a burst of writes cannot starve reads and the
//! snapshot: writes (dry runs included) take one of a few slots, wait briefly for one, then
//! answer 503 with `Retry-After`. Since only writes carry bodies, this also bounds the
//! memory of bodies in flight: slots × `http.max_body_bytes`.

use std::sync::Arc;
use std::time::Duration;

use actix_web::body::BoxBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::error::ApiError;

/// Writes processed at once. Writes serialise on the database anyway (each takes the
/// catalog's write lock), so more slots would only hold more pool connections idle in that
/// queue, which reads and the snapshot then lack.
pub struct WriteSlots {
    slots: Arc<Semaphore>,
    wait: Duration,
}

/// A write's turn; the next write may start when it is dropped.
pub type WriteTurn = OwnedSemaphorePermit;

impl WriteSlots {
    pub fn new(slots: usize, wait: Duration) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(slots.max(1))),
            wait,
        }
    }

    /// Waits up to the configured time for a slot.
    pub async fn turn(&self) -> Result<WriteTurn, ApiError> {
        match tokio::time::timeout(self.wait, self.slots.clone().acquire_owned()).await {
            Ok(Ok(turn)) => Ok(turn),
            _ => Err(ApiError::Busy(format!(
                "too many writes at once: none finished within {} ms; retry shortly",
                self.wait.as_millis()
            ))),
        }
    }
}

/// Middleware: every request that may write (any method but GET, HEAD and OPTIONS) waits
/// for a [`WriteTurn`] and holds it until its response is produced. Placed after
/// authentication, so only credentialed requests queue.
pub async fn one_of_few_writes(
    request: ServiceRequest,
    next: Next<BoxBody>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) {
        return next.call(request).await;
    }
    let state = super::state_of(&request);
    match state.writes.turn().await {
        Err(error) => Ok(request.error_response(error)),
        Ok(turn) => {
            let response = next.call(request).await;
            drop(turn);
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_write_waits_for_a_slot_then_is_refused_as_busy() {
        let slots = WriteSlots::new(1, Duration::from_secs(2));
        let first = slots.turn().await.unwrap();
        let refused = slots.turn().await.unwrap_err();
        assert!(matches!(refused, ApiError::Busy(_)), "{refused:?}");
        drop(first);
        let _turn = slots.turn().await.expect("a slot is free again");
    }
}
