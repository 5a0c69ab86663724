//! A real forward proxy, Debian's squid, on 127.0.0.1 for the proxy tests.
//!
//! The test provider is named `provider.proxied.test`, a name that only this proxy resolves
//! (its `hosts_file`; no name server answers here). So the CLI cannot reach the provider
//! except through the proxy: a request that bypassed it would fail to resolve. Its access
//! log has one line per request (a `CONNECT host:port` for https).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// The provider's name behind the proxy (in the test CA's server certificate too).
pub const PROXIED_HOST: &str = "provider.proxied.test";

/// What the proxy does with requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    Allow,
    /// Refuse every request (403), as a proxy that does not let this client out.
    Refuse,
}

pub struct Squid {
    child: Child,
    dir: TempDir,
    port: u16,
}

impl Squid {
    /// Starts squid (foreground, no cache) and waits until it accepts connections. The port is
    /// picked free and then bound by squid, so another test can take it in between: a squid
    /// that exits before it listens is started again on another port (three tries).
    pub fn start(policy: Policy) -> Squid {
        let mut failures = Vec::new();
        for _ in 0..3 {
            match Squid::try_start(policy) {
                Ok(squid) => return squid,
                Err(why) => failures.push(why),
            }
        }
        panic!("squid did not start:\n{}", failures.join("\n---\n"));
    }

    fn try_start(policy: Policy) -> Result<Squid, String> {
        let dir = tempfile::Builder::new()
            .prefix("ncl-squid-")
            .tempdir()
            .expect("temp dir for squid");
        // squid drops root for its own user, which must write the logs here.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o777)).unwrap();
        let port = crate::support::free_port();
        let d = dir.path().display();
        fs::write(
            dir.path().join("hosts"),
            format!("127.0.0.1 {PROXIED_HOST}\n"),
        )
        .unwrap();
        let access = match policy {
            Policy::Allow => "http_access allow local",
            Policy::Refuse => "http_access deny all",
        };
        let conf = format!(
            "http_port 127.0.0.1:{port}\n\
             pid_filename {d}/squid.pid\n\
             access_log stdio:{d}/access.log squid\n\
             cache_log {d}/cache.log\n\
             cache_store_log none\n\
             logfile_rotate 0\n\
             coredump_dir {d}\n\
             cache deny all\n\
             cache_mem 4 MB\n\
             hosts_file {d}/hosts\n\
             dns_nameservers 127.0.0.1\n\
             dns_timeout 2 seconds\n\
             shutdown_lifetime 0 seconds\n\
             acl local src 127.0.0.1/32\n\
             {access}\n\
             http_access deny all\n"
        );
        let conf_path = dir.path().join("squid.conf");
        fs::write(&conf_path, conf).unwrap();
        let child = Command::new(squid_binary())
            .args(["-N", "-f"])
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(dir.path().join("stderr.log")).unwrap())
            .spawn()
            .expect("start squid (apt-get install squid; .ci/install-deps does)");
        let mut squid = Squid { child, dir, port };
        squid.wait_ready()?;
        Ok(squid)
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        let logs = |dir: &TempDir| {
            format!(
                "{}\n{}",
                fs::read_to_string(dir.path().join("stderr.log")).unwrap_or_default(),
                fs::read_to_string(dir.path().join("cache.log")).unwrap_or_default()
            )
        };
        while Instant::now() < deadline {
            let listening = std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok();
            // Whoever answers must be this squid, still running (not a listener of another
            // test that took the port, while squid gave up on it).
            let exited = self.child.try_wait().ok().flatten();
            if listening && exited.is_none() {
                return Ok(());
            }
            if let Some(status) = exited {
                return Err(format!(
                    "squid exited ({status}) before it listened on 127.0.0.1:{}:\n{}",
                    self.port,
                    logs(&self.dir)
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "squid did not listen on 127.0.0.1:{} within 30 s:\n{}",
            self.port,
            logs(&self.dir)
        );
    }

    /// `http://127.0.0.1:PORT`, for `HTTPS_PROXY`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The access log's lines as `METHOD URL STATUS` (squid's `TCP_TUNNEL/200` gives 200).
    pub fn requests(&self) -> Vec<String> {
        fs::read_to_string(self.dir.path().join("access.log"))
            .unwrap_or_default()
            .lines()
            .filter_map(|line| {
                let f: Vec<&str> = line.split_whitespace().collect();
                // time elapsed client code/status bytes method url ...
                let status = f.get(3)?.rsplit('/').next()?;
                Some(format!("{} {} {status}", f.get(5)?, f.get(6)?))
            })
            .collect()
    }
}

impl Drop for Squid {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn squid_binary() -> PathBuf {
    ["/usr/sbin/squid", "/usr/bin/squid"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("squid"))
}
