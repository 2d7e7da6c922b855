use std::future::Future;
use std::pin::Pin;

use crate::ReadinessCheck;

/// The error type of component tasks.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A long-running task of a component (a consumer, a relay); ending with `Err` stops the process.
pub type ComponentTask = Pin<Box<dyn Future<Output = Result<(), BoxError>> + Send>>;

/// What one component contributes to the process: routes, gRPC services, tasks and probes.
/// The binary owns the listeners and the lifecycle; components never bind ports themselves.
#[derive(Default)]
pub struct ComponentParts {
    /// Routes merged into the single HTTP listener.
    pub router: Option<axum::Router>,
    /// Services added to the single gRPC listener.
    pub grpc: GrpcServices,
    /// Background tasks, each with a name for logs.
    pub tasks: Vec<(&'static str, ComponentTask)>,
    /// Readiness checks of the component's dependencies.
    pub readiness: Vec<ReadinessCheck>,
}

impl ComponentParts {
    /// Adds a gRPC service; its name (for health, reflection and routing) comes from tonic's
    /// `NamedService`, so the three cannot drift apart.
    pub fn add_grpc_service<S>(&mut self, service: S)
    where
        S: tower::Service<http::Request<tonic::body::Body>, Error = std::convert::Infallible>
            + tonic::server::NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Response: axum::response::IntoResponse,
        S::Future: Send + 'static,
    {
        self.grpc.names.push(S::NAME);
        self.grpc.routes.add_service(service);
    }

    /// Adds a named background task.
    pub fn spawn(
        &mut self,
        name: &'static str,
        task: impl Future<Output = Result<(), BoxError>> + Send + 'static,
    ) {
        self.tasks.push((name, Box::pin(task)));
    }
}

/// The gRPC services of a component, each with its name.
#[derive(Default)]
pub struct GrpcServices {
    routes: tonic::service::RoutesBuilder,
    names: Vec<&'static str>,
}

impl GrpcServices {
    /// The full names of the services (`switchboard.contacts.v1.ContactsService`, …).
    pub fn names(&self) -> Vec<&'static str> {
        self.names.clone()
    }

    /// The services as one axum router (each under `/<service name>/`).
    pub fn into_axum_router(self) -> axum::Router {
        self.routes.routes().into_axum_router()
    }
}
