//! Interactive mode: `cig-cli` without a verb reads commands at a `cig-cli$ ` prompt (line
//! editing, history for the session, Tab completes verbs and `show call/umsg`) and runs each
//! as the same verb would run from the shell. `exit`, `quit` or Ctrl-D leave.

use std::process::ExitCode;

use clap::Parser;
use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::Validator;
use rustyline::{CompletionType, Config, Context, Editor, Helper};

use crate::{Cli, VERBS, dispatch};

/// The prompt, as in the manual.
pub const PROMPT: &str = "cig-cli$ ";

/// Words that leave interactive mode.
const LEAVE: [&str; 2] = ["exit", "quit"];

/// Completes the verb (first word) and the argument of `show`.
#[derive(Debug)]
struct Verbs;

/// The completions of the word that ends at the end of `head` (the line up to the cursor):
/// where that word starts and the candidates, each followed by a space.
fn completions(head: &str) -> (usize, Vec<String>) {
    let start = head.rfind(char::is_whitespace).map_or(0, |i| i + 1);
    let word = &head[start..];
    let before: Vec<&str> = head[..start].split_whitespace().collect();
    let choices: Vec<&str> = match before.as_slice() {
        [] => VERBS.iter().map(|v| v.0).chain(LEAVE).collect(),
        ["show"] => vec!["call", "umsg"],
        _ => Vec::new(),
    };
    let found = choices
        .into_iter()
        .filter(|c| c.starts_with(word))
        .map(|c| format!("{c} "))
        .collect();
    (start, found)
}

impl Completer for Verbs {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let head = line.get(..pos).unwrap_or(line);
        let (start, found) = completions(head);
        let pairs = found
            .into_iter()
            .map(|replacement| Pair {
                display: replacement.trim_end().to_owned(),
                replacement,
            })
            .collect();
        Ok((start, pairs))
    }
}

impl Hinter for Verbs {
    type Hint = String;
}
impl Highlighter for Verbs {}
impl Validator for Verbs {}
impl Helper for Verbs {}

/// Splits a command line into words: whitespace separates, `'…'` and `"…"` quote.
fn words(line: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut word: Option<String> = None;
    let mut quote: Option<char> = None;
    for ch in line.chars() {
        match (quote, ch) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.get_or_insert_with(String::new).push(c),
            (None, '\'' | '"') => {
                quote = Some(ch);
                word.get_or_insert_with(String::new);
            }
            (None, c) if c.is_whitespace() => out.extend(word.take()),
            (None, c) => word.get_or_insert_with(String::new).push(c),
        }
    }
    if let Some(q) = quote {
        return Err(format!("unterminated {q}"));
    }
    out.extend(word);
    Ok(out)
}

/// Runs one line typed at the prompt; `false` when the session should end.
fn run_line(port: u16, line: &str) -> bool {
    let args = match words(line) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("cig-cli: {e}");
            return true;
        }
    };
    match args.first().map(String::as_str) {
        None => return true,
        Some(w) if LEAVE.contains(&w) => return false,
        Some(_) => {}
    }
    let port = port.to_string();
    let argv = ["cig-cli", "--port", &port]
        .into_iter()
        .map(str::to_owned)
        .chain(args);
    match Cli::try_parse_from(argv) {
        Ok(cli) if cli.command.is_none() => eprintln!("cig-cli: no verb; type help"),
        Ok(cli) => {
            // The verb prints its own errors; the prompt continues whatever its exit code.
            let _ = dispatch(&cli);
        }
        Err(e) => {
            let _ = e.print();
        }
    }
    true
}

/// The interactive session, talking to the management port `port`.
pub fn run(port: u16) -> ExitCode {
    let config = Config::builder()
        .auto_add_history(true)
        .completion_type(CompletionType::List)
        .max_history_size(1000)
        .map(rustyline::config::Builder::build);
    let editor = config.and_then(Editor::<Verbs, DefaultHistory>::with_config);
    let mut editor = match editor {
        Ok(e) => e,
        Err(e) => {
            eprintln!("cig-cli: cannot start the prompt: {e}");
            return ExitCode::FAILURE;
        }
    };
    editor.set_helper(Some(Verbs));
    loop {
        match editor.readline(PROMPT) {
            Ok(line) => {
                if !run_line(port, &line) {
                    return ExitCode::SUCCESS;
                }
            }
            // Ctrl-C abandons the line being typed.
            Err(ReadlineError::Interrupted) => {}
            Err(ReadlineError::Eof) => return ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("cig-cli: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_split_on_space_and_honour_quotes() {
        assert_eq!(words("  show   call ").unwrap(), ["show", "call"]);
        assert_eq!(
            words(r#"read "my file.conf" 'a b'"" x"#).unwrap(),
            ["read", "my file.conf", "a b", "x"]
        );
        assert_eq!(words(r#"echo """#).unwrap(), ["echo", ""]);
        assert!(words("echo 'open").is_err());
        assert!(words("").unwrap().is_empty());
    }

    #[test]
    fn completion_offers_verbs_then_show_targets() {
        assert_eq!(completions("sta"), (0, vec!["status ".to_owned()]));
        assert_eq!(
            completions("re"),
            (0, vec!["read ".to_owned(), "restore ".to_owned()])
        );
        assert_eq!(completions("show u"), (5, vec!["umsg ".to_owned()]));
        assert_eq!(
            completions("show "),
            (5, vec!["call ".to_owned(), "umsg ".to_owned()])
        );
        assert_eq!(completions("qu"), (0, vec!["quit ".to_owned()]));
        assert!(completions("status x").1.is_empty());
    }
}
