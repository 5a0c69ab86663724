//! A throwaway CA and a server certificate for 127.0.0.1 / localhost, made with the
//! `openssl` command-line tool (present on every machine that runs these tests, and no
//! extra crate to build).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::proc::output_with_timeout;

/// Paths of the PEM files; they live in the directory given to [`TestCa::generate`].
#[derive(Debug, Clone)]
pub struct TestCa {
    /// The CA certificate: what clients trust (SSL_CERT_FILE, curl --cacert).
    pub ca_cert: PathBuf,
    pub ca_key: PathBuf,
    /// Server certificate (SAN IP:127.0.0.1, IP:::1, DNS:localhost, and
    /// DNS:provider.proxied.test, a name only the test proxy resolves), signed by the CA.
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
}

const SERVER_EXTENSIONS: &str = "\
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, IP:::1, DNS:localhost, DNS:provider.proxied.test
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
";

const CA_EXTENSIONS: &str = "\
[req]
distinguished_name = dn
x509_extensions = ca_ext
prompt = no
[dn]
CN = nix-cache-login test CA
O = nix-cache-login tests
[ca_ext]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
";

impl TestCa {
    /// Makes a new CA (EC P-256, valid 2 days) and a server certificate in `dir`.
    pub fn generate(dir: &Path) -> TestCa {
        fs::create_dir_all(dir).expect("create the CA directory");
        let ca = TestCa {
            ca_cert: dir.join("ca.pem"),
            ca_key: dir.join("ca.key"),
            server_cert: dir.join("server.pem"),
            server_key: dir.join("server.key"),
        };
        let ca_conf = dir.join("ca.cnf");
        let server_ext = dir.join("server.ext");
        let csr = dir.join("server.csr");
        fs::write(&ca_conf, CA_EXTENSIONS).expect("write ca.cnf");
        fs::write(&server_ext, SERVER_EXTENSIONS).expect("write server.ext");

        new_key_request(&[
            "-x509",
            "-days",
            "2",
            "-config",
            path(&ca_conf),
            "-keyout",
            path(&ca.ca_key),
            "-out",
            path(&ca.ca_cert),
        ]);
        new_key_request(&[
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            path(&ca.server_key),
            "-out",
            path(&csr),
        ]);
        openssl(&[
            "x509",
            "-req",
            "-in",
            path(&csr),
            "-CA",
            path(&ca.ca_cert),
            "-CAkey",
            path(&ca.ca_key),
            "-set_serial",
            &serial(),
            "-days",
            "2",
            "-sha256",
            "-extfile",
            path(&server_ext),
            "-out",
            path(&ca.server_cert),
        ]);
        for key in [&ca.ca_key, &ca.server_key] {
            fs::set_permissions(key, fs::Permissions::from_mode(0o600)).expect("chmod key");
        }
        ca
    }
}

fn path(p: &Path) -> &str {
    p.to_str().expect("temp paths are UTF-8")
}

fn serial() -> String {
    let bytes = super::http::random_bytes(8);
    // Positive: clear the top bit.
    format!("0x{:02x}{}", bytes[0] & 0x7f, hex(&bytes[1..]))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `openssl req -new` with a new P-256 key and no passphrase, then `args`.
fn new_key_request(args: &[&str]) {
    let new_key = [
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    openssl(&[&new_key[..], args].concat());
}

fn openssl(args: &[&str]) {
    let out = output_with_timeout(Command::new("openssl").args(args), Duration::from_secs(30));
    assert!(
        out.status.success(),
        "openssl {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}
