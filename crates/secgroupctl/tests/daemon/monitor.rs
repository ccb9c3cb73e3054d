//! `secgroupctl monitor`: a logged drop shows up as one line naming the
//! rule, in text and in `--json`, and filters leave out what they should.

use std::io::{BufRead, BufReader};
use std::process::Child;
use std::sync::mpsc;
use std::time::Duration;

use secgroup_api::{EventVerdict, StreamLine};

use crate::lab::{GUEST_IP, Lab, root_or_skip};

const RULES: &str = r#"{
  "security_groups": [
    { "id": "sg-vm",
      "ingress": [ { "action": "accept", "protocol": "icmp", "log": true, "description": "pings in" } ],
      "egress": [ { "action": "drop", "protocol": "icmp", "remote": "198.51.100.1", "log": true, "description": "no pings out" } ] }
  ],
  "instances": [
    { "id": "ins-vm", "interface": "tap-vm", "ips": ["198.51.100.2"], "security_groups": ["sg-vm"] }
  ]
}
"#;

/// A running monitor and its lines as they come.
struct Monitor {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Monitor {
    fn start(lab: &Lab, args: &[&str]) -> Monitor {
        let mut child = lab.spawn_ctl(args);
        let stdout = child.stdout.take().unwrap_or_else(|| panic!("no stdout"));
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    return;
                }
            }
        });
        Monitor { child, lines }
    }

    fn line(&self) -> String {
        // Generous: the daemon answers at once, a loaded machine may not.
        self.lines
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("no line from secgroupctl monitor: {e}"))
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn monitor_prints_logged_verdicts() {
    if !root_or_skip("monitor_prints_logged_verdicts") {
        return;
    }
    let lab = Lab::start(RULES);
    // --json: the stream as it comes, the subscribed line first (so the
    // ping below cannot come before the monitor listens).
    let json = Monitor::start(&lab, &["--json", "monitor", "--verdict", "drop"]);
    let first: StreamLine = serde_json::from_str(&json.line()).unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(first, StreamLine::Subscribed { .. }), "{first:?}");

    // A host → guest ping is accepted (logged, but filtered out), the
    // guest's ping out is dropped by its rule.
    assert!(lab.host_pings_guest());
    assert!(!lab.guest_pings_host());
    let event = match serde_json::from_str(&json.line()).unwrap_or_else(|e| panic!("{e}")) {
        StreamLine::Event(event) => event,
        other => panic!("expected an event, got {other:?}"),
    };
    assert_eq!(event.verdict, EventVerdict::Drop);
    assert_eq!(event.instance.as_deref(), Some("ins-vm"));
    let rule = event.rule.as_ref().unwrap_or_else(|| panic!("no rule"));
    assert_eq!(
        (
            rule.security_group.as_str(),
            rule.index,
            rule.description.as_deref()
        ),
        ("sg-vm", 0, Some("no pings out"))
    );

    // Text: one line per event, time first.
    let text = Monitor::start(
        &lab,
        &["monitor", "--instance", "ins-vm", "--direction", "ingress"],
    );
    // Text mode prints nothing for the subscribed line, so the first
    // pings may come before it listens: ping until a line comes (each
    // ping is a new flow, logged by its rule).
    let line = (0..10)
        .find_map(|_| {
            assert!(lab.host_pings_guest());
            text.lines.recv_timeout(Duration::from_secs(1)).ok()
        })
        .unwrap_or_else(|| panic!("no line from the text monitor after 10 pings"));
    let (time, rest) = line.split_once(' ').unwrap_or_else(|| panic!("{line}"));
    assert_eq!(time.len(), "12:01:07.123".len(), "{line}");
    assert!(
        rest.starts_with(&format!("ins-vm ingress ACCEPT icmp 198.51.100.1 → {GUEST_IP} type 8 code 0 by sg-vm ingress #0 \"pings in\"")),
        "{line}"
    );

    // Refusals are the daemon's, with exit status 1.
    lab.ctl_piped(&["monitor", "--group", "sg-nope"]).exits(1);
}
