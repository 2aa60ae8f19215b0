//! A certificate authority made for one test, and certificates it signs, as PEM files in
//! a temporary directory: `ca.pem`, and `<name>.pem` with `<name>.key` per certificate.

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use std::path::PathBuf;
use tempfile::TempDir;

pub struct TestPki {
    dir: TempDir,
    ca: Issuer<'static, KeyPair>,
}

/// A certificate the CA signed, in DER, with its private key (PKCS#8, DER).
pub struct Issued {
    pub cert_der: Vec<u8>,
    pub key_der: Vec<u8>,
}

impl TestPki {
    /// A new CA named `common_name`, its certificate written to `ca.pem`.
    pub fn new(common_name: &str) -> TestPki {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let key = KeyPair::generate().expect("a CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        let cert = params.self_signed(&key).expect("a self-signed CA");
        std::fs::write(dir.path().join("ca.pem"), cert.pem()).expect("ca.pem written");
        TestPki {
            dir,
            ca: Issuer::new(params, key),
        }
    }

    /// A certificate for `names` (DNS names or IP addresses), written to `<name>.pem` and
    /// `<name>.key`.
    pub fn issue(&self, name: &str, names: &[&str]) -> Issued {
        let key = KeyPair::generate().expect("a key");
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let cert = CertificateParams::new(names)
            .expect("certificate parameters")
            .signed_by(&key, &self.ca)
            .expect("a signed certificate");
        std::fs::write(self.path(&format!("{name}.pem")), cert.pem()).expect("PEM written");
        std::fs::write(self.path(&format!("{name}.key")), key.serialize_pem())
            .expect("key written");
        Issued {
            cert_der: cert.der().to_vec(),
            key_der: key.serialize_der(),
        }
    }

    /// A file of the directory, such as `ca.pem` or `server.key`.
    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }
}
