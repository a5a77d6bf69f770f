//! Redis' glob-style pattern matching (stringmatchlen): `*`, `?`, `[a-z]`,
//! `[^x]`, and `\` escapes. Used by KEYS, SCAN MATCH, PSUBSCRIBE, CONFIG GET.

/// Whether `s` matches `pattern`.
pub fn glob_match(pattern: &[u8], s: &[u8], nocase: bool) -> bool {
    let mut skip_longer = false;
    matches(pattern, s, nocase, &mut skip_longer, 0)
}

fn lower(c: u8, nocase: bool) -> u8 {
    if nocase {
        c.to_ascii_lowercase()
    } else {
        c
    }
}

/// A port of Redis' stringmatchlen_impl, including its two defences against
/// exponential backtracking: a nesting limit, and `skip_longer`: once the
/// rest of a pattern after a `*` matched nowhere in the remaining string, no
/// earlier `*` can help by consuming more.
fn matches(pat: &[u8], st: &[u8], nocase: bool, skip_longer: &mut bool, nesting: u32) -> bool {
    if nesting > 1000 {
        return false;
    }
    let (mut p, mut s) = (0usize, 0usize);
    while p < pat.len() && s < st.len() {
        match pat[p] {
            b'*' => {
                while p + 1 < pat.len() && pat[p + 1] == b'*' {
                    p += 1;
                }
                if p + 1 == pat.len() {
                    return true;
                }
                while s < st.len() {
                    if matches(&pat[p + 1..], &st[s..], nocase, skip_longer, nesting + 1) {
                        return true;
                    }
                    if *skip_longer {
                        return false;
                    }
                    s += 1;
                }
                *skip_longer = true;
                return false;
            }
            b'?' => s += 1,
            b'[' => {
                p += 1;
                let not = p < pat.len() && pat[p] == b'^';
                if not {
                    p += 1;
                }
                let mut matched = false;
                loop {
                    if p < pat.len() && pat[p] == b'\\' && pat.len() - p >= 2 {
                        p += 1;
                        if pat[p] == st[s] {
                            matched = true;
                        }
                    } else if p < pat.len() && pat[p] == b']' {
                        break;
                    } else if p >= pat.len() {
                        // Unterminated class: step back so the pattern ends.
                        p -= 1;
                        break;
                    } else if pat.len() - p >= 3 && pat[p + 1] == b'-' {
                        let (mut lo, mut hi) = (pat[p], pat[p + 2]);
                        if lo > hi {
                            std::mem::swap(&mut lo, &mut hi);
                        }
                        let c = lower(st[s], nocase);
                        let (lo, hi) = (lower(lo, nocase), lower(hi, nocase));
                        p += 2;
                        if c >= lo && c <= hi {
                            matched = true;
                        }
                    } else if lower(pat[p], nocase) == lower(st[s], nocase) {
                        matched = true;
                    }
                    p += 1;
                }
                if not {
                    matched = !matched;
                }
                if !matched {
                    return false;
                }
                s += 1;
            }
            c => {
                let c = if c == b'\\' && pat.len() - p >= 2 {
                    p += 1;
                    pat[p]
                } else {
                    c
                };
                if lower(c, nocase) != lower(st[s], nocase) {
                    return false;
                }
                s += 1;
            }
        }
        p += 1;
        if s == st.len() {
            while p < pat.len() && pat[p] == b'*' {
                p += 1;
            }
            break;
        }
    }
    p >= pat.len() && s == st.len()
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn patterns() {
        assert!(glob_match(b"*", b"anything", false));
        assert!(glob_match(b"h?llo", b"hello", false));
        assert!(glob_match(b"h[ae]llo", b"hallo", false));
        assert!(!glob_match(b"h[^e]llo", b"hello", false));
        assert!(glob_match(b"h[a-b]llo", b"hbllo", false));
        assert!(glob_match(b"key:*", b"key:1", false));
        assert!(!glob_match(b"key:*", b"kex:1", false));
        assert!(glob_match(b"a\\*b", b"a*b", false));
        assert!(glob_match(b"HELLO", b"hello", true));
        assert!(glob_match(b"*a*", b"bab", false));
        assert!(glob_match(b"", b"", false));
        assert!(!glob_match(b"a", b"", false));
    }

    #[test]
    fn nested_stars_do_not_backtrack_exponentially() {
        let s = vec![b'a'; 50];
        let pat = b"a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b";
        assert!(!glob_match(pat, &s, false));
    }
}
