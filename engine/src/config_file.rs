//! Startup configuration, as redis-server takes it: a redis.conf-style file
//! (`memlog server --config FILE`) and Redis-style `--name value ...`
//! options after `--`, which come after the file's lines and so win over
//! them. Each directive is applied as CONFIG SET applies it (the same
//! checks and effects, `Engine::configure`) before the server takes
//! clients; a bad one stops the server from starting, as in Redis. The
//! few that shape the server itself (`port`, `bind`, `databases`, `dir`,
//! `enable-debug-command`, `io-threads`) are taken by the binary as its
//! flags' values, unless the flag is given. CONFIG REWRITE writes the
//! running configuration back into the file ([`rewrite`]).
//!
//! Not part of the write path: configuration is not in the log, so the
//! file is how settings such as `maxmemory` outlive a restart.

use std::path::Path;

/// One directive: a parameter and its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    /// As written, lowercased.
    pub name: String,
    pub args: Vec<String>,
    /// Where it came from, for error messages (`line 3`, `--port`).
    pub origin: String,
}

impl Directive {
    /// The value CONFIG SET takes: the arguments joined by spaces (`save
    /// 900 1 300 10`, `client-output-buffer-limit normal 0 0 0`).
    pub fn value(&self) -> String {
        self.args.join(" ")
    }
}

/// A configuration that cannot be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigFileError {
    #[error("{origin}: unbalanced quotes in configuration line")]
    Quotes { origin: String },
    #[error("{origin}: '{name}' needs an argument")]
    NoArgument { origin: String, name: String },
    #[error("'{0}' is not a --name option")]
    NotAnOption(String),
}

/// Parses a redis.conf-style text: one directive per line, `#` comments,
/// arguments split as Redis' sdssplitargs splits them (double quotes with
/// escapes, single quotes).
pub fn parse_file(text: &str) -> Result<Vec<Directive>, ConfigFileError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let origin = format!("line {}", i + 1);
        let Some(mut words) = split_args(line) else {
            return Err(ConfigFileError::Quotes { origin });
        };
        if words.is_empty() {
            continue;
        }
        let name = words.remove(0).to_ascii_lowercase();
        if words.is_empty() {
            return Err(ConfigFileError::NoArgument { origin, name });
        }
        out.push(Directive {
            name,
            args: words,
            origin,
        });
    }
    Ok(out)
}

/// Parses redis-server's command-line form: `--name arg ... --name arg`.
/// An argument may be empty (`--save ""`); `--save` alone is `--save ""`,
/// as redis-server takes it.
pub fn parse_options(words: &[String]) -> Result<Vec<Directive>, ConfigFileError> {
    let mut out: Vec<Directive> = Vec::new();
    for w in words {
        match w.strip_prefix("--") {
            Some(name) if !name.is_empty() => out.push(Directive {
                name: name.to_ascii_lowercase(),
                args: Vec::new(),
                origin: w.clone(),
            }),
            _ => match out.last_mut() {
                Some(d) => d.args.push(w.clone()),
                None => return Err(ConfigFileError::NotAnOption(w.clone())),
            },
        }
    }
    for d in out
        .iter_mut()
        .filter(|d| d.name == "save" && d.args.is_empty())
    {
        d.args.push(String::new());
    }
    if let Some(d) = out.iter().find(|d| d.args.is_empty()) {
        return Err(ConfigFileError::NoArgument {
            origin: d.origin.clone(),
            name: d.name.clone(),
        });
    }
    Ok(out)
}

/// All `save` directives as one, as Redis reads them: each line adds its
/// points to the ones before (the first replacing the default), and `save
/// ""` clears them.
pub fn merge_save(directives: Vec<Directive>) -> Vec<Directive> {
    let mut points: Option<Vec<String>> = None;
    let mut out = Vec::new();
    let mut at = None;
    for d in directives {
        if d.name != "save" {
            out.push(d);
            continue;
        }
        let p = points.get_or_insert_with(Vec::new);
        if d.args.iter().all(String::is_empty) {
            p.clear();
        } else {
            p.extend(d.args.iter().filter(|a| !a.is_empty()).cloned());
        }
        at.get_or_insert((out.len(), d.origin.clone()));
    }
    if let (Some(points), Some((i, origin))) = (points, at) {
        let args = if points.is_empty() {
            vec![String::new()]
        } else {
            points
        };
        out.insert(
            i,
            Directive {
                name: "save".into(),
                args,
                origin,
            },
        );
    }
    out
}

/// A line's words, split as Redis' sdssplitargs splits them
/// ([`crate::resp::split_args`], which inline commands use too). `None`
/// when quotes are unbalanced.
fn split_args(line: &str) -> Option<Vec<String>> {
    let words = crate::resp::split_args(line.as_bytes())?;
    Some(
        words
            .into_iter()
            .map(|w| String::from_utf8_lossy(&w).into_owned())
            .collect(),
    )
}

/// A value as a configuration line writes it: bare when it can be, quoted
/// (with escapes) when it is empty or holds spaces, quotes or control
/// characters. A list of words (`save 900 1`, see `config::takes_words`)
/// is written word by word.
fn quote(value: &str, words: bool) -> String {
    let plain = |w: &str| {
        !w.is_empty()
            && w.bytes()
                .all(|c| c.is_ascii_graphic() && c != b'"' && c != b'\'' && c != b'\\')
    };
    if (words && value.split(' ').all(plain)) || plain(value) {
        return value.to_string();
    }
    let mut s = String::from("\"");
    for c in value.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            '\r' => s.push_str("\\r"),
            '\t' => s.push_str("\\t"),
            c if c.is_control() => s.push_str(&format!("\\x{:02x}", c as u32)),
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

/// CONFIG REWRITE: the file at `path` with each of `params`' lines set to
/// its current value (a parameter's later duplicate lines dropped), and the
/// ones it lacks that differ from their defaults appended, as Redis
/// rewrites its config file. Comments and other lines stay. Written to a
/// temporary file, synced, and renamed over the old one, so a crash leaves
/// one or the other whole.
/// Where a path the configuration names (`logfile`, `pidfile`,
/// `unixsocket`) is: a relative one is inside `dir`, memlog's data
/// directory, as Redis (which changes into `dir`) finds it.
pub fn in_dir(dir: &Path, path: &str) -> std::path::PathBuf {
    let p = Path::new(path);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        dir.join(p)
    }
}

pub fn rewrite(path: &Path, params: &[(&'static str, String, bool)]) -> std::io::Result<()> {
    use std::io::Write;
    let old = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e),
    };
    let mut written: Vec<&str> = Vec::new();
    let mut lines: Vec<String> = Vec::new();
    for line in old.lines() {
        // An old name (`hash-max-ziplist-entries`) is its parameter's line.
        let name = split_args(line.trim())
            .and_then(|w| w.into_iter().next())
            .map(|n| crate::config::canonical(&n));
        let param = name
            .as_deref()
            .filter(|_| !line.trim_start().starts_with('#'))
            .and_then(|n| params.iter().find(|(p, ..)| *p == n));
        match param {
            Some((p, _, _)) if written.contains(p) => {}
            Some((p, value, _)) => {
                written.push(p);
                lines.push(format!(
                    "{p} {}",
                    quote(value, crate::config::takes_words(p))
                ));
            }
            None => lines.push(line.to_string()),
        }
    }
    let mut header = false;
    for (p, value, default) in params {
        if written.contains(p) || *default {
            continue;
        }
        if !header {
            lines.push("# Generated by CONFIG REWRITE".into());
            header = true;
        }
        lines.push(format!(
            "{p} {}",
            quote(value, crate::config::takes_words(p))
        ));
    }
    let tmp = path.with_extension("rewrite-tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        for l in &lines {
            writeln!(f, "{l}")?;
        }
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_as_redis_splits_them() {
        let w = |s: &str| split_args(s).map(|v| v.into_iter().collect::<Vec<_>>());
        assert_eq!(
            w("save 900 1  300 10"),
            Some(vec![
                "save".into(),
                "900".into(),
                "1".into(),
                "300".into(),
                "10".into()
            ])
        );
        assert_eq!(
            w(r#"requirepass "a b\"c\x41\n""#),
            Some(vec!["requirepass".into(), "a b\"cA\n".into()])
        );
        assert_eq!(w(r"x 'it\'s'"), Some(vec!["x".into(), "it's".into()]));
        assert_eq!(w(r#"save """#), Some(vec!["save".into(), String::new()]));
        assert_eq!(w(r#"x "open"#), None);
        assert_eq!(w(r#"x "a"b"#), None);
    }

    #[test]
    fn files_and_options_give_directives() {
        let d =
            parse_file("# comment\n\nmaxmemory 100mb\n  save 900 1\nnotify-keyspace-events \"\"\n")
                .unwrap();
        assert_eq!(d.len(), 3);
        assert_eq!(
            (d[0].name.as_str(), d[0].value(), d[0].origin.as_str()),
            ("maxmemory", "100mb".into(), "line 3")
        );
        assert_eq!(d[1].value(), "900 1");
        assert_eq!(d[2].value(), "");
        assert!(matches!(
            parse_file("port\n"),
            Err(ConfigFileError::NoArgument { .. })
        ));
        let words: Vec<String> = ["--MaxMemory", "1gb", "--save", "", "--save", "60", "1"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let d = parse_options(&words).unwrap();
        assert_eq!(d.len(), 3);
        assert_eq!(
            (d[0].name.as_str(), d[0].value()),
            ("maxmemory", "1gb".into())
        );
        assert_eq!(d[2].value(), "60 1");
        assert_eq!(
            parse_options(&["1gb".into()]),
            Err(ConfigFileError::NotAnOption("1gb".into()))
        );
        assert!(parse_options(&["--port".into()]).is_err());
    }

    #[test]
    fn save_lines_add_up_as_redis_reads_them() {
        let text = "save 900 1\nmaxmemory 1mb\nsave 300 10\nsave 60 10000\n";
        let d = merge_save(parse_file(text).unwrap());
        assert_eq!(d.len(), 2);
        assert_eq!(
            (d[0].name.as_str(), d[0].value()),
            ("save", "900 1 300 10 60 10000".into())
        );
        let d = merge_save(parse_file("save 900 1\nsave \"\"\nsave 60 1\n").unwrap());
        assert_eq!(d[0].value(), "60 1");
        let d = merge_save(parse_options(&["--save".into()]).unwrap());
        assert_eq!(d[0].value(), "");
    }

    #[test]
    fn rewrite_updates_lines_in_place_and_appends_the_rest() {
        let dir =
            std::env::temp_dir().join(format!("memlog-conf-{}", crate::engine::random_hex(8)));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("memlog.conf");
        std::fs::write(
            &path,
            "# keep me\nmaxmemory 100mb\nport 7000\nmaxmemory 1mb\nhash-max-ziplist-entries 1\n",
        )
        .unwrap();
        let params = [
            ("maxmemory", "209715200".to_string(), false),
            ("timeout", "0".to_string(), true),
            ("requirepass", "a b".to_string(), false),
            ("save", "900 1".to_string(), false),
            ("notify-keyspace-events", String::new(), false),
            ("hash-max-listpack-entries", "512".to_string(), true),
        ];
        rewrite(&path, &params).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            "# keep me\nmaxmemory 209715200\nport 7000\nhash-max-listpack-entries 512\n# Generated by CONFIG REWRITE\nrequirepass \"a b\"\nsave 900 1\nnotify-keyspace-events \"\"\n"
        );
        let again = parse_file(&text).unwrap();
        assert_eq!(again[3].value(), "a b");
        assert_eq!(again[5].value(), "");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
