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
        let bin = bindir()?;
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
        let fsync = if durable { "on" } else { "off" };
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
            .args(["-c", &format!("fsync={fsync}")])
            .args(["-c", &format!("synchronous_commit={fsync}")])
            .stdin(Stdio::piped());
        let child = postgres
            .spawn()
            .map_err(|e| format!("cannot start postgres: {e}"))?;
        let cluster = Self { dir, _child: child };
        cluster.wait_ready()?;
        Ok(cluster)
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
