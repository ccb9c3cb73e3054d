//! `compile_bound`: lists only for the instances bound here, while every
//! rule naming a group still gets all its members' addresses.

use secgroup_model::{Limits, SourceFile};
use secgroup_policy::{compile, compile_bound};

const RULES: &str = r#"{
  "security_groups": [ { "id": "sg-web", "ingress": [ { "action": "accept", "protocol": "tcp", "port": "80", "remote": "sg-web" } ] } ],
  "instances": [
    { "id": "ins-here", "interface": "tap0", "ips": ["198.51.100.10"], "security_groups": ["sg-web"] },
    { "id": "ins-far", "ips": ["203.0.113.20"], "security_groups": ["sg-web"] }
  ]
}"#;

#[test]
fn only_bound_instances_get_lists_and_members_all_count() {
    let file = SourceFile {
        name: "r.json",
        bytes: RULES.as_bytes(),
    };
    let rules = secgroup_model::load(&[file], &Limits::default()).unwrap_or_else(|e| panic!("{e}"));
    let all = compile(&rules);
    let bound = compile_bound(&rules);
    assert_eq!(all.instances.len(), 2);
    let ids: Vec<&str> = bound.instances.keys().map(|i| i.as_str()).collect();
    assert_eq!(ids, ["ins-here"]);
    let here = |p: &secgroup_policy::Policy| {
        p.instances
            .values()
            .find(|i| i.id.as_str() == "ins-here")
            .map(|i| i.ingress.clone())
    };
    // The same list: the far member's address is in it.
    assert_eq!(here(&bound), here(&all));
    let remotes = format!("{:?}", here(&bound));
    assert!(remotes.contains("203.0.113.20"), "{remotes}");
    assert_eq!(bound.security_groups, all.security_groups);
}
