//! Serving the router: plain HTTP, or HTTPS with the owner's certificate
//! (`[http.tls]`, rustls with the ring provider). Either way the handlers see
//! the client's address (`auth::ClientAddr`, for the login rate limit).
//!
//! TLS handshakes run in their own tasks, each with a time limit, so a client
//! that opens a connection and says nothing cannot stall the others. This module
//! does not decide who may do what (`auth` does).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use axum::Router;
use tokio::sync::{mpsc, watch};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use super::auth::ClientAddr;
use crate::config::TlsConfig;

/// A handshake that takes longer is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Finished handshakes waiting for the server to take them.
const QUEUE: usize = 64;

/// Reads the certificate chain and key; the error names the file and the fix.
pub fn acceptor(cfg: &TlsConfig) -> anyhow::Result<TlsAcceptor> {
    let certs = CertificateDer::pem_file_iter(&cfg.cert_file)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("reading the certificate {}", cfg.cert_file.display()))?;
    // Never quote the key file's content: only its path.
    let key = PrivateKeyDer::from_pem_file(&cfg.key_file).map_err(|_| {
        anyhow::anyhow!(
            "reading the private key {}: it holds no PEM private key or cannot be read",
            cfg.key_file.display()
        )
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("setting up TLS")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .with_context(|| {
            format!(
                "the certificate {} and the key {} do not make a usable pair; check that the key belongs to the certificate",
                cfg.cert_file.display(),
                cfg.key_file.display()
            )
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Serves `app` on `listener` until `shutdown` turns true; over TLS when `tls` is set.
pub async fn serve<L>(
    listener: L,
    tls: Option<TlsAcceptor>,
    app: Router,
    mut shutdown: watch::Receiver<bool>,
) where
    L: Listener<Addr = SocketAddr>,
    L::Io: Unpin,
{
    let stop = async move {
        let _ = shutdown.wait_for(|s| *s).await;
    };
    let app = app.into_make_service_with_connect_info::<ClientAddr>();
    let result = match tls {
        Some(tls) => {
            let listener = TlsListener::new(listener, tls);
            axum::serve(listener, app)
                .with_graceful_shutdown(stop)
                .await
        }
        None => {
            axum::serve(Plain(listener), app)
                .with_graceful_shutdown(stop)
                .await
        }
    };
    if let Err(e) = result {
        tracing::error!("the HTTP server failed: {e}");
    }
}

/// Any listener, as it is: a type of this module, so `ClientAddr` can say how
/// to get the address from it (axum's own impls would overlap a generic one).
pub struct Plain<L>(pub L);

impl<L: Listener> Listener for Plain<L> {
    type Io = L::Io;
    type Addr = L::Addr;

    fn accept(&mut self) -> impl std::future::Future<Output = (Self::Io, Self::Addr)> + Send {
        self.0.accept()
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

impl<L: Listener<Addr = SocketAddr>> Connected<IncomingStream<'_, Plain<L>>> for ClientAddr {
    fn connect_info(stream: IncomingStream<'_, Plain<L>>) -> Self {
        ClientAddr(*stream.remote_addr())
    }
}

impl<Io> Connected<IncomingStream<'_, TlsListener<Io>>> for ClientAddr
where
    Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    fn connect_info(stream: IncomingStream<'_, TlsListener<Io>>) -> Self {
        ClientAddr(*stream.remote_addr())
    }
}

/// A listener whose connections have finished a TLS handshake.
pub struct TlsListener<Io> {
    ready: mpsc::Receiver<(TlsStream<Io>, SocketAddr)>,
    local: std::io::Result<SocketAddr>,
}

impl<Io> TlsListener<Io>
where
    Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    pub fn new<L>(mut inner: L, tls: TlsAcceptor) -> Self
    where
        L: Listener<Io = Io, Addr = SocketAddr>,
    {
        let local = inner.local_addr();
        let (tx, ready) = mpsc::channel(QUEUE);
        tokio::spawn(async move {
            loop {
                // Ends with the listener (the server stopped), releasing the port.
                let (io, addr) = tokio::select! {
                    conn = inner.accept() => conn,
                    _ = tx.closed() => return,
                };
                let (tls, tx) = (tls.clone(), tx.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.accept(io)).await {
                        Ok(Ok(stream)) => {
                            let _ = tx.send((stream, addr)).await;
                        }
                        // Scanners and plain-HTTP clients end up here: not worth a warning.
                        Ok(Err(e)) => tracing::debug!(client = %addr, "TLS handshake failed: {e}"),
                        Err(_) => tracing::debug!(client = %addr, "TLS handshake timed out"),
                    }
                });
            }
        });
        TlsListener { ready, local }
    }
}

impl<Io> Listener for TlsListener<Io>
where
    Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    type Io = TlsStream<Io>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(conn) => conn,
            // The accept task ended (it never does while the listener lives):
            // wait for shutdown instead of spinning.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        match &self.local {
            Ok(a) => Ok(*a),
            Err(e) => Err(std::io::Error::new(e.kind(), e.to_string())),
        }
    }
}
