//! `config/systemd/secgroupd.service` under a real systemd.
//!
//! The shipped unit, every hardening directive as it is, is run by the
//! distribution's systemd (252 on Debian 12) booted as PID 1 of its own
//! namespaces, the way a container manager runs it: new PID, mount,
//! network, UTS, IPC and cgroup namespaces, `container=` set, a cgroup2
//! tree delegated to it (one sub-cgroup of ours, the root of its cgroup
//! namespace), its own /run, /tmp, /var, /dev, a read-only /sys of its
//! network namespace with its own bpffs at /sys/fs/bpf, the host's root
//! file system read-only, and /etc writable through an overlay whose
//! writes stay in memory. Nothing it does reaches the host: every mount
//! is private, the network namespace holds only the test's veth pairs,
//! and killing the cgroup ends it all.
//!
//! The test then checks, through `systemctl` and `secgroupctl` run inside:
//!
//! - `Type=notify`: `systemctl start` returns once the unit is active,
//!   which systemd records only after the daemon logged its first policy
//!   applied (timestamps of both, same clock); by then the hooks are on
//!   the interface and the status text is the one sent with READY=1;
//! - the hardening is in force (the capability sets, no_new_privs,
//!   seccomp, a read-only root) and lets the daemon do its work: load and
//!   pin the BPF objects, attach XDP and TCX, follow links over netlink,
//!   watch the rules directory, serve the socket (mode 0660, group
//!   `secgroup`: CAP_CHOWN), trace packets through the live programs;
//! - `systemctl reload` (ExecReload: SIGHUP) makes the daemon reload;
//! - `kill -9` of the main PID: systemd restarts it after RestartSec, the
//!   hooks keep filtering in between, and the new daemon adopts the same
//!   pinned maps and links;
//! - `systemctl stop` is a clean exit that leaves the hooks pinned, and
//!   `secgroupd --uninstall` removes them.
//!
//! The copy of the unit differs from the shipped one only in its paths,
//! all private to this test: the runtime, state and configuration
//! directories and, through the documented environment variables, the
//! rules directory, socket, state and pin directories. `ExecStart=` stays
//! as shipped: the binaries under test are bind-mounted at its path
//! inside.
//!
//! Root only: without it the test skips loudly, under CI=true it fails.
//! Needs systemd, util-linux (unshare, nsenter, setpriv), coreutils and
//! iproute2.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use secgroup_testbed::wait_for;
use serde_json::Value;

/// The unit under test, as shipped.
const SHIPPED_UNIT: &str = include_str!("../../config/systemd/secgroupd.service");

/// Every name this test gives a file, cgroup or pin directory starts so.
const PREFIX: &str = "secgroup-systemd-test-";

/// The capabilities the unit grants, by number (linux/capability.h).
const CAPS: &[(&str, u32)] = &[
    ("CAP_CHOWN", 0),
    ("CAP_NET_ADMIN", 12),
    ("CAP_PERFMON", 38),
    ("CAP_BPF", 39),
];

/// Units of the host's OS this test's systemd must not start: they would
/// act on the kernel or hardware shared with the host (sysctls, modules,
/// binfmt, the clock, pstore, the entropy pool) or want a first boot.
const MASKED: &[&str] = &[
    "kmod-static-nodes.service",
    "proc-sys-fs-binfmt_misc.automount",
    "systemd-binfmt.service",
    "systemd-firstboot.service",
    "systemd-machine-id-commit.service",
    "systemd-modules-load.service",
    "systemd-pstore.service",
    "systemd-random-seed.service",
    "systemd-sysctl.service",
    "systemd-timesyncd.service",
];

/// What the boot brings up: sysinit.target (journald, tmpfiles, ...),
/// nothing of the host's multi-user.target. secgroupd is started by the
/// test.
const BOOT_TARGET: &str = "[Unit]
Description=secgroup systemd test
Requires=sysinit.target
After=sysinit.target
AllowIsolate=yes
";

/// Runs as PID 1 of the new namespaces (`unshare --fork`): builds the
/// container's file system view, then becomes systemd. Parameters come
/// in `SG_*` variables; `env -i` keeps them from systemd.
const SETUP: &str = r#"
set -eu
# Nothing mounted from here on propagates to the host.
mount --make-rprivate /
# A fresh /run: systemd's state, the journal, the overlays' upper layers.
mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /run
mkdir -p /run/sgtest/etc/upper /run/sgtest/etc/work /run/sgtest/bin/upper /run/sgtest/bin/work
# /etc and the directory of ExecStart's binary writable, in memory only.
mount -t overlay overlay -o lowerdir=/etc,upperdir=/run/sgtest/etc/upper,workdir=/run/sgtest/etc/work /etc
mount -t overlay overlay -o "lowerdir=$SG_EXEC_DIR,upperdir=/run/sgtest/bin/upper,workdir=/run/sgtest/bin/work" "$SG_EXEC_DIR"
: > "$SG_EXEC_DIR/secgroupd"
mount --bind "$SG_SECGROUPD" "$SG_EXEC_DIR/secgroupd"
: > "$SG_EXEC_DIR/secgroupctl"
mount --bind "$SG_SECGROUPCTL" "$SG_EXEC_DIR/secgroupctl"
# Its own machine id, the group that gets the API socket, a journal in
# memory, the units (the copy of secgroupd.service where xtask install
# puts it, the boot target, the masks).
tr -d - < /proc/sys/kernel/random/uuid > /etc/machine-id
grep -q '^secgroup:' /etc/group || echo "secgroup:x:$SG_GID:" >> /etc/group
mkdir -p /etc/systemd/journald.conf.d
printf '[Journal]\nStorage=volatile\n' > /etc/systemd/journald.conf.d/secgroup-test.conf
rm -rf /etc/systemd/system/secgroupd.service.d
cp -a "$SG_STAGE/." /etc/systemd/system/
# The host's files read-only.
mount -o remount,bind,ro /
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /tmp
mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /var
mkdir -m 1777 /var/tmp
mkdir -p /var/log /var/lib /var/cache /var/spool /run/lock
ln -s ../run /var/run
ln -s ../run/lock /var/lock
# /proc is this PID namespace's (unshare --mount-proc); kernel tunables
# read-only, except this network namespace's.
mount --bind /proc/sys /proc/sys
mount --bind /proc/sys/net /proc/sys/net
mount -o remount,bind,ro /proc/sys
# /sys of this network namespace, read-only, with the cgroup namespace's
# cgroup2 tree and a bpffs of its own, both writable (systemd mounts
# bpffs at /sys/fs/bpf on a host).
umount -l /sys
mount -t sysfs -o ro,nosuid,nodev,noexec sysfs /sys
mount -t cgroup2 -o nosuid,nodev,noexec cgroup2 /sys/fs/cgroup
mount -t bpf -o mode=0700 bpf /sys/fs/bpf
# A /dev of a few nodes; /dev/console a plain file collecting what PID 1
# prints there.
umount -l /dev
mount -t tmpfs -o mode=0755,nosuid tmpfs /dev
mknod -m 0666 /dev/null c 1 3
mknod -m 0666 /dev/zero c 1 5
mknod -m 0666 /dev/full c 1 7
mknod -m 0666 /dev/random c 1 8
mknod -m 0666 /dev/urandom c 1 9
mknod -m 0666 /dev/tty c 5 0
mkdir /dev/pts /dev/shm
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts /dev/pts
ln -s pts/ptmx /dev/ptmx
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /dev/shm
ln -s /proc/self/fd /dev/fd
ln -s /proc/self/fd/0 /dev/stdin
ln -s /proc/self/fd/1 /dev/stdout
ln -s /proc/self/fd/2 /dev/stderr
: > /dev/console
exec env -i container=secgroup-test PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    "$SG_SYSTEMD" --unit=secgroup-test.target
"#;

/// Moves the launcher into the delegated cgroup, then into the new
/// namespaces; `--kill-child` ends PID 1 (and so the namespace) when the
/// launcher dies, and setpriv's `--pdeathsig` ends the launcher when the
/// test does.
const LAUNCH: &str = r#"
echo $$ > "$SG_CGROUP/cgroup.procs" || exit 1
exec unshare --cgroup --pid --fork --mount-proc --net --uts --ipc --kill-child=SIGKILL sh -c "$SG_SETUP"
"#;

const UNIT: &str = "secgroupd.service";

#[test]
fn secgroupd_service_under_a_real_systemd() {
    if !secgroup_testbed::root_or_skip("secgroupd_service_under_a_real_systemd") {
        return;
    }
    let started = Instant::now();
    sweep_leftovers();
    let name = format!("{PREFIX}{}", std::process::id());
    let paths = Paths::new(&name);
    let container = Container::boot(&name, &test_unit(SHIPPED_UNIT, &name));
    eprintln!(
        "systemd booted as PID 1 of its own namespaces in {:.1?}",
        started.elapsed()
    );

    check_unit_is_the_shipped_one(&container);
    let rules = container.path(&paths.rules_dir);
    fs::create_dir_all(&rules).unwrap_or_else(|e| panic!("creating {}: {e}", rules.display()));
    fs::write(rules.join("vm.json"), rules_json(22))
        .unwrap_or_else(|e| panic!("writing the rules: {e}"));
    container.veth("sgt0");

    check_notify_readiness(&container, &paths);
    check_hardening_in_force(&container, &paths);
    check_the_daemon_works_in_the_sandbox(&container, &paths);
    check_reload(&container, &paths);
    check_restart_on_failure_keeps_the_pins(&container, &paths);
    check_stop_and_uninstall(&container, &paths);
    check_daemon_logged_no_warning(&container);

    drop(container);
    assert!(
        !Path::new("/sys/fs/bpf").join(&name).exists(),
        "nothing was pinned on the host's bpffs"
    );
    eprintln!(
        "secgroupd.service under systemd: all checks passed in {:.1?}",
        started.elapsed()
    );
}

// ---- the checks ----------------------------------------------------------

fn check_unit_is_the_shipped_one(c: &Container) {
    assert_eq!(c.show(UNIT, "LoadState"), "loaded", "{}", c.status());
    assert_eq!(
        c.show(UNIT, "FragmentPath"),
        "/etc/systemd/system/secgroupd.service"
    );
    assert_eq!(c.show(UNIT, "Type"), "notify");
    assert_eq!(c.show(UNIT, "NotifyAccess"), "main");
    assert_eq!(c.show(UNIT, "Restart"), "on-failure");
    assert_eq!(c.show(UNIT, "ProtectSystem"), "strict");
    assert_eq!(
        c.show(UNIT, "DropInPaths"),
        "",
        "no drop-in alters the unit"
    );
    // `systemd-analyze verify` passes what systemd ignores with a warning
    // when it loads the unit: the manager itself must not complain, neither
    // at boot (on its console, before journald runs) nor on a reload.
    c.ok(&["systemctl", "daemon-reload"]);
    let log = format!(
        "{}\n{}",
        fs::read_to_string(c.path("/dev/console")).unwrap_or_default(),
        c.ok(&["journalctl", "-b", "-o", "cat", "--no-pager"])
    );
    let complaints: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("secgroupd.service:"))
        .collect();
    assert!(
        complaints.is_empty(),
        "systemd complains about the unit: {complaints:#?}"
    );
}

/// Type=notify: the unit is active only once the daemon said READY=1,
/// which it does after its first policy is applied.
fn check_notify_readiness(c: &Container, p: &Paths) {
    let t = Instant::now();
    c.ok_within(60, &["systemctl", "start", UNIT]);
    let took = t.elapsed();
    // Right away, no waiting: what a unit ordered After=secgroupd may
    // rely on once systemctl start returns.
    assert_eq!(c.show(UNIT, "ActiveState"), "active", "{}", c.status());
    assert_eq!(c.show(UNIT, "SubState"), "running");
    let status_text = c.show(UNIT, "StatusText");
    assert!(
        status_text.starts_with("generation 1") && status_text.contains("attached"),
        "the STATUS= sent with READY=1: {status_text:?}"
    );
    let ifindex = c.ifindex("sgt0");
    assert!(
        c.xdp_prog("sgt0").is_some(),
        "XDP attached before the unit is active"
    );
    for link in ["xdp", "tcx"] {
        let pin = c.path(&format!("{}/links/{ifindex}_{link}", p.pin_dir));
        assert!(pin.exists(), "{} pinned before active", pin.display());
    }

    let exec_started = parse_systemd_time(&c.show(UNIT, "ExecMainStartTimestamp"));
    let active = parse_systemd_time(&c.show(UNIT, "ActiveEnterTimestamp"));
    let applied_line = wait_for(
        Duration::from_secs(5),
        "the startup reload in the journal",
        || {
            c.daemon_log()
                .lines()
                .find(|l| l.contains("reload applied trigger=Startup"))
                .map(str::to_owned)
        },
    );
    let applied = parse_log_time(&applied_line);
    assert!(
        exec_started <= applied && applied <= active,
        "the unit must become active only after the first policy is applied and READY=1 sent: \
         main process started at {exec_started} µs, policy applied at {applied} µs, \
         unit active at {active} µs (CLOCK_REALTIME)"
    );
    eprintln!(
        "readiness: systemctl start took {took:.1?}; the daemon ran {:.1} ms before systemd \
         made the unit active, {:.1} ms after its first policy was applied",
        (active - exec_started) as f64 / 1000.0,
        (active - applied) as f64 / 1000.0
    );
    assert_eq!(c.show(UNIT, "NRestarts"), "0");
}

fn check_hardening_in_force(c: &Container, p: &Paths) {
    let pid = c.main_pid();
    let proc_status = c.read(&format!("/proc/{pid}/status"));
    let field = |name: &str| -> String {
        proc_status
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:")))
            .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/status"))
            .trim()
            .to_owned()
    };
    let want: u64 = CAPS.iter().map(|(_, bit)| 1u64 << bit).sum();
    for set in ["CapBnd", "CapPrm", "CapEff"] {
        let got = u64::from_str_radix(&field(set), 16)
            .unwrap_or_else(|e| panic!("{set}: {e}: {proc_status}"));
        assert_eq!(
            got,
            want,
            "{set} of the daemon is exactly {:?}",
            CAPS.iter().map(|(n, _)| *n).collect::<Vec<_>>()
        );
    }
    assert_eq!(u64::from_str_radix(&field("CapAmb"), 16).ok(), Some(0));
    assert_eq!(field("NoNewPrivs"), "1");
    assert_eq!(field("Seccomp"), "2", "a seccomp filter is installed");

    // ProtectSystem=strict: the root read-only for the daemon, the pin
    // directory's bpffs and its runtime directory writable.
    let mounts = c.read(&format!("/proc/{pid}/mountinfo"));
    // The last mount on a mount point is the one the daemon sees.
    let options = |mount_point: &str| -> String {
        mounts
            .lines()
            .rfind(|l| l.split(' ').nth(4) == Some(mount_point))
            .and_then(|l| l.split(' ').nth(5))
            .unwrap_or_else(|| panic!("{mount_point} is not a mount point of the daemon: {mounts}"))
            .to_owned()
    };
    let has = |opts: &str, o: &str| opts.split(',').any(|x| x == o);
    assert!(has(&options("/"), "ro"), "root read-only: {}", options("/"));
    assert!(has(&options("/sys/fs/bpf"), "rw"), "bpffs writable");
    assert!(has(&options(&p.runtime_dir), "rw"), "runtime dir writable");
    assert!(has(&options(&p.state_dir), "rw"), "state dir writable");
    assert!(has(&options("/etc"), "ro"), "/etc read-only for the daemon");

    // The socket: 0660, group secgroup (the daemon chowned it).
    let gid: u32 = c
        .ok(&["getent", "group", "secgroup"])
        .trim()
        .split(':')
        .nth(2)
        .and_then(|g| g.parse().ok())
        .unwrap_or_else(|| panic!("no group secgroup in the container"));
    let socket = fs::metadata(c.path(&p.socket)).unwrap_or_else(|e| panic!("the socket: {e}"));
    assert_eq!(socket.permissions().mode() & 0o7777, 0o660, "socket mode");
    assert_eq!(socket.gid(), gid, "the socket belongs to group secgroup");
    let dir = fs::metadata(c.path(&p.runtime_dir)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        dir.permissions().mode() & 0o7777,
        0o755,
        "RuntimeDirectoryMode"
    );
}

/// BPF_PROG_TEST_RUN, netlink, inotify on the rules directory, the API.
fn check_the_daemon_works_in_the_sandbox(c: &Container, p: &Paths) {
    let status = c.status_api(p);
    assert_eq!(status.generation, 1);
    assert_eq!(
        status.attach("ins-a"),
        ("attached", Some(false)),
        "a fresh attach"
    );
    assert_eq!(
        status.attach("ins-b").0,
        "waiting",
        "sgt1 does not exist yet"
    );

    // Trace: the live programs through BPF_PROG_TEST_RUN.
    assert_eq!(c.trace(p, 22), 0, "tcp/22 accepted");
    assert_eq!(c.trace(p, 23), 1, "tcp/23 dropped");

    // Netlink: a new interface is seen and attached.
    c.veth("sgt1");
    wait_for(Duration::from_secs(10), "ins-b to attach", || {
        (c.status_api(p).attach("ins-b").0 == "attached").then_some(())
    });

    // inotify on the configuration directory: a rule change is enforced.
    let rules = c.path(&p.rules_dir);
    fs::write(rules.join(".vm.json.tmp"), rules_json(2222)).unwrap_or_else(|e| panic!("{e}"));
    fs::rename(rules.join(".vm.json.tmp"), rules.join("vm.json")).unwrap_or_else(|e| panic!("{e}"));
    let status = wait_for(Duration::from_secs(10), "generation 2", || {
        Some(c.status_api(p)).filter(|s| s.generation == 2)
    });
    assert_eq!(status.trigger, "watch");
    assert_eq!(c.trace(p, 22), 1, "tcp/22 dropped by the new rules");
    assert_eq!(c.trace(p, 2222), 0, "tcp/2222 accepted by the new rules");

    // A mutating API call (SO_PEERCRED, /proc/PID/status of the client).
    let before = c.status_api(p).reloads;
    c.ctl(p, &["reload"]);
    let status = c.status_api(p);
    assert_eq!(status.reloads, before + 1);
    assert_eq!(status.trigger, "api");
}

/// ExecReload: `systemctl reload` signals the main PID, which reloads.
fn check_reload(c: &Container, p: &Paths) {
    let pid = c.main_pid();
    let before = c.status_api(p);
    c.ok(&["systemctl", "reload", UNIT]);
    let status = wait_for(Duration::from_secs(10), "the SIGHUP reload", || {
        Some(c.status_api(p)).filter(|s| s.reloads > before.reloads)
    });
    assert_eq!(status.trigger, "signal", "{status:?}");
    assert_eq!(status.outcome, "unchanged", "{status:?}");
    assert_eq!(status.generation, before.generation);
    assert_eq!(c.show(UNIT, "ActiveState"), "active");
    assert_eq!(c.main_pid(), pid, "a reload is not a restart");
}

/// Restart=on-failure: SIGKILL the daemon; the hooks stay, systemd starts
/// a new one, which adopts the pinned maps and links.
fn check_restart_on_failure_keeps_the_pins(c: &Container, p: &Paths) {
    let old_pid = c.main_pid();
    let ifindex = c.ifindex("sgt0");
    let pins = [
        format!("{}/links/{ifindex}_xdp", p.pin_dir),
        format!("{}/links/{ifindex}_tcx", p.pin_dir),
        format!("{}/sg_ct", p.pin_dir),
        format!("{}/sg_ifaces", p.pin_dir),
        format!("{}/sg_rules", p.pin_dir),
    ];
    let inodes = |c: &Container| -> Vec<u64> {
        pins.iter()
            .map(|pin| {
                fs::metadata(c.path(pin))
                    .unwrap_or_else(|e| panic!("{pin}: {e}"))
                    .ino()
            })
            .collect()
    };
    let inodes_before = inodes(c);
    let prog_before = c.xdp_prog("sgt0");
    assert!(prog_before.is_some());

    c.ok(&["kill", "-KILL", &old_pid.to_string()]);
    // RestartSec=1s: systemd waits, with no daemon running. (Should a
    // loaded machine poll too slowly to see that second, the restart
    // itself is checked below all the same.)
    let waiting = wait_for(
        Duration::from_secs(10),
        "the unit to wait for its restart",
        || match c.show(UNIT, "SubState").as_str() {
            "auto-restart" => Some(true),
            _ if c.show(UNIT, "NRestarts") != "0" => Some(false),
            _ => None,
        },
    );
    if waiting {
        assert_eq!(c.show(UNIT, "Result"), "signal");
        assert_eq!(
            c.xdp_prog("sgt0"),
            prog_before,
            "the hooks stay while no daemon runs"
        );
        assert_eq!(inodes(c), inodes_before, "and so do the pins");
    } else {
        eprintln!("note: the restart came before this test saw the unit waiting for it");
    }

    let new_pid = wait_for(
        Duration::from_secs(15),
        "systemd to restart the daemon",
        || {
            let pid = c.main_pid();
            (c.show(UNIT, "ActiveState") == "active" && pid != 0 && pid != old_pid).then_some(pid)
        },
    );
    assert_eq!(c.show(UNIT, "NRestarts"), "1");
    let manager_log = c.ok(&["journalctl", "-u", UNIT, "-t", "systemd", "-o", "cat"]);
    for said in [
        "Main process exited, code=killed, status=9/KILL",
        "Scheduled restart job, restart counter is at 1",
    ] {
        assert!(
            manager_log.contains(said),
            "systemd said {said:?}: {manager_log}"
        );
    }
    assert_ne!(new_pid, old_pid);
    assert_eq!(
        inodes(c),
        inodes_before,
        "the restarted daemon took over the pins, it did not recreate them"
    );
    // The adopted links now run the programs the new daemon loaded (a
    // link update: the hook never left the interface).
    assert!(c.xdp_prog("sgt0").is_some(), "XDP still on the tap");
    let status = c.status_api(p);
    for instance in ["ins-a", "ins-b"] {
        assert_eq!(
            status.attach(instance),
            ("attached", Some(true)),
            "{instance}: the pinned links are adopted"
        );
    }
    assert!(
        c.daemon_log()
            .contains("adopted the maps a previous secgroupd pinned"),
        "the new daemon says it adopted the pins"
    );
    assert_eq!(c.trace(p, 2222), 0, "the policy is still in force");
    assert_eq!(c.trace(p, 22), 1, "the policy is still in force");
}

/// `systemctl stop`: a clean exit, the hooks stay; --uninstall removes
/// them.
fn check_stop_and_uninstall(c: &Container, p: &Paths) {
    c.ok_within(30, &["systemctl", "stop", UNIT]);
    assert_eq!(c.show(UNIT, "ActiveState"), "inactive", "{}", c.status());
    assert_eq!(c.show(UNIT, "Result"), "success", "clean exit on SIGTERM");
    assert!(
        !c.path(&p.runtime_dir).exists(),
        "the runtime directory is removed"
    );
    assert!(c.xdp_prog("sgt0").is_some(), "the hooks stay after a stop");
    assert!(c.path(&p.pin_dir).exists(), "the pins stay after a stop");

    // By hand, as an operator would, with the unit's environment.
    c.ok(&[
        "env",
        &format!("SECGROUP_STATE_DIR={}", p.state_dir),
        &c.daemon,
        "--uninstall",
        "--bpffs",
        &p.pin_dir,
        "--socket",
        &p.socket,
    ]);
    assert!(!c.path(&p.pin_dir).exists(), "--uninstall removes the pins");
    wait_for(Duration::from_secs(5), "the hooks to detach", || {
        c.xdp_prog("sgt0").is_none().then_some(())
    });
}

fn check_daemon_logged_no_warning(c: &Container) {
    let log = c.daemon_log();
    let bad: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
        .collect();
    assert!(
        bad.is_empty(),
        "under the unit's sandbox the daemon warned or failed: {bad:#?}\n\
         (a path it writes outside /run/<RuntimeDirectory>, /var/lib/<StateDirectory> \
         and /sys/fs/bpf is read-only under ProtectSystem=strict: declare it in the unit)"
    );
}

// ---- the unit copy and the rules ----------------------------------------

/// The test's private paths, as seen inside the container.
struct Paths {
    rules_dir: String,
    socket: String,
    runtime_dir: String,
    state_dir: String,
    pin_dir: String,
}

impl Paths {
    fn new(name: &str) -> Paths {
        Paths {
            rules_dir: format!("/etc/{name}/rules.d"),
            socket: format!("/run/{name}/secgroupd.sock"),
            runtime_dir: format!("/run/{name}"),
            state_dir: format!("/var/lib/{name}"),
            pin_dir: format!("/sys/fs/bpf/{name}"),
        }
    }
}

/// The shipped unit with private paths: RuntimeDirectory= and
/// ConfigurationDirectory= renamed, and the daemon's paths set through
/// its environment variables (as the unit's header says a drop-in
/// would). Every other line is kept as it is, hardening included.
fn test_unit(shipped: &str, name: &str) -> String {
    let paths = Paths::new(name);
    let mut out = String::new();
    let mut rewritten = Vec::new();
    for line in shipped.lines() {
        match line.split_once('=') {
            Some(("RuntimeDirectory", "secgroup"))
            | Some(("StateDirectory", "secgroup"))
            | Some(("ConfigurationDirectory", "secgroup")) => {
                let key = line.split('=').next().unwrap_or_default();
                out.push_str(&format!("{key}={name}\n"));
                rewritten.push(key.to_owned());
            }
            Some(("ExecStart", _)) => {
                out.push_str(line);
                out.push('\n');
                out.push_str(&format!(
                    "Environment=SECGROUP_RULES_DIR={} SECGROUP_SOCKET={} SECGROUP_BPFFS={} \
                     SECGROUP_STATE_DIR={}\n",
                    paths.rules_dir, paths.socket, paths.pin_dir, paths.state_dir
                ));
                rewritten.push("ExecStart".to_owned());
            }
            _ => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    rewritten.sort();
    assert_eq!(
        rewritten,
        [
            "ConfigurationDirectory",
            "ExecStart",
            "RuntimeDirectory",
            "StateDirectory"
        ],
        "the shipped unit changed its paths: update this test's copy"
    );
    out
}

/// The binary ExecStart= runs (without its arguments or prefixes).
fn exec_start_binary(unit: &str) -> PathBuf {
    let value = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .unwrap_or_else(|| panic!("no ExecStart= in the unit"));
    let binary = value
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .trim_start_matches(['-', '@', ':', '+', '!']);
    assert!(
        !value.starts_with('+') && !value.starts_with('!'),
        "ExecStart={value}: a '+' or '!' prefix would run the daemon outside the sandbox"
    );
    assert!(binary.starts_with('/'), "ExecStart={value}");
    PathBuf::from(binary)
}

/// Instance ins-a on sgt0 and ins-b on sgt1 (created later), both in one
/// group accepting tcp/`port` from 198.51.100.0/24.
fn rules_json(port: u16) -> String {
    format!(
        r#"{{
  "security_groups": [
    {{ "id": "sg-ssh", "name": "ssh",
      "ingress": [ {{ "action": "accept", "protocol": "tcp", "port": "{port}", "remote": "198.51.100.0/24" }} ],
      "egress": [ {{ "action": "accept", "protocol": "all" }} ] }}
  ],
  "instances": [
    {{ "id": "ins-a", "interface": "sgt0", "ips": ["198.51.100.5"], "security_groups": ["sg-ssh"] }},
    {{ "id": "ins-b", "interface": "sgt1", "ips": ["198.51.100.6"], "security_groups": ["sg-ssh"] }}
  ]
}}
"#
    )
}

// ---- the container -------------------------------------------------------

/// systemd as PID 1 of its own namespaces, in a cgroup of its own.
/// Dropping it kills everything in that cgroup and removes the cgroup and
/// the staging directory; the namespaces, and every mount, interface and
/// pin in them, go with their last process.
struct Container {
    /// The PID of the container's systemd, in the test's PID namespace.
    pid1: u32,
    /// setpriv → sh → unshare, the parent of PID 1.
    launcher: Child,
    cgroup: PathBuf,
    /// Host scratch: the units to install, the launcher's output.
    scratch: PathBuf,
    /// secgroupd and secgroupctl inside.
    daemon: String,
    ctl: String,
}

impl Container {
    fn boot(name: &str, unit: &str) -> Container {
        let systemd = ["/lib/systemd/systemd", "/usr/lib/systemd/systemd"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .unwrap_or_else(|| panic!("no systemd binary: install the Debian package systemd"));
        for tool in ["unshare", "nsenter", "setpriv", "timeout", "ip"] {
            assert!(
                Command::new(tool)
                    .arg("--version")
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok(),
                "{tool} is missing (util-linux, coreutils, iproute2)"
            );
        }
        let exec = exec_start_binary(unit);
        let exec_dir = exec
            .parent()
            .unwrap_or_else(|| panic!("ExecStart has no directory"))
            .to_owned();
        assert!(
            exec_dir.is_dir(),
            "{} (the directory of ExecStart=) does not exist on this host",
            exec_dir.display()
        );
        assert_eq!(
            exec.file_name().and_then(|n| n.to_str()),
            Some("secgroupd"),
            "ExecStart= runs {}",
            exec.display()
        );

        // Everything that may fail before anything is created.
        let secgroupd = secgroup_testbed::secgroupd_binary();
        let secgroupctl = secgroup_testbed::secgroupctl_binary();

        let scratch = std::env::temp_dir().join(name);
        let _ = fs::remove_dir_all(&scratch);
        let stage = scratch.join("units");
        fs::create_dir_all(&stage).unwrap_or_else(|e| panic!("creating {}: {e}", stage.display()));
        fs::write(stage.join(UNIT), unit).unwrap_or_else(|e| panic!("{e}"));
        fs::write(stage.join("secgroup-test.target"), BOOT_TARGET)
            .unwrap_or_else(|e| panic!("{e}"));
        for masked in MASKED {
            std::os::unix::fs::symlink("/dev/null", stage.join(masked))
                .unwrap_or_else(|e| panic!("masking {masked}: {e}"));
        }

        let cgroup = cgroup2_parent().join(name);
        fs::create_dir(&cgroup).unwrap_or_else(|e| panic!("creating {}: {e}", cgroup.display()));
        let log_path = scratch.join("launcher.log");
        let log = fs::File::create(&log_path).unwrap_or_else(|e| panic!("{e}"));
        let log2 = log.try_clone().unwrap_or_else(|e| panic!("{e}"));
        let launcher = Command::new("setpriv")
            .args(["--pdeathsig", "KILL", "--", "sh", "-c", LAUNCH])
            .env("SG_CGROUP", &cgroup)
            .env("SG_SETUP", SETUP)
            .env("SG_STAGE", &stage)
            .env("SG_EXEC_DIR", &exec_dir)
            .env("SG_SECGROUPD", &secgroupd)
            .env("SG_SECGROUPCTL", &secgroupctl)
            .env("SG_GID", "64123")
            .env("SG_SYSTEMD", systemd)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn();
        let launcher = match launcher {
            Ok(launcher) => launcher,
            Err(e) => {
                remove_cgroup_tree(&cgroup);
                let _ = fs::remove_dir_all(&scratch);
                panic!("starting the launcher: {e}");
            }
        };
        let mut container = Container {
            pid1: 0,
            launcher,
            cgroup,
            scratch,
            daemon: exec.display().to_string(),
            ctl: exec_dir.join("secgroupctl").display().to_string(),
        };
        let launcher_pid = container.launcher.id();
        let children = format!("/proc/{launcher_pid}/task/{launcher_pid}/children");
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut last_state = String::new();
        loop {
            if let Ok(Some(status)) = container.launcher.try_wait() {
                panic!(
                    "the container's launcher exited ({status}) before systemd booted:\n{}",
                    fs::read_to_string(&log_path).unwrap_or_default()
                );
            }
            if container.pid1 == 0 {
                container.pid1 = fs::read_to_string(&children)
                    .ok()
                    .and_then(|s| s.split_whitespace().next().and_then(|p| p.parse().ok()))
                    .unwrap_or(0);
            }
            let is_systemd = container.pid1 != 0
                && fs::read_to_string(format!("/proc/{}/comm", container.pid1))
                    .is_ok_and(|c| c.trim() == "systemd");
            if is_systemd {
                let out = container.run(10, &["systemctl", "is-system-running"]);
                last_state = String::from_utf8_lossy(&out.stdout).trim().to_owned();
                match last_state.as_str() {
                    "running" => break,
                    "degraded" => {
                        eprintln!(
                            "the container's systemd is degraded (a host unit failed in it):\n{}",
                            container.text(&["systemctl", "--failed", "--no-pager"])
                        );
                        break;
                    }
                    _ => {}
                }
            }
            assert!(
                Instant::now() < deadline,
                "systemd did not finish booting within 60 s (state {last_state:?}):\n{}\n{}",
                fs::read_to_string(&log_path).unwrap_or_default(),
                container.diagnostics()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        container
    }

    /// `path` inside the container, reached from the host.
    fn path(&self, path: &str) -> PathBuf {
        PathBuf::from(format!("/proc/{}/root{path}", self.pid1))
    }

    fn read(&self, path: &str) -> String {
        fs::read_to_string(self.path(path)).unwrap_or_else(|e| panic!("reading {path}: {e}"))
    }

    /// Runs `args` inside every namespace of the container, killed after
    /// `secs`.
    fn run(&self, secs: u32, args: &[&str]) -> Output {
        let pid = self.pid1.to_string();
        let secs = secs.to_string();
        Command::new("timeout")
            .args(["-k", "5", &secs, "nsenter", "-t", &pid, "-a", "--"])
            .args(args)
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .env("SYSTEMD_PAGER", "")
            .env("SYSTEMD_COLORS", "0")
            .env_remove("NOTIFY_SOCKET")
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("running {args:?} in the container: {e}"))
    }

    fn ok_within(&self, secs: u32, args: &[&str]) -> String {
        let out = self.run(secs, args);
        assert!(
            out.status.success(),
            "{args:?} failed ({}): {}{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.status()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn ok(&self, args: &[&str]) -> String {
        self.ok_within(30, args)
    }

    /// stdout and stderr, whatever the exit status.
    fn text(&self, args: &[&str]) -> String {
        let out = self.run(30, args);
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }

    /// One property of a unit; timestamps in UTC with microseconds.
    fn show(&self, unit: &str, property: &str) -> String {
        self.ok(&[
            "systemctl",
            "show",
            "--timestamp=us+utc",
            "-P",
            property,
            unit,
        ])
        .trim()
        .to_owned()
    }

    fn main_pid(&self) -> u32 {
        let pid = self.show(UNIT, "MainPID");
        pid.parse()
            .unwrap_or_else(|e| panic!("MainPID {pid:?}: {e}"))
    }

    fn status(&self) -> String {
        self.text(&["systemctl", "status", "--no-pager", "-l", "-n", "50", UNIT])
    }

    /// What the daemon wrote to the journal, one line per message.
    fn daemon_log(&self) -> String {
        self.ok(&["journalctl", "-t", "secgroupd", "-o", "cat", "--no-pager"])
    }

    fn diagnostics(&self) -> String {
        if self.pid1 == 0 {
            return String::new();
        }
        format!(
            "---- the container's console ----\n{}\n---- journal ----\n{}\n---- failed units ----\n{}",
            fs::read_to_string(self.path("/dev/console")).unwrap_or_default(),
            self.text(&["journalctl", "-b", "--no-pager", "-n", "300"]),
            self.text(&["systemctl", "--failed", "--no-pager"]),
        )
    }

    /// A veth pair `name` ↔ `name`p, both up, inside the container.
    fn veth(&self, name: &str) {
        let peer = format!("{name}p");
        self.ok(&[
            "ip", "link", "add", name, "type", "veth", "peer", "name", &peer,
        ]);
        self.ok(&["ip", "link", "set", name, "up"]);
        self.ok(&["ip", "link", "set", &peer, "up"]);
    }

    fn ifindex(&self, interface: &str) -> u32 {
        self.read(&format!("/sys/class/net/{interface}/ifindex"))
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("ifindex of {interface}: {e}"))
    }

    /// The id of the XDP program on `interface`, if any.
    fn xdp_prog(&self, interface: &str) -> Option<u64> {
        let out = self.ok(&["ip", "-d", "link", "show", "dev", interface]);
        let at = out.find("prog/xdp id ")?;
        out[at + "prog/xdp id ".len()..]
            .split_whitespace()
            .next()
            .and_then(|id| id.parse().ok())
    }

    fn ctl(&self, p: &Paths, args: &[&str]) -> String {
        let mut all = vec![self.ctl.as_str(), "--socket", &p.socket];
        all.extend_from_slice(args);
        self.ok(&all)
    }

    fn status_api(&self, p: &Paths) -> DaemonStatus {
        let json = self.ctl(p, &["--json", "status"]);
        let value: Value =
            serde_json::from_str(&json).unwrap_or_else(|e| panic!("status JSON: {e}: {json}"));
        DaemonStatus::of(&value).unwrap_or_else(|| panic!("unexpected status JSON: {json}"))
    }

    /// The exit status of `secgroupctl trace` for tcp from 198.51.100.1
    /// to ins-a's `port`: 0 accept, 1 drop.
    fn trace(&self, p: &Paths, port: u16) -> i32 {
        let port = port.to_string();
        let out = self.run(
            30,
            &[
                &self.ctl,
                "--socket",
                &p.socket,
                "trace",
                "--instance",
                "ins-a",
                "--direction",
                "ingress",
                "--protocol",
                "tcp",
                "--remote",
                "198.51.100.1",
                "--port",
                &port,
            ],
        );
        let code = out.status.code().unwrap_or(-1);
        assert!(
            code == 0 || code == 1,
            "trace failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        code
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}\n---- unit ----\n{}", self.diagnostics(), self.status());
        }
        kill_cgroup(&self.cgroup);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.launcher.try_wait() {
                Ok(Some(_)) | Err(_) => break,
                Ok(None) if Instant::now() >= deadline => {
                    let _ = self.launcher.kill();
                    let _ = self.launcher.wait();
                    break;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        remove_cgroup_tree(&self.cgroup);
        let _ = fs::remove_dir_all(&self.scratch);
    }
}

// ---- the daemon's status ---------------------------------------------------

/// The parts of `secgroupctl --json status` (docs/cli.md) this test
/// reads.
#[derive(Debug)]
struct DaemonStatus {
    generation: u64,
    reloads: u64,
    /// Of the last reload: `startup`, `watch`, `signal`, `api`.
    trigger: String,
    /// Of the last reload: `applied`, `unchanged`, `failed`.
    outcome: String,
    /// Instance id → attach state and, when attached, whether adopted.
    instances: Vec<(String, String, Option<bool>)>,
}

impl DaemonStatus {
    fn of(v: &Value) -> Option<DaemonStatus> {
        let last = &v["last_reload"];
        Some(DaemonStatus {
            generation: v["generation"].as_u64()?,
            reloads: v["reloads"].as_u64()?,
            trigger: last["trigger"].as_str().unwrap_or_default().to_owned(),
            outcome: last["outcome"].as_str().unwrap_or_default().to_owned(),
            instances: v["instances"]
                .as_array()?
                .iter()
                .map(|i| {
                    Some((
                        i["id"].as_str()?.to_owned(),
                        i["state"].as_str()?.to_owned(),
                        i["adopted"].as_bool(),
                    ))
                })
                .collect::<Option<_>>()?,
        })
    }

    fn attach(&self, instance: &str) -> (&str, Option<bool>) {
        self.instances
            .iter()
            .find(|(id, _, _)| id == instance)
            .map(|(_, state, adopted)| (state.as_str(), *adopted))
            .unwrap_or_else(|| panic!("no instance {instance}: {self:?}"))
    }
}

// ---- cgroups -------------------------------------------------------------

/// The cgroup2 directory of this process: the container's cgroup is
/// created below it.
fn cgroup2_parent() -> PathBuf {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_else(|e| panic!("{e}"));
    let mount = mountinfo
        .lines()
        .find_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            (right.split(' ').next() == Some("cgroup2")).then(|| left.split(' ').nth(4))?
        })
        .unwrap_or_else(|| panic!("no cgroup2 hierarchy mounted: the container needs one"));
    let own = fs::read_to_string("/proc/self/cgroup").unwrap_or_else(|e| panic!("{e}"));
    let own = own
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .unwrap_or("/");
    Path::new(mount).join(own.trim_start_matches('/'))
}

/// Kills every process in `cgroup` and below.
fn kill_cgroup(cgroup: &Path) {
    if !cgroup.exists() {
        return;
    }
    if fs::write(cgroup.join("cgroup.kill"), "1").is_ok() {
        return;
    }
    // Before Linux 5.14: one by one.
    let mut pending = vec![cgroup.to_owned()];
    while let Some(dir) = pending.pop() {
        for pid in fs::read_to_string(dir.join("cgroup.procs"))
            .unwrap_or_default()
            .split_whitespace()
        {
            let _ = Command::new("kill").args(["-KILL", pid]).status();
        }
        let entries = fs::read_dir(&dir).into_iter().flatten().flatten();
        pending.extend(entries.map(|e| e.path()).filter(|p| p.is_dir()));
    }
}

/// Removes `cgroup` and its children, deepest first, waiting (bounded)
/// for killed processes to leave.
fn remove_cgroup_tree(cgroup: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut dirs = Vec::new();
        let mut pending = vec![cgroup.to_owned()];
        while let Some(dir) = pending.pop() {
            let entries = fs::read_dir(&dir).into_iter().flatten().flatten();
            pending.extend(entries.map(|e| e.path()).filter(|p| p.is_dir()));
            dirs.push(dir);
        }
        let mut left = false;
        for dir in dirs.iter().rev() {
            if fs::remove_dir(dir).is_err() && dir.exists() {
                left = true;
            }
        }
        if !left {
            return;
        }
        if Instant::now() >= deadline {
            eprintln!("warning: could not remove the cgroup {}", cgroup.display());
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Containers of test runs that died without cleaning up: their process
/// is gone, their cgroup may still hold processes.
fn sweep_leftovers() {
    let parent = cgroup2_parent();
    for entry in fs::read_dir(&parent).into_iter().flatten().flatten() {
        let file_name = entry.file_name();
        let Some(pid) = file_name.to_str().and_then(|n| n.strip_prefix(PREFIX)) else {
            continue;
        };
        if Path::new("/proc").join(pid).exists() {
            continue;
        }
        kill_cgroup(&entry.path());
        remove_cgroup_tree(&entry.path());
        let _ = fs::remove_dir_all(std::env::temp_dir().join(&file_name));
    }
}

// ---- helpers -------------------------------------------------------------

/// `Tue 2026-12-01 21:49:07.886891 UTC` (systemctl --timestamp=us+utc)
/// in µs since the epoch.
fn parse_systemd_time(text: &str) -> i64 {
    let parts: Vec<&str> = text.split_whitespace().collect();
    match parts.as_slice() {
        [_, date, time, "UTC"] => civil_us(date, time),
        _ => panic!("unexpected systemd timestamp {text:?}"),
    }
}

/// The leading `2026-12-01T21:49:07.886891Z` of a daemon log line, in µs
/// since the epoch.
fn parse_log_time(line: &str) -> i64 {
    let stamp = line.split_whitespace().next().unwrap_or_default();
    let (date, time) = stamp
        .strip_suffix('Z')
        .and_then(|s| s.split_once('T'))
        .unwrap_or_else(|| panic!("no timestamp at the start of {line:?}"));
    civil_us(date, time)
}

/// `YYYY-MM-DD`, `HH:MM:SS[.ffffff]` (UTC) in µs since the epoch.
fn civil_us(date: &str, time: &str) -> i64 {
    let num = |s: &str| -> i64 {
        s.parse()
            .unwrap_or_else(|e| panic!("bad number {s:?} in {date} {time}: {e}"))
    };
    let d: Vec<i64> = date.split('-').map(num).collect();
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let t: Vec<i64> = hms.split(':').map(num).collect();
    assert!(d.len() == 3 && t.len() == 3, "bad time {date} {time}");
    let micros = num(&format!("{frac:0<6}")[..6]);
    // Days from the civil date (H. Hinnant's algorithm).
    let (y, m) = if d[1] <= 2 {
        (d[0] - 1, d[1])
    } else {
        (d[0], d[1])
    };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d[2] - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    ((days * 24 + t[0]) * 60 + t[1]) * 60_000_000 + t[2] * 1_000_000 + micros
}

#[test]
fn time_parsing() {
    assert_eq!(civil_us("1970-01-01", "00:00:00"), 0);
    assert_eq!(civil_us("2000-03-01", "00:00:01.5"), 951_868_801_500_000);
    assert_eq!(
        parse_systemd_time("Tue 2026-12-01 21:49:07.886891 UTC"),
        parse_log_time("2026-12-01T21:49:07.886891Z  INFO reload applied")
    );
    assert!(
        parse_systemd_time("Wed 2026-12-02 00:00:00.000001 UTC")
            > parse_log_time("2026-12-01T23:59:59.999999Z x")
    );
}

#[test]
fn the_test_unit_keeps_every_line_but_the_paths() {
    let name = format!("{PREFIX}1");
    let copy = test_unit(SHIPPED_UNIT, &name);
    let copy_lines: Vec<&str> = copy.lines().collect();
    for line in SHIPPED_UNIT.lines() {
        if [
            "RuntimeDirectory=",
            "StateDirectory=",
            "ConfigurationDirectory=",
        ]
        .iter()
        .any(|key| line.starts_with(key))
        {
            continue;
        }
        assert!(copy_lines.contains(&line), "the copy lost {line:?}");
    }
    assert!(copy.contains(&format!("RuntimeDirectory={name}\n")));
    assert!(copy.contains(&format!("ConfigurationDirectory={name}\n")));
    assert!(copy.contains(&format!("StateDirectory={name}\n")));
    assert!(copy.contains(&format!("SECGROUP_BPFFS=/sys/fs/bpf/{name}")));
    assert_eq!(
        exec_start_binary(SHIPPED_UNIT),
        PathBuf::from("/usr/local/bin/secgroupd")
    );
}
