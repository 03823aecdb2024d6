//! The demo's target system: a loopback TCP service that authenticates
//! clients against a credentials file, and the rotator that changes its
//! credential.

use std::path::{Path, PathBuf};

use lift::secrets::{Rotator, StepContext};
use lift::{Error, ErrorKind, SecretValue};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::{TcpListener, TcpStream};
use zeroize::Zeroizing;

use super::files::{io_error, write_private};

/// A loopback service that accepts `AUTH <password>` when the password matches its credentials file.
///
/// It re-reads the file on every connection, as a database reads its user table,
/// so a rotation that rewrites the file takes effect at once.
pub(super) struct Service {
    pub(super) address: std::net::SocketAddr,
    pub(super) credentials: PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Service {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Service {
    /// Listens on an ephemeral loopback port, with `credentials` as the password file.
    pub(super) async fn start(credentials: PathBuf) -> lift::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|err| io_error("cannot listen on loopback", &err))?;
        let address = listener
            .local_addr()
            .map_err(|err| io_error("cannot read the listening address", &err))?;
        let file = credentials.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let file = file.clone();
                tokio::spawn(async move {
                    let _ = serve_one(stream, &file).await;
                });
            }
        });
        Ok(Service {
            address,
            credentials,
            task,
        })
    }

    /// Logs in with `password`; true when the service accepted it.
    pub(super) async fn authenticate(&self, password: &SecretValue) -> lift::Result<bool> {
        let mut stream = TcpStream::connect(self.address)
            .await
            .map_err(|err| io_error("cannot reach the demo service", &err))?;
        let mut line = Zeroizing::new(b"AUTH ".to_vec());
        line.extend_from_slice(password.expose());
        line.push(b'\n');
        stream
            .write_all(&line)
            .await
            .map_err(|err| io_error("cannot talk to the demo service", &err))?;
        let mut reply = String::new();
        BufReader::new(stream)
            .read_line(&mut reply)
            .await
            .map_err(|err| io_error("cannot read the demo service's answer", &err))?;
        Ok(reply.trim() == "OK")
    }
}

/// Answers one connection: `OK` when the offered password matches the file, `DENIED` otherwise.
async fn serve_one(stream: TcpStream, credentials: &Path) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut line = Zeroizing::new(Vec::new());
    BufReader::new(read).read_until(b'\n', &mut line).await?;
    let offered = line.strip_prefix(b"AUTH ").unwrap_or_default();
    let offered = offered.strip_suffix(b"\n").unwrap_or(offered);
    let expected = Zeroizing::new(tokio::fs::read(credentials).await.unwrap_or_default());
    let accepted = !expected.is_empty()
        && SecretValue::new(offered.to_vec()).ct_eq(&SecretValue::new(expected.to_vec()));
    write
        .write_all(if accepted { b"OK\n" } else { b"DENIED\n" })
        .await
}

/// Rotates the service's credential: setSecret rewrites its credentials file, testSecret logs in with the new value.
pub(super) struct ServiceRotator<'a> {
    pub(super) service: &'a Service,
}

#[async_trait::async_trait]
impl Rotator for ServiceRotator<'_> {
    fn name(&self) -> &str {
        "demo-service"
    }

    async fn set_secret(
        &self,
        _step: &StepContext,
        pending: &SecretValue,
        _current: Option<&SecretValue>,
    ) -> lift::Result<()> {
        write_private(&self.service.credentials, pending.expose())
    }

    async fn test_secret(&self, step: &StepContext, pending: &SecretValue) -> lift::Result<()> {
        if self.service.authenticate(pending).await? {
            Ok(())
        } else {
            Err(Error::new(
                ErrorKind::External,
                format!(
                    "the demo service refused pending version {} of {}",
                    step.pending_version, step.name
                ),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_service_accepts_the_password_in_its_file_only() -> lift::Result<()> {
        let tmp = tempfile::tempdir().map_err(|e| io_error("tempdir", &e))?;
        let credentials = tmp.path().join("credentials");
        let service = Service::start(credentials.clone()).await?;
        let password = SecretValue::from("first-password");
        assert!(
            !service.authenticate(&password).await?,
            "no file: nobody gets in"
        );
        write_private(&credentials, password.expose())?;
        assert!(service.authenticate(&password).await?);
        assert!(!service.authenticate(&SecretValue::from("wrong")).await?);
        // A rewritten file takes effect on the next connection.
        write_private(&credentials, b"second-password")?;
        assert!(!service.authenticate(&password).await?);
        assert!(
            service
                .authenticate(&SecretValue::from("second-password"))
                .await?
        );
        Ok(())
    }
}
