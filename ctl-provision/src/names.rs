//! Container names and the system user names derived from them.

use crate::error::ProvisionError;

/// Longest user (and group) name shadow's tools accept on Linux.
pub const MAX_USER_NAME: usize = 32;

/// Prefix of every user we create; also what `destroy` relies on.
pub const USER_PREFIX: &str = "ctl-";

/// Checks `name` against `[a-z0-9][a-z0-9-]{0,30}`: it becomes part of a user name, a
/// cgroup path, a directory and the container's hostname, so we accept only what is safe in
/// all of them.
pub fn validate(name: &str) -> Result<(), ProvisionError> {
    let invalid = |reason| {
        Err(ProvisionError::InvalidName {
            name: name.to_owned(),
            reason,
        })
    };
    let bytes = name.as_bytes();
    match bytes.first() {
        None => return invalid("empty"),
        Some(b) if !(b.is_ascii_lowercase() || b.is_ascii_digit()) => {
            return invalid("must start with a lower-case letter or a digit")
        }
        _ => {}
    }
    if bytes.len() > 31 {
        return invalid("longer than 31 characters");
    }
    if !bytes
        .iter()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
    {
        return invalid("only a-z, 0-9 and '-' are allowed");
    }
    Ok(())
}

/// The system user (and group) name of container `name`: `ctl-<name>`, or, when that
/// exceeds `MAX_USER_NAME` (32), a truncated name plus a hash of the full name so that
/// distinct long names stay distinct.
pub fn user_name(name: &str) -> String {
    let plain = format!("{USER_PREFIX}{name}");
    if plain.len() <= MAX_USER_NAME {
        return plain;
    }
    let hash = fnv1a(name.as_bytes());
    let keep = MAX_USER_NAME - USER_PREFIX.len() - 1 - 8;
    let head = name[..keep].trim_end_matches('-');
    format!("{USER_PREFIX}{head}-{hash:08x}")
}

fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates() {
        for ok in ["a", "0", "ab-1", "a-", &"a".repeat(31)] {
            validate(ok).unwrap();
        }
        for bad in ["", "-a", "A", "a_b", "a.b", "a/b", &"a".repeat(32), "ä"] {
            assert!(validate(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn user_names_fit() {
        assert_eq!(user_name("web1"), "ctl-web1");
        let long = "a".repeat(31);
        let other = format!("{}b", "a".repeat(30));
        let (u1, u2) = (user_name(&long), user_name(&other));
        assert!(u1.len() <= MAX_USER_NAME && u2.len() <= MAX_USER_NAME);
        assert_ne!(u1, u2);
        assert!(u1.starts_with(USER_PREFIX));
        assert_eq!(user_name(&"x".repeat(28)).len(), 32);
    }
}
