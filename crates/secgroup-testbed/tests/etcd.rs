//! The etcd fixture against the real etcd: keys written and read back,
//! an outage (stop, start on the same data and port) that loses nothing,
//! and nothing left behind.

use secgroup_testbed::{Etcd, etcd_or_skip};

#[test]
fn keys_survive_a_stop_and_start_on_the_same_endpoint_and_drop_removes_everything() {
    if !etcd_or_skip("etcd fixture") {
        return;
    }
    let etcd = Etcd::new();
    let endpoint = etcd.endpoint();
    assert!(endpoint.starts_with("http://127.0.0.1:"), "{endpoint}");
    let before = etcd.revision();
    let made = etcd.put("/t/a", r#"{"id": "a"}"#);
    assert!(made > before, "a put makes a revision: {before} -> {made}");
    etcd.put("/t/b", "-starts with a dash");
    assert_eq!(etcd.get("/t/a").as_deref(), Some(r#"{"id": "a"}"#));
    assert_eq!(etcd.keys("/t/"), ["/t/a", "/t/b"]);

    etcd.stop();
    assert!(!etcd.healthy(), "stopped etcd must not answer");
    etcd.start();
    assert_eq!(etcd.endpoint(), endpoint, "same port after the restart");
    assert_eq!(etcd.get("/t/b").as_deref(), Some("-starts with a dash"));
    assert!(etcd.delete("/t/a"));
    assert!(!etcd.delete("/t/a"), "deleted already");
    assert_eq!(etcd.delete_prefix("/t/"), 1);
    assert_eq!(etcd.get("/t/b"), None);

    let data = etcd.log_path();
    let dir = data.parent().map(ToOwned::to_owned);
    drop(etcd);
    let dir = dir.unwrap_or_else(|| panic!("the log has a directory"));
    assert!(!dir.exists(), "{} left behind", dir.display());
    let port: u16 = endpoint
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {endpoint}"));
    assert!(
        std::net::TcpListener::bind(("127.0.0.1", port)).is_ok(),
        "etcd still holds port {port} after drop"
    );
}
