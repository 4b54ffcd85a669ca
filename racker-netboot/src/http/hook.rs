//! A hook the HTTP server asks first for the node-facing endpoints
//! (`/ipxe`, `/ignition`, `/generic`, `/metadata`): when it answers, its
//! answer is served; otherwise the request goes on to racker's own
//! handlers. The matchbox-compatible gRPC store (feature `grpc`,
//! docs/lokomotive.md) plugs in here, so what Terraform stored wins over
//! racker's generated Flatcar installer profile.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderValue, Response, StatusCode, header};
use axum::middleware::Next;

use super::HttpContent;

/// The endpoints a [`BootHook`] is asked about.
pub const HOOK_ENDPOINTS: [&str; 4] = ["/ipxe", "/ignition", "/generic", "/metadata"];

/// An answer of a [`BootHook`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookReply {
    /// HTTP status.
    pub status: u16,
    /// `Content-Type` header.
    pub content_type: &'static str,
    /// Body.
    pub body: Vec<u8>,
}

/// Answers node-facing boot requests before racker's own handlers.
pub trait BootHook: Send + Sync + std::fmt::Debug {
    /// The reply for `endpoint` (one of [`HOOK_ENDPOINTS`]) with the
    /// request's query `labels` and its raw query string, or `None` to let
    /// racker's own handler answer.
    fn answer(
        &self,
        endpoint: &str,
        labels: &BTreeMap<String, String>,
        raw_query: &str,
    ) -> Option<HookReply>;
}

impl HttpContent {
    /// Ask `hook` first for [`HOOK_ENDPOINTS`].
    pub fn with_hook(mut self, hook: Arc<dyn BootHook>) -> Self {
        self.hook = Some(hook);
        self
    }
}

/// The axum middleware around the router.
pub(super) async fn layer(
    State(hook): State<Arc<dyn BootHook>>,
    req: Request,
    next: Next,
) -> Response<Body> {
    let path = req.uri().path();
    if HOOK_ENDPOINTS.contains(&path) {
        let labels = Query::<BTreeMap<String, String>>::try_from_uri(req.uri())
            .map(|q| q.0)
            .unwrap_or_default();
        let raw = req.uri().query().unwrap_or("");
        if let Some(reply) = hook.answer(path, &labels, raw) {
            let mut r = Response::new(Body::from(reply.body));
            *r.status_mut() =
                StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(reply.content_type),
            );
            return r;
        }
    }
    next.run(req).await
}
