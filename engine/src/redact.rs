//! Arguments that carry secrets (passwords), which SLOWLOG and MONITOR
//! show as `(redacted)`, at the positions Redis 7.0 redacts.

use bytes::Bytes;

/// The argument positions Redis redacts before logging a command.
pub fn secret_args(argv: &[Bytes]) -> Vec<usize> {
    let is = |i: usize, w: &str| {
        argv.get(i)
            .is_some_and(|a| a.eq_ignore_ascii_case(w.as_bytes()))
    };
    if is(0, "auth") {
        return (1..argv.len()).collect();
    }
    if is(0, "hello") {
        let mut v = Vec::new();
        let mut j = 2;
        while j < argv.len() {
            if is(j, "auth") && j + 2 < argv.len() {
                v.extend([j + 1, j + 2]);
                j += 3;
            } else if is(j, "setname") && j + 1 < argv.len() {
                j += 2;
            } else {
                break;
            }
        }
        return v;
    }
    if is(0, "acl") && is(1, "setuser") {
        return (2..argv.len()).collect();
    }
    if is(0, "config") && is(1, "set") {
        return (2..argv.len())
            .step_by(2)
            .filter(|&i| {
                ["requirepass", "masterauth", "masteruser"]
                    .iter()
                    .any(|w| is(i, w))
            })
            .map(|i| i + 1)
            .collect();
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(words: &[&str]) -> Vec<usize> {
        let argv: Vec<Bytes> = words.iter().map(|w| Bytes::from(w.to_string())).collect();
        secret_args(&argv)
    }

    #[test]
    fn finds_passwords() {
        assert_eq!(at(&["AUTH", "p"]), vec![1]);
        assert_eq!(at(&["auth", "u", "p"]), vec![1, 2]);
        assert_eq!(
            at(&["hello", "3", "SETNAME", "n", "AUTH", "u", "p"]),
            vec![5, 6]
        );
        assert_eq!(at(&["hello", "3", "AUTH", "u"]), Vec::<usize>::new());
        assert_eq!(at(&["acl", "SETUSER", "x", "on", ">p"]), vec![2, 3, 4]);
        assert_eq!(
            at(&["config", "set", "maxmemory", "1", "MASTERAUTH", "s"]),
            vec![5]
        );
        assert_eq!(at(&["get", "auth"]), Vec::<usize>::new());
    }
}
