//! `--interface-pattern`: shell-style globs (`*` any run, `?` one
//! character) naming the interfaces secgroupd guards before any rule file
//! names them: `tap*`, `vnet*`.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern(String);

impl Pattern {
    pub fn parse(text: &str) -> Result<Pattern, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("an interface pattern cannot be empty".to_owned());
        }
        if let Some(bad) = text
            .chars()
            .find(|c| c.is_whitespace() || *c == '/' || *c == ':')
        {
            return Err(format!(
                "interface pattern {text:?} holds {bad:?}, which no interface name can"
            ));
        }
        if text == "*" {
            return Err(
                "interface pattern \"*\" would guard every interface of the host, uplinks included; \
                 name the VM interfaces (tap*, vnet*)"
                    .to_owned(),
            );
        }
        Ok(Pattern(text.to_owned()))
    }

    pub fn matches(&self, name: &str) -> bool {
        glob(self.0.as_bytes(), name.as_bytes())
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether `name` matches `pattern`; iterative, with one backtrack point
/// (the last `*`), so linear in practice and never recursive.
fn glob(pattern: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, n));
                p += 1;
            }
            Some(c) if *c == b'?' || *c == name[n] => {
                p += 1;
                n += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    p = sp + 1;
                    n = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|c| *c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        let cases = [
            ("tap*", "tap0", true),
            ("tap*", "tap", true),
            ("tap*", "xtap0", false),
            ("vnet*", "vnet12", true),
            ("tap?", "tap1", true),
            ("tap?", "tap12", false),
            ("*-vm", "tap-vm", true),
            ("t*p*", "tXXpYY", true),
            ("t*p", "tXXpYY", false),
            ("eth0", "eth0", true),
            ("eth0", "eth01", false),
        ];
        for (pattern, name, expected) in cases {
            let p = Pattern::parse(pattern).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(p.matches(name), expected, "{pattern} ~ {name}");
        }
        for bad in ["", " ", "tap 0", "a/b", "*"] {
            assert!(Pattern::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
