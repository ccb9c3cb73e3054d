//! The bad-input matrix: rule files and the exact diagnostics they must
//! produce (file:line:column: path: message), one row per error kind.

use secgroup_model::{Limits, SourceFile, load};

struct Case {
    name: &'static str,
    files: Vec<(&'static str, Vec<u8>)>,
    limits: Limits,
    expected: &'static [&'static str],
}

fn case(
    name: &'static str,
    files: &[(&'static str, &str)],
    expected: &'static [&'static str],
) -> Case {
    Case {
        name,
        files: files
            .iter()
            .map(|&(n, t)| (n, t.as_bytes().to_vec()))
            .collect(),
        limits: Limits::default(),
        expected,
    }
}

/// A one-file case named `r.json`.
fn one(name: &'static str, text: &str, expected: &'static [&'static str]) -> Case {
    case(name, &[("r.json", text)], expected)
}

fn check(case: &Case) {
    let sources: Vec<SourceFile<'_>> = case
        .files
        .iter()
        .map(|(name, bytes)| SourceFile { name, bytes })
        .collect();
    match load(&sources, &case.limits) {
        Ok(rules) => panic!(
            "case {:?}: loaded without errors ({} groups), expected:\n{}",
            case.name,
            rules.security_groups.len(),
            case.expected.join("\n")
        ),
        Err(diagnostics) => {
            let got: Vec<String> = diagnostics.0.iter().map(ToString::to_string).collect();
            if got != case.expected {
                panic!(
                    "case {:?}:\n--- got\n{}\n--- expected\n{}",
                    case.name,
                    got.join("\n"),
                    case.expected.join("\n")
                );
            }
        }
    }
}

/// Groups referenced by the instance cases.
const WEB: &str = r#"{"security_groups": [{"id": "sg-web"}]}"#;

fn cases() -> Vec<Case> {
    vec![
        // --- malformed JSON, located -------------------------------------
        one("empty file", "", &[
            "r.json:1:1: $: unexpected end of file; expected a value",
        ]),
        one("trailing comma", "{\n  \"security_groups\": [\n    {\"id\": \"sg-a\"},\n  ]\n}\n", &[
            "r.json:4:3: security_groups: trailing comma before ']'; JSON allows none",
        ]),
        one("missing colon", "{\"security_groups\" []}", &[
            "r.json:1:20: $: unexpected character '['; expected ':' after the key",
        ]),
        one("comment", "{\n  // web servers\n  \"security_groups\": []\n}", &[
            "r.json:2:3: $: unexpected character '/'; expected a key (a double-quoted string); JSON has no comments",
        ]),
        one("unterminated string", "{\"security_groups\": [{\"id\": \"sg-a}]}", &[
            "r.json:1:29: security_groups[0].id: unterminated string (missing closing '\"')",
        ]),
        one("single quotes", "{\"instances\": [{'id': 'x'}]}", &[
            "r.json:1:17: instances[0]: unexpected character '''; expected a key (a double-quoted string); JSON strings use double quotes",
        ]),
        one("bare word", "{\"security_groups\": [{\"id\": sg-a}]}", &[
            "r.json:1:29: security_groups[0].id: unexpected character 's'; expected a value; strings must be double-quoted",
        ]),
        one("trailing garbage", "{} x", &[
            "r.json:1:4: $: unexpected character 'x'; expected end of file after the top-level value",
        ]),
        one("leading zero", "{\"security_groups\": [{\"id\": \"sg-a\", \"ingress\": [{\"action\": \"accept\", \"protocol\": 06}]}]}", &[
            "r.json:1:82: security_groups[0].ingress[0].protocol: numbers must not have leading zeros",
        ]),
        one("bad escape", "{\"security_groups\": [{\"id\": \"sg-\\a\"}]}", &[
            "r.json:1:33: security_groups[0].id: invalid escape '\\a'; expected one of \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX",
        ]),
        one("lone surrogate", "{\"security_groups\": [{\"id\": \"sg-a\", \"name\": \"\\udead\"}]}", &[
            "r.json:1:46: security_groups[0].name: unpaired surrogate \\udead; a low surrogate must follow a high one",
        ]),
        one("column counts characters", "{\"security_groups\": [{\"name\": \"caf\u{e9} \u{1f600}\", \"id\": \"sg-\u{e9}\"}]}", &[
            "r.json:1:47: security_groups[0].id: \"sg-é\" is not a security group id: \"é\" is not allowed; use letters, digits, '_', '.' or '-'",
        ]),
        one("duplicate key", "{\"security_groups\": [{\"id\": \"sg-a\", \"id\": \"sg-b\"}]}", &[
            "r.json:1:37: security_groups[0].id: duplicate key \"id\" (first at line 1, column 23)",
        ]),
        one("root not an object", "[]", &[
            "r.json:1:1: $: expected an object, found an array",
        ]),
        one("too deep", &format!("{{\"security_groups\": {}{}}}", "[".repeat(70), "]".repeat(70)), &[
            "r.json:1:84: security_groups[0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0]: nesting deeper than 64 levels",
        ]),
        // --- unknown keys and wrong types ----------------------------------
        one("unknown top-level key", "{\"security_group\": []}", &[
            "r.json:1:2: security_group: unknown key \"security_group\"; expected one of security_groups, instances, address_sets, address_set_groups, service_sets, service_set_groups, $schema (did you mean \"security_groups\"?)",
        ]),
        one("unknown rule key with typo", "{\"security_groups\": [{\"id\": \"sg-a\", \"ingress\": [{\"action\": \"accept\", \"protcol\": \"tcp\", \"port\": \"22\"}]}]}", &[
            "r.json:1:70: security_groups[0].ingress[0].protcol: unknown key \"protcol\"; expected one of id, action, protocol, port, service, remote, description, log (did you mean \"protocol\"?)",
        ]),
        case("unknown instance key", &[("g.json", WEB), ("i.json", "{\"instances\": [{\"id\": \"i-1\", \"ip\": [\"198.51.100.5\"], \"ips\": [], \"security_groups\": [\"sg-web\"]}]}")], &[
            "i.json:1:30: instances[0].ip: unknown key \"ip\"; expected one of id, host, interface, mac, ips, allowed_address_pairs, port_security, security_groups, log, enforcement (did you mean \"ips\"?)",
        ]),
        // --- rule ids ------------------------------------------------------
        one("bad rule ids", r#"{"security_groups": [{"id": "sg-a", "ingress": [
  {"id": "ssh office", "action": "accept", "protocol": "tcp", "port": "22"},
  {"id": "", "action": "accept", "protocol": "tcp", "port": "80"},
  {"id": "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", "action": "drop", "protocol": "all"},
  {"id": 7, "action": "drop", "protocol": "all"}
]}]}"#, &[
            "r.json:2:10: security_groups[0].ingress[0].id: \"ssh office\" is not a rule id: \" \" is not allowed; use letters, digits, '_', '.' or '-'",
            "r.json:3:10: security_groups[0].ingress[1].id: empty rule id; expected a short name like \"ssh-office\" (or omit \"id\")",
            "r.json:4:10: security_groups[0].ingress[2].id: \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\" is not a rule id: 65 bytes, at most 64",
            "r.json:5:10: security_groups[0].ingress[3].id: expected a string, found number 7",
        ]),
        one("duplicate rule id", r#"{"security_groups": [{"id": "sg-a", "ingress": [
  {"id": "web", "action": "accept", "protocol": "tcp", "port": "80"},
  {"id": "web", "action": "accept", "protocol": "tcp", "port": "443"},
  {"id": "web", "action": "drop", "protocol": "all"}
], "egress": [
  {"id": "web", "action": "accept", "protocol": "all"}
]}, {"id": "sg-b", "ingress": [
  {"id": "web", "action": "accept", "protocol": "all"}
]}]}"#, &[
            // The same id in the other direction or another group is fine.
            "r.json:3:10: security_groups[0].ingress[1].id: duplicate rule id \"web\" in this group's ingress rules; first defined at r.json:2:10",
            "r.json:4:10: security_groups[0].ingress[2].id: duplicate rule id \"web\" in this group's ingress rules; first defined at r.json:2:10",
        ]),
        one("wrong types", "{\"security_groups\": [{\"id\": 7, \"name\": [\"x\"], \"ingress\": {}}, {\"id\": \"sg-b\", \"egress\": [\"accept\", {\"action\": true, \"protocol\": [6], \"port\": false}]}]}", &[
            "r.json:1:29: security_groups[0].id: expected a string, found number 7",
            "r.json:1:40: security_groups[0].name: expected a string, found an array",
            "r.json:1:58: security_groups[0].ingress: expected an array, found an object",
            "r.json:1:89: security_groups[1].egress[0]: expected an object, found string \"accept\"",
            "r.json:1:110: security_groups[1].egress[1].action: expected a string, found true",
            "r.json:1:128: security_groups[1].egress[1].protocol: expected a string or a number, found an array",
            "r.json:1:141: security_groups[1].egress[1].port: expected a string or a number, found false",
        ]),
        one("list not array", "{\"address_sets\": {\"id\": \"ipm-a\"}}", &[
            "r.json:1:18: address_sets: expected an array, found an object",
        ]),
        one("missing required keys", "{\"security_groups\": [{\"name\": \"x\", \"ingress\": [{\"protocol\": \"tcp\"}]}], \"instances\": [{\"id\": \"i-1\"}], \"address_sets\": [{\"id\": \"ipm-a\"}]}", &[
            "r.json:1:22: security_groups[0]: missing required key \"id\"",
            "r.json:1:48: security_groups[0].ingress[0]: missing required key \"action\"",
            "r.json:1:86: instances[0]: missing required key \"ips\"",
            "r.json:1:86: instances[0]: missing required key \"security_groups\"",
            "r.json:1:119: address_sets[0]: missing required key \"addresses\"",
        ]),
        // --- addresses -----------------------------------------------------
        one("cidr too long", "{\"address_sets\": [{\"id\": \"ipm-a\", \"addresses\": [\"198.51.100.0/33\", \"2001:db8::/129\", \"198.51.100.0/-1\"]}]}", &[
            "r.json:1:49: address_sets[0].addresses[0]: \"198.51.100.0/33\" is not a CIDR: prefix length 33 is longer than 32 bits",
            "r.json:1:68: address_sets[0].addresses[1]: \"2001:db8::/129\" is not a CIDR: prefix length 129 is longer than 128 bits",
            "r.json:1:86: address_sets[0].addresses[2]: \"198.51.100.0/-1\" is not a CIDR: \"-1\" is not a prefix length 0-32",
        ]),
        one("host bits", "{\"security_groups\": [{\"id\": \"sg-a\", \"ingress\": [{\"action\": \"accept\", \"protocol\": \"all\", \"remote\": \"198.51.100.5/24\"}, {\"action\": \"accept\", \"protocol\": \"all\", \"remote\": \"2001:db8::1/32\"}]}]}", &[
            "r.json:1:99: security_groups[0].ingress[0].remote: \"198.51.100.5/24\" has host bits set; did you mean \"198.51.100.0/24\"?",
            "r.json:1:169: security_groups[0].ingress[1].remote: \"2001:db8::1/32\" has host bits set; did you mean \"2001:db8::/32\"?",
        ]),
        one("reversed and mixed address ranges", "{\"address_sets\": [{\"id\": \"ipm-a\", \"addresses\": [\"198.51.100.20-198.51.100.10\", \"198.51.100.1-2001:db8::1\", \"198.51.100.1-\"]}]}", &[
            "r.json:1:49: address_sets[0].addresses[0]: \"198.51.100.20-198.51.100.10\" is not an address range (start > end)",
            "r.json:1:80: address_sets[0].addresses[1]: \"198.51.100.1-2001:db8::1\" is not an address range: it mixes IPv4 and IPv6",
            "r.json:1:108: address_sets[0].addresses[2]: \"198.51.100.1-\" is not an address range; expected an IPv4/IPv6 address, a CIDR like \"203.0.113.0/24\" or a range like \"198.51.100.10-198.51.100.20\"",
        ]),
        one("bad addresses", "{\"address_sets\": [{\"id\": \"ipm-a\", \"addresses\": [\"198.51.100.256\", \"example.com\", \"\", \"198.51.100.7\", \"198.51.100.7\"]}]}", &[
            "r.json:1:49: address_sets[0].addresses[0]: \"198.51.100.256\" is not an address; expected an IPv4/IPv6 address, a CIDR like \"203.0.113.0/24\" or a range like \"198.51.100.10-198.51.100.20\"",
            "r.json:1:67: address_sets[0].addresses[1]: \"example.com\" is not an address; expected an IPv4/IPv6 address, a CIDR like \"203.0.113.0/24\" or a range like \"198.51.100.10-198.51.100.20\"",
            "r.json:1:82: address_sets[0].addresses[2]: \"\" is not an address; expected an IPv4/IPv6 address, a CIDR like \"203.0.113.0/24\" or a range like \"198.51.100.10-198.51.100.20\"",
            "r.json:1:102: address_sets[0].addresses[4]: address \"198.51.100.7\" is listed twice (first at r.json:1:86)",
        ]),
        // --- protocols and ports -------------------------------------------
        one("reversed port range", "{\"security_groups\": [{\"id\": \"sg-a\", \"ingress\": [\n  {\"action\": \"accept\", \"protocol\": \"tcp\", \"port\": \"80-70\"}\n]}]}", &[
            "r.json:2:51: security_groups[0].ingress[0].port: \"80-70\" is not a port range (start > end)",
        ]),
        one("ports out of range", "{\"security_groups\": [{\"id\": \"sg-a\", \"ingress\": [{\"action\": \"accept\", \"protocol\": \"tcp\", \"port\": \"0\"}, {\"action\": \"accept\", \"protocol\": \"udp\", \"port\": \"53,65536\"}, {\"action\": \"accept\", \"protocol\": \"tcp\", \"port\": 70000}, {\"action\": \"accept\", \"protocol\": \"tcp\", \"port\": \"80,,443\"}]}]}", &[
            "r.json:1:97: security_groups[0].ingress[0].port: \"0\" is not a port (out of range 1-65535)",
            "r.json:1:151: security_groups[0].ingress[1].port: \"65536\" is not a port (out of range 1-65535)",
            "r.json:1:212: security_groups[0].ingress[2].port: 70000 is not a port (out of range 1-65535)",
            "r.json:1:268: security_groups[0].ingress[3].port: \"80,,443\" has an empty entry; expected \"all\" or ports like \"22\", \"80,443\", \"8000-9000\"",
        ]),
        one("port for portless protocols", "{\"security_groups\": [{\"id\": \"sg-a\", \"ingress\": [{\"action\": \"accept\", \"protocol\": \"icmp\", \"port\": \"22\"}, {\"action\": \"accept\", \"protocol\": \"all\", \"port\": 22}, {\"action\": \"accept\", \"protocol\": 47, \"port\": \"1-10\"}]}]}", &[
            "r.json:1:98: security_groups[0].ingress[0].port: port \"22\" given for protocol icmp; only tcp and udp (6, 17) have ports (omit \"port\" or write \"all\")",
            "r.json:1:153: security_groups[0].ingress[1].port: port 22 given for protocol all; only tcp and udp (6, 17) have ports (omit \"port\" or write \"all\")",
            "r.json:1:203: security_groups[0].ingress[2].port: port \"1-10\" given for protocol gre; only tcp and udp (6, 17) have ports (omit \"port\" or write \"all\")",
        ]),
        one("unknown protocols", "{\"security_groups\": [{\"id\": \"sg-a\", \"ingress\": [{\"action\": \"accept\", \"protocol\": \"TCP\"}, {\"action\": \"accept\", \"protocol\": \"sctp\"}, {\"action\": \"accept\", \"protocol\": 256}, {\"action\": \"accept\", \"protocol\": \"-1\"}]}]}", &[
            "r.json:1:82: security_groups[0].ingress[0].protocol: unknown protocol \"TCP\"; expected tcp, udp, icmp, icmpv6, gre, all or an IP protocol number 0-255 (did you mean \"tcp\"?)",
            "r.json:1:123: security_groups[0].ingress[1].protocol: unknown protocol \"sctp\"; expected tcp, udp, icmp, icmpv6, gre, all or an IP protocol number 0-255",
            "r.json:1:165: security_groups[0].ingress[2].protocol: protocol number 256 is out of range 0-255",
            "r.json:1:204: security_groups[0].ingress[3].protocol: \"-1\" is not a protocol number; expected a whole number 0-255 (for every protocol write \"all\")",
        ]),
        one("bad actions", "{\"security_groups\": [{\"id\": \"sg-a\", \"ingress\": [{\"action\": \"allow\", \"protocol\": \"all\"}, {\"action\": \"ACCEPT\", \"protocol\": \"all\"}, {\"action\": \"\", \"protocol\": \"all\"}]}]}", &[
            "r.json:1:60: security_groups[0].ingress[0].action: unknown action \"allow\"; expected \"accept\" or \"drop\" (did you mean \"accept\"?)",
            "r.json:1:100: security_groups[0].ingress[1].action: unknown action \"ACCEPT\"; expected \"accept\" or \"drop\" (did you mean \"accept\"?)",
            "r.json:1:141: security_groups[0].ingress[2].action: unknown action \"\"; expected \"accept\" or \"drop\"",
        ]),
        one("protocol or service", "{\"security_groups\": [{\"id\": \"sg-a\", \"ingress\": [{\"action\": \"accept\", \"protocol\": \"tcp\", \"service\": \"ppm-a\"}, {\"action\": \"accept\", \"service\": \"ppm-a\", \"port\": \"22\"}, {\"action\": \"accept\", \"port\": \"22\"}, {\"action\": \"accept\", \"service\": \"sg-a\"}]}], \"service_sets\": [{\"id\": \"ppm-a\", \"services\": [\"tcp:22\"]}]}", &[
            "r.json:1:82: security_groups[0].ingress[0].protocol: \"protocol\" cannot be combined with \"service\"; a rule matches either a protocol (and port) or a service set",
            "r.json:1:159: security_groups[0].ingress[1].port: \"port\" cannot be combined with \"service\"; the service set brings its own ports",
            "r.json:1:166: security_groups[0].ingress[2]: missing \"protocol\" (or \"service\"); a rule matches either a protocol (and port) or a service set",
            "r.json:1:234: security_groups[0].ingress[3].service: \"sg-a\" is not a service; expected a service set id (\"ppm-…\") or service set group id (\"ppmg-…\"); for a protocol use \"protocol\"",
        ]),
        one("bad service entries", "{\"service_sets\": [{\"id\": \"ppm-a\", \"services\": [\"tcp:80-70\", \"icmp:8\", \"http\", \"udp:53\", \"udp:53\"]}]}", &[
            "r.json:1:48: service_sets[0].services[0]: in service \"tcp:80-70\": \"80-70\" is not a port range (start > end)",
            "r.json:1:61: service_sets[0].services[1]: service \"icmp:8\" gives ports for icmp; only tcp and udp have ports (write \"icmp\")",
            "r.json:1:71: service_sets[0].services[2]: in service \"http\": unknown protocol \"http\"; expected tcp, udp, icmp, icmpv6, gre, all or an IP protocol number 0-255",
            "r.json:1:89: service_sets[0].services[4]: service \"udp:53\" is listed twice (first at r.json:1:79)",
        ]),
        // --- ids ------------------------------------------------------------
        one("empty ids", "{\"security_groups\": [{\"id\": \"\"}], \"instances\": [{\"id\": \"\", \"ips\": [], \"security_groups\": [\"\"]}], \"address_sets\": [{\"id\": \"\", \"addresses\": []}]}", &[
            "r.json:1:29: security_groups[0].id: empty id; expected a security group id like \"sg-web\"",
            "r.json:1:56: instances[0].id: empty id; expected an instance id like \"ins-web-1\"",
            "r.json:1:91: instances[0].security_groups[0]: empty id; expected a security group id like \"sg-web\"",
            "r.json:1:122: address_sets[0].id: empty id; expected an address set id like \"ipm-web\"",
        ]),
        one("wrong id prefixes", "{\"security_groups\": [{\"id\": \"sgx-1\", \"ingress\": [{\"action\": \"accept\", \"protocol\": \"all\", \"remote\": \"sgx-1\"}, {\"action\": \"accept\", \"protocol\": \"all\", \"remote\": \"ppm-dns\"}]}, {\"id\": \"ipm-a\"}, {\"id\": \"sg-a b\"}, {\"id\": \"sg-\"}], \"service_sets\": [{\"id\": \"ppmg-x\", \"services\": []}]}", &[
            "r.json:1:29: security_groups[0].id: \"sgx-1\" is not a security group id; expected \"sg-\" followed by letters, digits, '_', '.' or '-'",
            "r.json:1:100: security_groups[0].ingress[0].remote: \"sgx-1\" is not a remote; expected an IPv4/IPv6 address, CIDR or range \"a-b\", or an id starting with \"sg-\", \"ipm-\" or \"ipmg-\"",
            "r.json:1:160: security_groups[0].ingress[1].remote: \"ppm-dns\" is a service id, not a remote; services go in \"service\"",
            "r.json:1:181: security_groups[1].id: \"ipm-a\" is an address set id; expected a security group id (\"sg-…\")",
            "r.json:1:198: security_groups[2].id: \"sg-a b\" is not a security group id: \" \" is not allowed; use letters, digits, '_', '.' or '-'",
            "r.json:1:216: security_groups[3].id: \"sg-\" is not a security group id: nothing follows the prefix",
            "r.json:1:249: service_sets[0].id: \"ppmg-x\" is a service set group id; expected a service set id (\"ppm-…\")",
        ]),
        one("overlong id", &format!("{{\"security_groups\": [{{\"id\": \"sg-{}\"}}]}}", "a".repeat(62)), &[
            "r.json:1:29: security_groups[0].id: \"sg-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\" is not a security group id: 65 bytes, at most 64",
        ]),
        case("bad instance ids", &[("g.json", WEB), ("i.json", "{\"instances\": [{\"id\": \"ins web\", \"ips\": [], \"security_groups\": [\"sg-web\"]}]}")], &[
            "i.json:1:23: instances[0].id: \"ins web\" is not an instance id: \" \" is not allowed; use letters, digits, '_', '.' or '-'",
        ]),
        // --- references -----------------------------------------------------
        one("dangling references", "{\"security_groups\": [{\"id\": \"sg-a\", \"ingress\": [{\"action\": \"accept\", \"protocol\": \"all\", \"remote\": \"sg-b\"}, {\"action\": \"accept\", \"protocol\": \"all\", \"remote\": \"ipm-x\"}, {\"action\": \"accept\", \"protocol\": \"all\", \"remote\": \"ipmg-x\"}, {\"action\": \"accept\", \"service\": \"ppm-x\"}, {\"action\": \"accept\", \"service\": \"ppmg-x\"}]}], \"instances\": [{\"id\": \"i-1\", \"ips\": [], \"security_groups\": [\"sg-a\", \"sg-c\"]}], \"address_set_groups\": [{\"id\": \"ipmg-a\", \"sets\": [\"ipm-y\"]}]}", &[
            "r.json:1:99: security_groups[0].ingress[0].remote: unknown security group \"sg-b\": no rule file defines it",
            "r.json:1:158: security_groups[0].ingress[1].remote: unknown address set \"ipm-x\": no rule file defines it",
            "r.json:1:218: security_groups[0].ingress[2].remote: unknown address set group \"ipmg-x\": no rule file defines it",
            "r.json:1:261: security_groups[0].ingress[3].service: unknown service set \"ppm-x\": no rule file defines it",
            "r.json:1:303: security_groups[0].ingress[4].service: unknown service set group \"ppmg-x\": no rule file defines it",
            "r.json:1:384: instances[0].security_groups[1]: unknown security group \"sg-c\": no rule file defines it",
            "r.json:1:444: address_set_groups[0].sets[0]: unknown address set \"ipm-y\": no rule file defines it",
        ]),
        one("set groups hold sets only", "{\"address_sets\": [{\"id\": \"ipm-a\", \"addresses\": []}], \"address_set_groups\": [{\"id\": \"ipmg-a\", \"sets\": [\"ipmg-a\", \"ipmg-b\", \"ipm-a\", \"ipm-a\"]}, {\"id\": \"ipmg-b\", \"sets\": [\"ipm-a\"]}], \"service_set_groups\": [{\"id\": \"ppmg-a\", \"sets\": [\"ppmg-a\", \"sg-a\"]}]}", &[
            "r.json:1:103: address_set_groups[0].sets[0]: \"ipmg-a\" is this group itself; an address set group holds address sets (\"ipm-…\"), never groups",
            "r.json:1:113: address_set_groups[0].sets[1]: \"ipmg-b\" is an address set group id; an address set group holds address sets (\"ipm-…\"), never groups",
            "r.json:1:132: address_set_groups[0].sets[3]: set \"ipm-a\" is listed twice (first at r.json:1:123)",
            "r.json:1:230: service_set_groups[0].sets[0]: \"ppmg-a\" is this group itself; a service set group holds service sets (\"ppm-…\"), never groups",
            "r.json:1:240: service_set_groups[0].sets[1]: \"sg-a\" is a security group id; expected a service set id (\"ppm-…\")",
        ]),
        // --- duplicates -----------------------------------------------------
        one("duplicate ids in one file", "{\"security_groups\": [{\"id\": \"sg-a\"}, {\"id\": \"sg-a\"}], \"address_sets\": [{\"id\": \"ipm-a\", \"addresses\": []}, {\"id\": \"ipm-a\", \"addresses\": []}]}", &[
            "r.json:1:45: security_groups[1].id: duplicate security group id \"sg-a\"; first defined at r.json:1:29",
            "r.json:1:113: address_sets[1].id: duplicate address set id \"ipm-a\"; first defined at r.json:1:79",
        ]),
        case("duplicate ids across files name both", &[("b.json", "{\"security_groups\": [{\"id\": \"sg-a\"}]}"), ("a.json", "{\"security_groups\": [{\"id\": \"sg-a\"}]}")], &[
            "b.json:1:29: security_groups[0].id: duplicate security group id \"sg-a\"; first defined at a.json:1:29",
        ]),
        // --- instances ------------------------------------------------------
        case("instance without groups", &[("g.json", WEB), ("i.json", "{\"instances\": [{\"id\": \"i-1\", \"ips\": [\"198.51.100.5\"], \"security_groups\": []}]}")], &[
            "i.json:1:74: instances[0].security_groups: no security group; an instance needs at least one (with none it would match no rule and drop everything silently)",
        ]),
        case("interface bound twice across files", &[("g.json", WEB), ("i1.json", "{\"instances\": [{\"id\": \"i-1\", \"interface\": \"tap0\", \"ips\": [], \"security_groups\": [\"sg-web\"]}]}"), ("i2.json", "{\"instances\": [{\"id\": \"i-2\", \"interface\": \"tap0\", \"ips\": [], \"security_groups\": [\"sg-web\"]}]}")], &[
            "i2.json:1:43: instances[0].interface: interface \"tap0\" is already bound to instance \"i-1\" at i1.json:1:43; an interface belongs to one instance",
        ]),
        case("bad instance fields", &[("g.json", WEB), ("i.json", "{\"instances\": [{\"id\": \"i-1\", \"interface\": \"a-very-long-ifname\", \"mac\": \"52:54:00:12:34\", \"ips\": [\"198.51.100.5/32\", \"2001:db8::5\", \"2001:db8::5\"], \"security_groups\": [\"sg-web\", \"sg-web\"]}, {\"id\": \"i-2\", \"mac\": \"01:00:5e:00:00:01\", \"ips\": [], \"security_groups\": [\"sg-web\"]}]}")], &[
            "i.json:1:43: instances[0].interface: \"a-very-long-ifname\" is not a network interface name: 18 bytes, Linux allows at most 15",
            "i.json:1:72: instances[0].mac: \"52:54:00:12:34\" is not a MAC address; expected six hex pairs like \"52:54:00:12:34:56\"",
            "i.json:1:98: instances[0].ips[0]: \"198.51.100.5/32\" is not an IP address; an instance's ips are single addresses (no prefix length)",
            "i.json:1:132: instances[0].ips[2]: address \"2001:db8::5\" is listed twice (first at i.json:1:117)",
            "i.json:1:178: instances[0].security_groups[1]: security group \"sg-web\" is listed twice (first at i.json:1:168)",
            "i.json:1:211: instances[1].mac: \"01:00:5e:00:00:01\" is a multicast MAC address; an interface has a unicast one (lowest bit of the first byte clear)",
        ]),
        case("bad allowed address pairs and port_security", &[("g.json", WEB), ("i.json", r#"{"instances": [{"id": "i-1", "interface": "tap0", "mac": "52:54:00:00:00:01", "ips": ["198.51.100.5"], "security_groups": ["sg-web"],
  "port_security": "no",
  "allowed_address_pairs": [
    {"ip": "198.51.100.10-198.51.100.20"},
    {"ip": "198.51.100.65/28"},
    {"ip": "198.51.100.64/33"},
    {"ip": "vip"},
    {"ip": "198.51.100.50", "mac": "01:00:5e:00:00:01"},
    {"ip": "198.51.100.51", "mac": "52:54:00:aa:bb"},
    {"ip": "198.51.100.52", "mak": "52:54:00:aa:bb:cc"},
    {"mac": "52:54:00:aa:bb:cc"},
    "198.51.100.53",
    {"ip": "198.51.100.60"},
    {"ip": "198.51.100.60", "mac": "52:54:00:00:00:01"},
    {"ip": "198.51.100.60", "mac": "52:54:00:aa:bb:cc"},
    {"ip": 7}
  ]}]}"#)], &[
            "i.json:2:20: instances[0].port_security: expected true or false, found string \"no\"",
            "i.json:4:12: instances[0].allowed_address_pairs[0].ip: \"198.51.100.10-198.51.100.20\" is a range, not an address or CIDR; expected an address like \"198.51.100.50\" or a CIDR like \"198.51.100.64/28\"",
            "i.json:5:12: instances[0].allowed_address_pairs[1].ip: \"198.51.100.65/28\" has host bits set; did you mean \"198.51.100.64/28\"?",
            "i.json:6:12: instances[0].allowed_address_pairs[2].ip: \"198.51.100.64/33\" is not a CIDR: prefix length 33 is longer than 32 bits",
            "i.json:7:12: instances[0].allowed_address_pairs[3].ip: \"vip\" is not an address or CIDR; expected an address like \"198.51.100.50\" or a CIDR like \"198.51.100.64/28\"",
            "i.json:8:36: instances[0].allowed_address_pairs[4].mac: \"01:00:5e:00:00:01\" is a multicast MAC address; an interface has a unicast one (lowest bit of the first byte clear)",
            "i.json:9:36: instances[0].allowed_address_pairs[5].mac: \"52:54:00:aa:bb\" is not a MAC address; expected six hex pairs like \"52:54:00:12:34:56\"",
            "i.json:10:29: instances[0].allowed_address_pairs[6].mak: unknown key \"mak\"; expected one of ip, mac (did you mean \"mac\"?)",
            "i.json:11:5: instances[0].allowed_address_pairs[7]: missing required key \"ip\"",
            "i.json:12:5: instances[0].allowed_address_pairs[8]: expected an object, found string \"198.51.100.53\"",
            "i.json:14:12: instances[0].allowed_address_pairs[10].ip: address pair \"198.51.100.60\" with MAC \"52:54:00:00:00:01\" is listed twice (first at i.json:13:12; a pair without \"mac\" has the instance's)",
            "i.json:16:12: instances[0].allowed_address_pairs[12].ip: expected a string, found number 7",
        ]),
        case("bad log and enforcement", &[("g.json", r#"{"security_groups": [{"id": "sg-web", "ingress": [
  {"action": "accept", "protocol": "tcp", "port": 22, "log": "yes"},
  {"action": "drop", "protocol": "all", "log": 1}
]}]}"#), ("i.json", r#"{"instances": [
  {"id": "i-1", "interface": "tap1", "ips": [], "security_groups": ["sg-web"], "log": "drop", "enforcement": "dry-run"},
  {"id": "i-2", "interface": "tap2", "ips": [], "security_groups": ["sg-web"], "log": true, "enforcement": "Audit"},
  {"id": "i-3", "interface": "tap3", "ips": [], "security_groups": ["sg-web"], "log": "everything", "enforcement": false}
]}"#)], &[
            "g.json:2:62: security_groups[0].ingress[0].log: expected true or false, found string \"yes\"",
            "g.json:3:48: security_groups[0].ingress[1].log: expected true or false, found number 1",
            "i.json:2:87: instances[0].log: unknown log mode \"drop\"; expected \"none\", \"drops\" or \"all\" (did you mean \"drops\"?)",
            "i.json:2:110: instances[0].enforcement: unknown enforcement \"dry-run\"; expected \"enforce\" or \"audit\" (did you mean \"audit\"?)",
            "i.json:3:87: instances[1].log: expected a string, found true",
            "i.json:3:108: instances[1].enforcement: unknown enforcement \"Audit\"; expected \"enforce\" or \"audit\" (names are lower case)",
            "i.json:4:87: instances[2].log: unknown log mode \"everything\"; expected \"none\", \"drops\" or \"all\"",
            "i.json:4:116: instances[2].enforcement: expected a string, found false",
        ]),
        case("address shared by two instances of this host", &[("g.json", WEB),
            ("a.json", r#"{"instances": [{"id": "i-1", "interface": "tap1", "ips": ["198.51.100.5", "2001:db8::5"], "security_groups": ["sg-web"]}]}"#),
            ("b.json", r#"{"instances": [
  {"id": "i-2", "interface": "tap2", "ips": ["198.51.100.6", "2001:DB8::5"], "allowed_address_pairs": [{"ip": "198.51.100.5"}], "security_groups": ["sg-web"]},
  {"id": "i-3", "ips": ["198.51.100.5"], "security_groups": ["sg-web"]},
  {"id": "i-4", "interface": "tap4", "port_security": false, "ips": ["198.51.100.5"], "security_groups": ["sg-web"]}
]}"#)], &[
            "b.json:2:62: instances[0].ips[1]: address \"2001:DB8::5\" of instance \"i-2\" is already an address of instance \"i-1\" at a.json:1:75; two instances on this host cannot share an address (a shared virtual address belongs in allowed_address_pairs)",
            "b.json:4:70: instances[2].ips[0]: address \"198.51.100.5\" of instance \"i-4\" is already an address of instance \"i-1\" at a.json:1:59; two instances on this host cannot share an address (a shared virtual address belongs in allowed_address_pairs)",
        ]),
        // --- limits ---------------------------------------------------------
        Case {
            name: "quota per direction and per instance",
            files: vec![
                ("g.json", br#"{"security_groups": [
  {"id": "sg-a", "ingress": [{"action": "accept", "protocol": "all"}, {"action": "accept", "protocol": "all"}, {"action": "accept", "protocol": "all"}]},
  {"id": "sg-b", "ingress": [{"action": "accept", "protocol": "all"}, {"action": "accept", "protocol": "all"}]},
  {"id": "sg-c", "egress": [{"action": "accept", "protocol": "all"}, {"action": "accept", "protocol": "all"}]}
],
"instances": [{"id": "i-1", "ips": [], "security_groups": ["sg-b", "sg-c"]}, {"id": "i-2", "ips": [], "security_groups": ["sg-b", "sg-c", "sg-b"]}, {"id": "i-3", "ips": [], "security_groups": ["sg-c", "sg-b", "sg-a"]}]}"#.to_vec()),
            ],
            limits: Limits { max_rules_per_direction: 2, max_effective_rules: 4, max_file_bytes: 1 << 20 },
            expected: &[
            "g.json:2:29: security_groups[0].ingress: 3 ingress rules, over the limit of 2 per direction (max_rules_per_direction)",
            "g.json:6:139: instances[1].security_groups[2]: security group \"sg-b\" is listed twice (first at g.json:6:123)",
            "g.json:6:193: instances[2].security_groups: instance \"i-3\" would enforce 5 ingress rules (the sum over its security groups), over the limit of 4 (max_effective_rules)",
        ],
        },
        Case {
            name: "file over the size limit",
            files: vec![("big.json", vec![b' '; 65]), ("ok.json", b"{}".to_vec())],
            limits: Limits { max_file_bytes: 64, ..Limits::default() },
            expected: &[
            "big.json:1:1: $: file is larger than the limit of 64 bytes (max_file_bytes); split it into several files",
        ],
        },
        Case {
            name: "non-UTF-8 bytes",
            files: vec![("latin1.json", b"{\n  \"security_groups\": [{\"id\": \"sg-a\", \"name\": \"caf\xe9\"}]\n}".to_vec())],
            limits: Limits::default(),
            expected: &[
            "latin1.json:2:50: $: invalid UTF-8 at byte offset 51 (byte 0xe9); rule files must be UTF-8",
        ],
        },
        // --- many errors at once, sorted by file then position --------------
        one("one file, every error reported", r#"{
  "security_groups": [
    {"id": "sg-web", "ingress": [
      {"action": "allow", "protocol": "tcp", "port": "80-70", "remote": "198.51.100.5/24"},
      {"action": "accept", "protcol": "tcp"},
      {"action": "accept", "protocol": "udp", "port": "53", "remote": "sg-db"}
    ]}
  ],
  "instances": [
    {"id": "ins-1", "interface": "tap1", "ips": ["198.51.100.5"], "security_groups": []},
    {"id": "ins-1", "interface": "tap1", "ips": ["198.51.100.6"], "security_groups": ["sg-web", "ipm-x"]}
  ]
}"#, &[
            "r.json:4:18: security_groups[0].ingress[0].action: unknown action \"allow\"; expected \"accept\" or \"drop\" (did you mean \"accept\"?)",
            "r.json:4:54: security_groups[0].ingress[0].port: \"80-70\" is not a port range (start > end)",
            "r.json:4:73: security_groups[0].ingress[0].remote: \"198.51.100.5/24\" has host bits set; did you mean \"198.51.100.0/24\"?",
            "r.json:5:28: security_groups[0].ingress[1].protcol: unknown key \"protcol\"; expected one of id, action, protocol, port, service, remote, description, log (did you mean \"protocol\"?)",
            "r.json:6:71: security_groups[0].ingress[2].remote: unknown security group \"sg-db\": no rule file defines it",
            "r.json:10:86: instances[0].security_groups: no security group; an instance needs at least one (with none it would match no rule and drop everything silently)",
            "r.json:11:12: instances[1].id: duplicate instance id \"ins-1\"; first defined at r.json:10:12",
            "r.json:11:34: instances[1].interface: interface \"tap1\" is already bound to instance \"ins-1\" at r.json:10:34; an interface belongs to one instance",
            "r.json:11:97: instances[1].security_groups[1]: \"ipm-x\" is an address set id; expected a security group id (\"sg-…\")",
        ]),
        case("files sorted by name whatever the order given", &[
            ("z.json", "{\"security_groups\": [{\"id\": \"sg-z\", \"egress\": [{\"action\": \"drop\", \"protocol\": \"udp\", \"port\": \"0\"}]}]}"),
            ("m.json", "{\"address_sets\": [{\"id\": \"ipm-m\", \"addresses\": [\"203.0.113.1/24\"]}]}"),
            ("a.json", "{\n\n\"instances\": [{\"id\": \"i-a\", \"ips\": [\"x\"], \"security_groups\": [\"sg-z\"]}]}"),
        ], &[
            "a.json:3:37: instances[0].ips[0]: \"x\" is not an IPv4 or IPv6 address",
            "m.json:1:49: address_sets[0].addresses[0]: \"203.0.113.1/24\" has host bits set; did you mean \"203.0.113.0/24\"?",
            "z.json:1:94: security_groups[0].egress[0].port: \"0\" is not a port (out of range 1-65535)",
        ]),
        // --- Tencent format -------------------------------------------------
        one("tencent shape errors", r#"{"SecurityGroupId": "sg-t", "SecurityGroupPolicySet": {"Version": "3", "Ingress": [
  {"PolicyIndex": 0, "Protocol": "TCP", "Port": "22", "Action": "ACCEPT"},
  {"PolicyIndex": 1, "Protocol": "TCP", "Port": "22", "CidrBlock": "198.51.100.0/24", "SecurityGroupId": "sg-t", "Action": "ACCEPT"},
  {"PolicyIndex": 1, "Protocol": "UDP", "CidrBlock": "2001:db8::/32", "Action": "ACCEPT"},
  {"Protocol": "TCP", "Ipv6CidrBlock": "198.51.100.0/24", "Action": "ACCEPT"},
  {"PolicyIndex": 5, "Protocol": "ALL", "ServiceTemplate": {"ServiceId": "ppm-a", "ServiceGroupId": ""}, "CidrBlock": "0.0.0.0/0", "Action": "DROP"},
  {"PolicyIndex": 6, "Protocol": "TCP", "Port": "ALL", "CidrBlock": "0.0.0.0/0", "Action": "REJECT", "Direction": "in"},
  {"PolicyIndex": 7, "AddressTemplate": {"AddressId": "ipmg-x"}, "Protocol": "ICMP", "Port": "8", "Action": "ACCEPT"}
]}, "RequestId": "x"}"#, &[
            "r.json:2:3: SecurityGroupPolicySet.Ingress[0]: no remote; a rule needs exactly one of CidrBlock, Ipv6CidrBlock, SecurityGroupId, AddressTemplate.AddressId, AddressTemplate.AddressGroupId",
            "r.json:3:106: SecurityGroupPolicySet.Ingress[1].SecurityGroupId: second remote \"sg-t\": this rule already names \"198.51.100.0/24\" at r.json:3:68; a rule names exactly one remote",
            "r.json:4:19: SecurityGroupPolicySet.Ingress[2].PolicyIndex: duplicate PolicyIndex 1 (first at r.json:3:19); each rule of a direction needs its own",
            "r.json:4:54: SecurityGroupPolicySet.Ingress[2].CidrBlock: \"2001:db8::/32\" is IPv6; this field takes IPv4 (put IPv6 in Ipv6CidrBlock)",
            "r.json:5:3: SecurityGroupPolicySet.Ingress[3]: missing PolicyIndex while other rules of this direction have one (e.g. at r.json:2:19); give it for every rule or for none",
            "r.json:5:40: SecurityGroupPolicySet.Ingress[3].Ipv6CidrBlock: \"198.51.100.0/24\" is IPv4; this field takes IPv6 (put IPv4 in CidrBlock)",
            "r.json:6:34: SecurityGroupPolicySet.Ingress[4].Protocol: Protocol cannot be combined with ServiceTemplate; a rule matches either a protocol (and port) or a service set",
            "r.json:7:92: SecurityGroupPolicySet.Ingress[5].Action: unknown action \"REJECT\"; expected \"accept\" or \"drop\" (did you mean \"drop\"?)",
            "r.json:7:102: SecurityGroupPolicySet.Ingress[5].Direction: unknown key \"Direction\"; expected one of PolicyIndex, Protocol, Port, ServiceTemplate, CidrBlock, Ipv6CidrBlock, SecurityGroupId, AddressTemplate, Action, PolicyDescription, ModifyTime",
            "r.json:8:55: SecurityGroupPolicySet.Ingress[6].AddressTemplate.AddressId: \"ipmg-x\" is an address set group id; expected an address set id (\"ipm-…\")",
            "r.json:8:94: SecurityGroupPolicySet.Ingress[6].Port: port \"8\" given for protocol icmp; only tcp and udp (6, 17) have ports (omit Port or write \"all\")",
            "r.json:9:5: RequestId: unknown key \"RequestId\"; expected one of SecurityGroupId, SecurityGroupName, SecurityGroupDesc, SecurityGroupPolicySet, $schema",
        ]),
        one("tencent top level", r#"{"SecurityGroupName": "web", "instances": []}"#, &[
            "r.json:1:1: $: missing required key \"SecurityGroupId\"",
            "r.json:1:1: $: missing required key \"SecurityGroupPolicySet\"",
            "r.json:1:30: instances: unknown key \"instances\"; expected one of SecurityGroupId, SecurityGroupName, SecurityGroupDesc, SecurityGroupPolicySet, $schema",
        ]),
    ]
}

#[test]
fn bad_input_matrix() {
    let cases = cases();
    let mut failures = Vec::new();
    for case in &cases {
        if let Err(e) = std::panic::catch_unwind(|| check(case)) {
            let message = e
                .downcast_ref::<String>()
                .cloned()
                .unwrap_or_else(|| "non-string panic".to_owned());
            failures.push(message);
        }
    }
    if !failures.is_empty() {
        panic!(
            "{} of {} cases failed:\n\n{}",
            failures.len(),
            cases.len(),
            failures.join("\n\n")
        );
    }
}

/// Every diagnostic quoted in the rule-file reference must be one this
/// matrix produces, so the documentation cannot drift from the code.
#[test]
fn documented_diagnostics_are_real() {
    let doc_path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/rule-files.md");
    let doc = std::fs::read_to_string(doc_path).unwrap_or_else(|e| panic!("read {doc_path}: {e}"));
    let known: std::collections::HashSet<&str> = cases()
        .iter()
        .flat_map(|c| c.expected.iter().copied())
        .collect();
    let quoted: Vec<&str> = doc
        .lines()
        .filter(|line| {
            // "name.json:LINE:COLUMN: " at the start of a line.
            let mut parts = line.splitn(4, ':');
            let (Some(file), Some(l), Some(c)) = (parts.next(), parts.next(), parts.next()) else {
                return false;
            };
            // Warnings are the lint's: secgroup-policy/tests/lint.rs
            // checks the documented ones.
            file.ends_with(".json")
                && !line.contains(": warning: ")
                && !l.is_empty()
                && l.bytes().all(|b| b.is_ascii_digit())
                && !c.is_empty()
                && c.bytes().all(|b| b.is_ascii_digit())
        })
        .collect();
    assert!(
        quoted.len() >= 20,
        "expected the reference to quote diagnostics, found {}",
        quoted.len()
    );
    let unknown: Vec<&&str> = quoted.iter().filter(|q| !known.contains(**q)).collect();
    assert!(
        unknown.is_empty(),
        "docs/rule-files.md quotes diagnostics no test produces:\n{unknown:#?}"
    );
}
