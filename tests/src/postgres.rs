//! The tests' own PostgreSQL (Debian's `postgresql` package): a cluster made
//! by `initdb` in a temporary directory, listening on a private unix socket
//! only, that dies with the test process. `POTVRDA_TEST_POSTGRES_URL` (a
//! server URL without a database, e.g. `postgres://postgres@localhost:5432`)
//! points the tests at another one instead. Without PostgreSQL the tests
//! fail and say how to install it: they are never skipped.
//!
//! Every test gets a database of its own ([`fresh_database`]), made from
//! `template0` so nothing leaks between tests.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

/// A running cluster.
pub struct PostgresCluster {
    dir: PathBuf,
    _child: Child,
    /// A WAL sender stopped by [`Self::stop_wal_sender`].
    stopped_sender: std::sync::Mutex<Option<String>>,
}

/// Send `signal` (`-STOP`, `-KILL`…) to process `pid`.
fn signal(signal: &str, pid: &str) -> Result<(), String> {
    let ok = Command::new("kill")
        .args([signal, pid])
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        Ok(())
    } else {
        Err(format!("kill {signal} {pid} failed"))
    }
}

static SHARED: OnceLock<Result<PostgresCluster, String>> = OnceLock::new();

/// The directory of PostgreSQL's server programs (`initdb`, `postgres`).
fn bindir() -> Result<PathBuf, String> {
    let missing = "PostgreSQL is not installed: install it (Debian: `apt-get install -y postgresql`) \
                   or point POTVRDA_TEST_POSTGRES_URL at a server; the PostgreSQL tests cannot run without one";
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output()
        && out.status.success()
    {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if dir.join("initdb").exists() {
            return Ok(dir);
        }
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|_| missing.to_owned())?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|b| b.join("initdb").exists())
        .collect();
    found.sort();
    found.pop().ok_or_else(|| missing.to_owned())
}

/// The command line that runs a server program as the `postgres` user
/// when we are root (initdb and postgres refuse to run as root), else as
/// ourselves.
fn as_owner(program: &Path) -> Vec<std::ffi::OsString> {
    let mut line: Vec<std::ffi::OsString> = Vec::new();
    if nix_is_root() {
        line.extend(
            [
                "setpriv",
                "--reuid=postgres",
                "--regid=postgres",
                "--init-groups",
            ]
            .map(Into::into),
        );
    }
    line.push(program.into());
    line
}

fn nix_is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

impl PostgresCluster {
    /// `initdb` a new cluster in a new directory and start it. `durable`:
    /// fsync on (a crash or a failover test); off, the shared test cluster
    /// skips the disk flushes nothing depends on.
    pub fn start(durable: bool) -> Result<Self, String> {
        let fsync = if durable { "on" } else { "off" };
        Self::start_with(&[
            format!("fsync={fsync}"),
            format!("synchronous_commit={fsync}"),
        ])
    }

    /// A new directory for a cluster, owned by the user servers run as.
    fn new_dir() -> Result<PathBuf, String> {
        let dir = tempfile::Builder::new()
            .prefix("potvrda-pg-")
            .tempdir()
            .map_err(|e| e.to_string())?
            .keep();
        if nix_is_root() {
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir)
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                return Err("cannot give the test cluster's directory to the postgres user".into());
            }
        }
        Ok(dir)
    }

    /// A new, empty cluster and its directory, the server not started.
    fn init() -> Result<PathBuf, String> {
        let bin = bindir()?;
        let dir = Self::new_dir()?;
        let data = dir.join("data");
        let initdb = as_owner(&bin.join("initdb"));
        let out = Command::new(&initdb[0])
            .args(&initdb[1..])
            .args([
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
                "-D",
            ])
            .arg(&data)
            .output()
            .map_err(|e| format!("cannot run initdb: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "initdb failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(dir)
    }

    /// `initdb` a new cluster and start it with these settings (`name=value`).
    pub fn start_with(settings: &[String]) -> Result<Self, String> {
        let dir = Self::init()?;
        Self::serve(dir, settings)
    }

    /// Start the server of the cluster in `dir`; it stops when the test
    /// process ends, and its files go with it.
    fn serve(dir: PathBuf, settings: &[String]) -> Result<Self, String> {
        let bin = bindir()?;
        let data = dir.join("data");
        // The server lives as long as our stdin pipe: when the test process
        // exits, `cat` returns, the server is told to stop and its files go.
        let script = format!(
            "\"$@\" >'{dir}/postgres.log' 2>&1 & pid=$!; cat >/dev/null; kill -INT $pid; wait $pid; rm -rf '{dir}'",
            dir = dir.display()
        );
        let mut postgres = Command::new("sh");
        postgres
            .args(["-c", &script, "sh"])
            .args(as_owner(&bin.join("postgres")))
            .arg("-D")
            .arg(&data)
            .arg("-k")
            .arg(&dir)
            .args(["-c", "listen_addresses=", "-c", "max_connections=500"])
            .args(settings.iter().flat_map(|setting| ["-c", setting.as_str()]))
            .stdin(Stdio::piped());
        let child = postgres
            .spawn()
            .map_err(|e| format!("cannot start postgres: {e}"))?;
        let cluster = Self {
            dir,
            _child: child,
            stopped_sender: std::sync::Mutex::default(),
        };
        cluster.wait_ready()?;
        Ok(cluster)
    }

    /// A primary that commits only once its synchronous standby (named
    /// `standby`, see [`Self::start_standby`]) has the commit on disk: a
    /// failover to that standby loses no acknowledged write.
    pub fn start_primary() -> Result<Self, String> {
        Self::start_with(&[
            "fsync=on".into(),
            "synchronous_commit=on".into(),
            "wal_level=replica".into(),
            "max_wal_senders=4".into(),
            "synchronous_standby_names=standby".into(),
        ])
    }

    /// A streaming standby of this primary (`pg_basebackup -R`), started
    /// and caught up as the synchronous one.
    pub fn start_standby(&self) -> Result<Self, String> {
        let bin = bindir()?;
        let dir = Self::new_dir()?;
        let backup = as_owner(&bin.join("pg_basebackup"));
        let out = Command::new(&backup[0])
            .args(&backup[1..])
            .args(["-U", "postgres", "-R", "--no-sync", "-h"])
            .arg(&self.dir)
            .arg("-D")
            .arg(dir.join("data"))
            .output()
            .map_err(|e| format!("cannot run pg_basebackup: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "pg_basebackup failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let standby = Self::serve(
            dir,
            &[
                "fsync=on".into(),
                "cluster_name=standby".into(),
                "hot_standby=on".into(),
            ],
        )?;
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while self.psql(
            "postgres",
            "SELECT count(*) FROM pg_stat_replication WHERE application_name = 'standby' AND sync_state = 'sync'",
        )? != "1"
        {
            if std::time::Instant::now() > deadline {
                return Err("the standby did not become synchronous within 30 s".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(standby)
    }

    /// Stop the server the way a crash does: an immediate shutdown (SIGQUIT
    /// to the postmaster: every process aborted, nothing flushed or sent
    /// that was not); a stopped WAL sender is killed without sending more.
    pub fn crash(&self) -> Result<(), String> {
        let pid_file = std::fs::read_to_string(self.dir.join("data/postmaster.pid"))
            .map_err(|e| format!("postmaster.pid: {e}"))?;
        let postmaster = pid_file.lines().next().unwrap_or_default().to_owned();
        signal("-QUIT", &postmaster)?;
        if let Some(sender) = self.stopped_sender.lock().map_err(|_| "poisoned")?.take() {
            signal("-KILL", &sender)?;
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        // Gone, or a zombie its parent has not reaped yet.
        while std::fs::read_to_string(format!("/proc/{postmaster}/stat"))
            .is_ok_and(|stat| !stat.contains(") Z "))
        {
            if std::time::Instant::now() > deadline {
                return Err("the postmaster did not exit within 30 s".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// Promote this standby to primary, and wait until it takes writes.
    pub fn promote(&self) -> Result<(), String> {
        match self
            .psql("postgres", "SELECT pg_promote(true, 30)")?
            .as_str()
        {
            "t" => Ok(()),
            other => Err(format!("pg_promote: {other}")),
        }
    }

    /// Stop this primary's WAL sender (SIGSTOP): from now on the standby
    /// receives nothing, until [`Self::crash`].
    pub fn stop_wal_sender(&self) -> Result<(), String> {
        let pid = self.psql("postgres", "SELECT pid FROM pg_stat_replication")?;
        if pid.is_empty() {
            return Err("no WAL sender".into());
        }
        signal("-STOP", &pid)?;
        *self.stopped_sender.lock().map_err(|_| "poisoned")? = Some(pid);
        Ok(())
    }

    /// How many commits wait for the synchronous standby's confirmation.
    pub fn commits_waiting_for_standby(&self) -> Result<usize, String> {
        self.psql(
            "postgres",
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'SyncRep'",
        )?
        .parse()
        .map_err(|e| format!("count: {e}"))
    }

    /// The server's unix socket.
    pub fn socket(&self) -> PathBuf {
        self.dir.join(".s.PGSQL.5432")
    }

    fn wait_ready(&self) -> Result<(), String> {
        let sock = self.dir.join(".s.PGSQL.5432");
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while std::time::Instant::now() < deadline {
            if std::os::unix::net::UnixStream::connect(&sock).is_ok()
                && self.psql("postgres", "SELECT 1").is_ok()
            {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let log = std::fs::read_to_string(self.dir.join("postgres.log")).unwrap_or_default();
        Err(format!("postgres did not start within 30 s: {log}"))
    }

    /// The server URL (no database).
    pub fn server_url(&self) -> String {
        format!(
            "postgres://postgres@localhost:5432?host={}",
            self.dir.display()
        )
    }

    /// The URL of database `db` on this cluster.
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgres://postgres@localhost:5432/{db}?host={}",
            self.dir.display()
        )
    }

    /// `COPY … FROM STDIN` (text format) in `db`, fed `rows` (one line each,
    /// columns separated by tabs, already escaped) through psql.
    pub fn copy_in(
        &self,
        db: &str,
        copy: &str,
        rows: impl Iterator<Item = String>,
    ) -> Result<(), String> {
        use std::io::Write as _;
        let mut child = Command::new("psql")
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-U", "postgres", "-h"])
            .arg(&self.dir)
            .args(["-d", db, "-c", copy])
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run psql: {e}"))?;
        {
            let stdin = child.stdin.take().ok_or("no stdin")?;
            let mut w = std::io::BufWriter::with_capacity(1 << 20, stdin);
            for row in rows {
                w.write_all(row.as_bytes())
                    .and_then(|()| w.write_all(b"\n"))
                    .map_err(|e| format!("COPY: {e}"))?;
            }
            w.flush().map_err(|e| format!("COPY: {e}"))?;
        }
        let out = child.wait_with_output().map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// Run one SQL command in `db` with psql.
    pub fn psql(&self, db: &str, sql: &str) -> Result<String, String> {
        let out = Command::new("psql")
            .args([
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-U",
                "postgres",
                "-h",
            ])
            .arg(&self.dir)
            .args(["-d", db, "-c", sql])
            .output()
            .map_err(|e| format!("cannot run psql: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }
}

/// The address a cluster manager gives the clients (a virtual IP, a
/// Kubernetes service): TCP forwarded to the current primary's socket, moved
/// to the new primary on a failover, as Patroni or CloudNativePG move theirs.
pub struct ServiceAddress {
    address: std::net::SocketAddr,
    target: std::sync::Arc<std::sync::Mutex<PathBuf>>,
    task: tokio::task::JoinHandle<()>,
}

impl ServiceAddress {
    /// Listen on a port of 127.0.0.1, forwarding to `primary`.
    pub async fn start(primary: &PostgresCluster) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a local port");
        let address = listener.local_addr().expect("bound");
        let target = std::sync::Arc::new(std::sync::Mutex::new(primary.socket()));
        let to = std::sync::Arc::clone(&target);
        let task = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let path = to.lock().expect("target").clone();
                tokio::spawn(async move {
                    // No server behind the address: the client's connection closes.
                    if let Ok(mut server) = tokio::net::UnixStream::connect(&path).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        });
        Self {
            address,
            target,
            task,
        }
    }

    /// The URL of database `db` behind the address.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@{}/{db}", self.address)
    }

    /// Forward new connections to `primary` from now on.
    pub fn move_to(&self, primary: &PostgresCluster) {
        *self.target.lock().expect("target") = primary.socket();
    }
}

impl Drop for ServiceAddress {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The shared test cluster.
fn shared() -> &'static PostgresCluster {
    match SHARED.get_or_init(|| PostgresCluster::start(false)) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    }
}

/// A new, empty database and its URL.
pub fn fresh_database() -> String {
    let name = format!("t_{}", uuid::Uuid::new_v4().simple());
    if let Ok(server) = std::env::var("POTVRDA_TEST_POSTGRES_URL") {
        let out = Command::new("psql")
            .args([server.as_str(), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c"])
            .arg(format!("CREATE DATABASE {name} TEMPLATE template0"))
            .output()
            .expect("psql runs");
        assert!(
            out.status.success(),
            "CREATE DATABASE: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let (base, query) = server.split_once('?').unwrap_or((server.as_str(), ""));
        let sep = if query.is_empty() { "" } else { "?" };
        return format!("{}/{name}{sep}{query}", base.trim_end_matches('/'));
    }
    let cluster = shared();
    cluster
        .psql(
            "postgres",
            &format!("CREATE DATABASE {name} TEMPLATE template0"),
        )
        .unwrap_or_else(|e| panic!("CREATE DATABASE: {e}"));
    format!(
        "postgres://postgres@localhost:5432/{name}?host={}",
        cluster.dir.display()
    )
}
