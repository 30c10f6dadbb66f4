//! Test support shared by the crates' integration tests: a small W3C WebDriver client that
//! drives Debian's headless Chromium through a chromedriver it starts itself (the machines are
//! offline, so nothing is downloaded), and a helper for free loopback ports.

pub mod webdriver;

/// A free TCP port on 127.0.0.1, for a child process that must be told its port up front.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// Installs ring as the process's rustls provider (reqwest is built without one, to keep
/// aws-lc-rs out of the build); call before building any HTTP client in a test.
pub fn install_tls() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
