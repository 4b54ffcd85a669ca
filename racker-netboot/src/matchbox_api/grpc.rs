//! The gRPC services (tonic) over the [`Store`], served with TLS that
//! requires a client certificate signed by racker's CA.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};
use tonic::{Request, Response, Status};

use super::MatchboxApiError;
use super::model::{Group, NetBoot, Profile};
use super::store::{Store, TemplateKind};
use super::tls::CertPaths;

#[allow(
    missing_docs,
    unreachable_pub,
    clippy::all,
    clippy::pedantic,
    clippy::unwrap_used
)]
pub(crate) mod pb {
    pub mod storagepb {
        tonic::include_proto!("storagepb");
    }
    pub mod serverpb {
        tonic::include_proto!("serverpb");
    }
    pub mod rpcpb {
        tonic::include_proto!("rpcpb");
    }
}

use pb::rpcpb::generic_server::{Generic, GenericServer};
use pb::rpcpb::groups_server::{Groups, GroupsServer};
use pb::rpcpb::ignition_server::{Ignition, IgnitionServer};
use pb::rpcpb::profiles_server::{Profiles, ProfilesServer};
use pb::rpcpb::select_server::{Select, SelectServer};
use pb::serverpb as s;
use pb::storagepb as st;

/// The services, sharing one store.
#[derive(Debug, Clone)]
struct Api {
    store: Arc<Store>,
}

fn status(e: MatchboxApiError) -> Status {
    match e {
        MatchboxApiError::Invalid { .. } => Status::invalid_argument(e.to_string()),
        _ => Status::internal(e.to_string()),
    }
}

fn not_found(what: &str, id: &str) -> Status {
    Status::not_found(format!("{what} {id:?} not found"))
}

fn profile_from_pb(p: st::Profile) -> Profile {
    Profile {
        id: p.id,
        name: p.name,
        ignition_id: p.ignition_id,
        cloud_id: p.cloud_id,
        boot: p.boot.map(|b| NetBoot {
            kernel: b.kernel,
            initrd: b.initrd,
            args: b.args,
        }),
        generic_id: p.generic_id,
    }
}

fn profile_to_pb(p: Profile) -> st::Profile {
    st::Profile {
        id: p.id,
        name: p.name,
        ignition_id: p.ignition_id,
        cloud_id: p.cloud_id,
        boot: p.boot.map(|b| st::NetBoot {
            kernel: b.kernel,
            initrd: b.initrd,
            args: b.args,
        }),
        generic_id: p.generic_id,
    }
}

fn group_from_pb(g: st::Group) -> Result<Group, Status> {
    let metadata = if g.metadata.is_empty() {
        serde_json::Map::new()
    } else {
        serde_json::from_slice(&g.metadata).map_err(|e| {
            Status::invalid_argument(format!(
                "group {:?}: metadata is not a JSON object: {e}",
                g.id
            ))
        })?
    };
    Ok(Group {
        id: g.id,
        name: g.name,
        profile: g.profile,
        selector: g.selector.into_iter().collect(),
        metadata,
    })
}

fn group_to_pb(g: Group) -> st::Group {
    st::Group {
        id: g.id,
        name: g.name,
        profile: g.profile,
        selector: g.selector.into_iter().collect(),
        metadata: if g.metadata.is_empty() {
            Vec::new()
        } else {
            serde_json::to_vec(&g.metadata).unwrap_or_default()
        },
    }
}

fn required<T>(v: Option<T>, what: &str) -> Result<T, Status> {
    v.ok_or_else(|| Status::invalid_argument(format!("{what} is required")))
}

#[tonic::async_trait]
impl Groups for Api {
    async fn group_put(
        &self,
        r: Request<s::GroupPutRequest>,
    ) -> Result<Response<s::GroupPutResponse>, Status> {
        let g = group_from_pb(required(r.into_inner().group, "group")?)?;
        tracing::info!(group = %g.id, profile = %g.profile, "matchbox API: GroupPut");
        self.store.put_group(g).map_err(status)?;
        Ok(Response::new(s::GroupPutResponse {}))
    }

    async fn group_get(
        &self,
        r: Request<s::GroupGetRequest>,
    ) -> Result<Response<s::GroupGetResponse>, Status> {
        let id = r.into_inner().id;
        let g = self
            .store
            .group(&id)
            .ok_or_else(|| not_found("group", &id))?;
        Ok(Response::new(s::GroupGetResponse {
            group: Some(group_to_pb(g)),
        }))
    }

    async fn group_delete(
        &self,
        r: Request<s::GroupDeleteRequest>,
    ) -> Result<Response<s::GroupDeleteResponse>, Status> {
        let id = r.into_inner().id;
        tracing::info!(group = %id, "matchbox API: GroupDelete");
        if !self.store.delete_group(&id).map_err(status)? {
            return Err(not_found("group", &id));
        }
        Ok(Response::new(s::GroupDeleteResponse {}))
    }

    async fn group_list(
        &self,
        _r: Request<s::GroupListRequest>,
    ) -> Result<Response<s::GroupListResponse>, Status> {
        Ok(Response::new(s::GroupListResponse {
            groups: self.store.groups().into_iter().map(group_to_pb).collect(),
        }))
    }
}

#[tonic::async_trait]
impl Profiles for Api {
    async fn profile_put(
        &self,
        r: Request<s::ProfilePutRequest>,
    ) -> Result<Response<s::ProfilePutResponse>, Status> {
        let p = profile_from_pb(required(r.into_inner().profile, "profile")?);
        tracing::info!(profile = %p.id, "matchbox API: ProfilePut");
        self.store.put_profile(p).map_err(status)?;
        Ok(Response::new(s::ProfilePutResponse {}))
    }

    async fn profile_get(
        &self,
        r: Request<s::ProfileGetRequest>,
    ) -> Result<Response<s::ProfileGetResponse>, Status> {
        let id = r.into_inner().id;
        let p = self
            .store
            .profile(&id)
            .ok_or_else(|| not_found("profile", &id))?;
        Ok(Response::new(s::ProfileGetResponse {
            profile: Some(profile_to_pb(p)),
        }))
    }

    async fn profile_delete(
        &self,
        r: Request<s::ProfileDeleteRequest>,
    ) -> Result<Response<s::ProfileDeleteResponse>, Status> {
        let id = r.into_inner().id;
        tracing::info!(profile = %id, "matchbox API: ProfileDelete");
        if !self.store.delete_profile(&id).map_err(status)? {
            return Err(not_found("profile", &id));
        }
        Ok(Response::new(s::ProfileDeleteResponse {}))
    }

    async fn profile_list(
        &self,
        _r: Request<s::ProfileListRequest>,
    ) -> Result<Response<s::ProfileListResponse>, Status> {
        Ok(Response::new(s::ProfileListResponse {
            profiles: self
                .store
                .profiles()
                .into_iter()
                .map(profile_to_pb)
                .collect(),
        }))
    }
}

impl Api {
    fn put(&self, kind: TemplateKind, name: &str, config: Vec<u8>) -> Result<(), Status> {
        tracing::info!(?kind, %name, bytes = config.len(), "matchbox API: template put");
        self.store.put_template(kind, name, config).map_err(status)
    }

    fn get(&self, kind: TemplateKind, name: &str) -> Result<Vec<u8>, Status> {
        self.store
            .template(kind, name)
            .ok_or_else(|| not_found("template", name))
    }

    fn delete(&self, kind: TemplateKind, name: &str) -> Result<(), Status> {
        tracing::info!(?kind, %name, "matchbox API: template delete");
        if self.store.delete_template(kind, name).map_err(status)? {
            Ok(())
        } else {
            Err(not_found("template", name))
        }
    }
}

#[tonic::async_trait]
impl Ignition for Api {
    async fn ignition_put(
        &self,
        r: Request<s::IgnitionPutRequest>,
    ) -> Result<Response<s::IgnitionPutResponse>, Status> {
        let r = r.into_inner();
        self.put(TemplateKind::Ignition, &r.name, r.config)?;
        Ok(Response::new(s::IgnitionPutResponse {}))
    }

    async fn ignition_get(
        &self,
        r: Request<s::IgnitionGetRequest>,
    ) -> Result<Response<s::IgnitionGetResponse>, Status> {
        let config = self.get(TemplateKind::Ignition, &r.into_inner().name)?;
        Ok(Response::new(s::IgnitionGetResponse { config }))
    }

    async fn ignition_delete(
        &self,
        r: Request<s::IgnitionDeleteRequest>,
    ) -> Result<Response<s::IgnitionDeleteResponse>, Status> {
        self.delete(TemplateKind::Ignition, &r.into_inner().name)?;
        Ok(Response::new(s::IgnitionDeleteResponse {}))
    }
}

#[tonic::async_trait]
impl Generic for Api {
    async fn generic_put(
        &self,
        r: Request<s::GenericPutRequest>,
    ) -> Result<Response<s::GenericPutResponse>, Status> {
        let r = r.into_inner();
        self.put(TemplateKind::Generic, &r.name, r.config)?;
        Ok(Response::new(s::GenericPutResponse {}))
    }

    async fn generic_get(
        &self,
        r: Request<s::GenericGetRequest>,
    ) -> Result<Response<s::GenericGetResponse>, Status> {
        let config = self.get(TemplateKind::Generic, &r.into_inner().name)?;
        Ok(Response::new(s::GenericGetResponse { config }))
    }

    async fn generic_delete(
        &self,
        r: Request<s::GenericDeleteRequest>,
    ) -> Result<Response<s::GenericDeleteResponse>, Status> {
        self.delete(TemplateKind::Generic, &r.into_inner().name)?;
        Ok(Response::new(s::GenericDeleteResponse {}))
    }
}

fn select_labels(labels: std::collections::HashMap<String, String>) -> BTreeMap<String, String> {
    let mut labels: BTreeMap<String, String> = labels.into_iter().collect();
    if let Some(mac) = labels.get_mut("mac")
        && let Ok(m) = mac.parse::<racker_inventory::MacAddr>()
    {
        *mac = m.to_string();
    }
    labels
}

#[tonic::async_trait]
impl Select for Api {
    async fn select_group(
        &self,
        r: Request<s::SelectGroupRequest>,
    ) -> Result<Response<s::SelectGroupResponse>, Status> {
        let labels = select_labels(r.into_inner().labels);
        let c = self.store.contents();
        let (g, _) = c
            .select(&labels)
            .ok_or_else(|| Status::not_found("no group matches the labels"))?;
        Ok(Response::new(s::SelectGroupResponse {
            group: Some(group_to_pb(g.clone())),
        }))
    }

    async fn select_profile(
        &self,
        r: Request<s::SelectProfileRequest>,
    ) -> Result<Response<s::SelectProfileResponse>, Status> {
        let labels = select_labels(r.into_inner().labels);
        let c = self.store.contents();
        let profile = match c.select(&labels) {
            Some((_, Some(p))) => p.clone(),
            Some((g, None)) => return Err(not_found("profile", &g.profile)),
            None => return Err(Status::not_found("no group matches the labels")),
        };
        Ok(Response::new(s::SelectProfileResponse {
            profile: Some(profile_to_pb(profile)),
        }))
    }
}

/// A bound gRPC API server.
#[derive(Debug)]
pub struct GrpcServer {
    listener: tokio::net::TcpListener,
    local: SocketAddr,
    tls: ServerTlsConfig,
    store: Arc<Store>,
}

impl GrpcServer {
    /// Bind `addr` and load the server certificate, key and client CA of
    /// `certs` (see [`CertPaths::ensure`]).
    pub async fn bind(
        addr: SocketAddr,
        store: Arc<Store>,
        certs: &CertPaths,
    ) -> Result<Self, MatchboxApiError> {
        let read = |p: std::path::PathBuf| {
            std::fs::read(&p).map_err(|e| MatchboxApiError::io("reading", &p, e))
        };
        let identity = Identity::from_pem(read(certs.server_cert())?, read(certs.server_key())?);
        // A client CA makes the client certificate mandatory.
        let tls = ServerTlsConfig::new()
            .identity(identity)
            .client_ca_root(Certificate::from_pem(read(certs.ca())?));
        let err = |source| MatchboxApiError::Socket { addr, source };
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(err)?;
        let local = listener.local_addr().map_err(err)?;
        Ok(Self {
            listener,
            local,
            tls,
            store,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Serve until the task is dropped.
    pub async fn run(self) -> Result<(), MatchboxApiError> {
        let api = Api { store: self.store };
        let incoming = tonic::transport::server::TcpIncoming::from(self.listener);
        Server::builder()
            .tls_config(self.tls)
            .map_err(|e| MatchboxApiError::Tls {
                reason: e.to_string(),
            })?
            .add_service(GroupsServer::new(api.clone()))
            .add_service(ProfilesServer::new(api.clone()))
            .add_service(IgnitionServer::new(api.clone()))
            .add_service(GenericServer::new(api.clone()))
            .add_service(SelectServer::new(api))
            .serve_with_incoming(incoming)
            .await
            .map_err(|e| MatchboxApiError::Serve {
                addr: self.local,
                reason: e.to_string(),
            })
    }
}
