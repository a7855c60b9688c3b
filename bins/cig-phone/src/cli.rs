//! The command line: what the phone is asked to do.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

/// How incoming calls are handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerMode {
    /// Ring (GROWL) and answer at once.
    Auto,
    /// Ring, answer after this long.
    After(Duration),
    /// Refuse with HANGUP(busy).
    Busy,
    /// Refuse with HANGUP(declined).
    Declined,
    /// Ring until the caller gives up.
    Never,
}

/// Parses `auto`, `after=N` (seconds), `reject=busy`, `reject=declined`, `never`.
pub fn parse_answer(s: &str) -> Result<AnswerMode, String> {
    match s {
        "auto" => Ok(AnswerMode::Auto),
        "never" => Ok(AnswerMode::Never),
        "reject=busy" => Ok(AnswerMode::Busy),
        "reject=declined" => Ok(AnswerMode::Declined),
        _ => match s.strip_prefix("after=") {
            Some(n) => parse_secs(n).map(AnswerMode::After),
            None => {
                Err("expected auto, after=SECONDS, reject=busy, reject=declined or never".into())
            }
        },
    }
}

/// Parses seconds (fractions allowed, 0 to one day).
pub fn parse_secs(s: &str) -> Result<Duration, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if !(0.0..=86_400.0).contains(&v) {
        return Err(format!("{s} seconds is out of range (0 to 86400)"));
    }
    Ok(Duration::from_secs_f64(v))
}

/// RTP payload types of the accepted codecs, in preference order (8 PCMA, 0 PCMU).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Codecs(pub Vec<u8>);

/// Parses a codec preference list such as `pcma,pcmu`.
pub fn parse_codecs(s: &str) -> Result<Codecs, String> {
    let mut out = Vec::new();
    for name in s.split(',') {
        let pt = match name.trim().to_ascii_lowercase().as_str() {
            "pcma" => 8,
            "pcmu" => 0,
            other => return Err(format!("unknown codec {other:?} (pcma, pcmu)")),
        };
        if !out.contains(&pt) {
            out.push(pt);
        }
    }
    Ok(Codecs(out))
}

/// Parses a tone frequency in Hz (50–3950).
pub fn parse_hz(s: &str) -> Result<f32, String> {
    let v: f32 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a frequency in Hz"))?;
    if !(50.0..=3950.0).contains(&v) {
        return Err(format!("{s} Hz is out of range (50 to 3950)"));
    }
    Ok(v)
}

const OUTPUT_HELP: &str = "\
OUTPUT
  One line per event on stdout: the event name, then key=value fields (values with spaces are
  quoted). With --json, one JSON object per line with the same fields plus \"event\" and \"t\"
  (seconds since start). Events and fields (docs/phone.md has the full schema):
    registered   identity switch
    disconnected reason
    refused      reason
    call         id dir(out|in) state(CREATE|BANG|GROWL|TALK|HANGUP) from to [reason]
    media        id local remote codec srtp              (media started)
    dtmf         id digit                                (a digit received)
    dtmf_sent    id digits                               (digits queued for sending)
    media_end    id tone_hz tone_blocks audio_rx audio_tx dtmf_rx rejected
    message_sent id to attachments
    message_ack  id status(stored|delivered|refused)
    message      id from text attachments=[{name,type,size,sha256}]
    error        what
    summary      ok calls answered tone_hz digits messages_received messages_acked
EXIT STATUS
  0 everything asked succeeded; 1 start-up error (keys, files, sockets); 2 usage;
  3 something asked failed (call not answered, message refused, expected tone or digits
  missing).";

/// The secure phone of the CIG testbed.
#[derive(Debug, Parser)]
#[command(
    name = "cig-phone",
    version,
    about = "CIG secure phone: register, call, answer, play/record audio, DTMF and text messages over UMSG/MIKEY-SAKKE",
    after_help = OUTPUT_HELP
)]
pub struct Args {
    /// Keystore file (userdata/.ks.<identity>, as `cig-cli set-key` writes it).
    #[arg(long, required_unless_present = "bundle", conflicts_with = "bundle")]
    pub keystore: Option<PathBuf>,
    /// Encrypted key bundle (`cig-kms export`); needs --code or --code-file.
    #[arg(long)]
    pub bundle: Option<PathBuf>,
    /// The bundle's one-time transfer code.
    #[arg(long, requires = "bundle", conflicts_with = "code_file")]
    pub code: Option<String>,
    /// A file holding the transfer code.
    #[arg(long, requires = "bundle")]
    pub code_file: Option<PathBuf>,
    /// Switch address host:port; repeat for fail-over (default: the key material's).
    #[arg(long = "switch", value_name = "HOST:PORT")]
    pub switches: Vec<String>,
    /// PEM file of the switch's CA certificate (default: the key material's).
    #[arg(long, value_name = "PEM")]
    pub ca: Option<PathBuf>,
    /// Dial this TEL URI once registered, e.g. tel:+8888w101 or tel:+8888;101.
    #[arg(long, value_name = "URI")]
    pub dial: Option<String>,
    /// Incoming calls: auto, after=SECONDS, reject=busy, reject=declined, never.
    #[arg(long, default_value = "auto", value_parser = parse_answer)]
    pub answer: AnswerMode,
    /// Audio codecs accepted, in preference order.
    #[arg(long, default_value = "pcma,pcmu", value_parser = parse_codecs)]
    pub codecs: Codecs,
    /// Play this WAV file (8 kHz 16-bit mono) in every call.
    #[arg(long, value_name = "FILE.wav", conflicts_with = "tone")]
    pub play: Option<PathBuf>,
    /// Repeat the --play file instead of falling silent at its end.
    #[arg(long = "loop", requires = "play")]
    pub looped: bool,
    /// Play a sine of this frequency in every call.
    #[arg(long, value_name = "HZ", value_parser = parse_hz)]
    pub tone: Option<f32>,
    /// Peak amplitude of --tone (linear, 1–32767).
    #[arg(long, default_value_t = 8000, value_parser = clap::value_parser!(i16).range(1..))]
    pub tone_level: i16,
    /// Record what the phone hears (all calls, one after the other) to this WAV file.
    #[arg(long, value_name = "FILE.wav")]
    pub record: Option<PathBuf>,
    /// Send these DTMF digits (0-9 * # A-D) once a call is answered.
    #[arg(long, value_name = "DIGITS")]
    pub dtmf: Option<String>,
    /// Seconds between the answer and the DTMF digits.
    #[arg(long, default_value = "0.5", value_parser = parse_secs)]
    pub dtmf_delay: Duration,
    /// Hang up this many seconds after a call is answered.
    #[arg(long, value_name = "SECONDS", value_parser = parse_secs)]
    pub hangup_after: Option<Duration>,
    /// Give up a dialled call not answered within this many seconds (HANGUP reason timeout).
    #[arg(long, default_value = "60", value_parser = parse_secs)]
    pub ring_timeout: Duration,
    /// Send a text message once registered (repeat for several).
    #[arg(long, num_args = 2, value_names = ["TO", "TEXT"])]
    pub send_message: Vec<String>,
    /// Attach this file to every message sent (repeat for several).
    #[arg(long, value_name = "FILE", requires = "send_message")]
    pub attach: Vec<PathBuf>,
    /// Write received attachments into this directory.
    #[arg(long, value_name = "DIR")]
    pub save_attachments: Option<PathBuf>,
    /// Exit once this many calls (either direction) have ended.
    #[arg(long, value_name = "N")]
    pub calls: Option<u32>,
    /// Exit once this many text messages have been received.
    #[arg(long, value_name = "N")]
    pub messages: Option<u32>,
    /// Exit after this many seconds whatever is still going on (hanging up first).
    #[arg(long, value_name = "SECONDS", value_parser = parse_secs)]
    pub exit_after: Option<Duration>,
    /// Fail (exit 3) unless this tone was the dominant one heard.
    #[arg(long, value_name = "HZ", value_parser = parse_hz)]
    pub expect_tone: Option<f32>,
    /// Fail (exit 3) unless exactly these DTMF digits were received.
    #[arg(long, value_name = "DIGITS")]
    pub expect_dtmf: Option<String>,
    /// Local address for media sockets.
    #[arg(long, default_value = "0.0.0.0")]
    pub media_ip: IpAddr,
    /// Print one JSON object per line instead of text.
    #[arg(long)]
    pub json: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answer_modes() {
        assert_eq!(parse_answer("auto"), Ok(AnswerMode::Auto));
        assert_eq!(
            parse_answer("after=1.5"),
            Ok(AnswerMode::After(Duration::from_millis(1500)))
        );
        assert_eq!(parse_answer("reject=busy"), Ok(AnswerMode::Busy));
        assert_eq!(parse_answer("reject=declined"), Ok(AnswerMode::Declined));
        assert_eq!(parse_answer("never"), Ok(AnswerMode::Never));
        assert!(parse_answer("after=-1").is_err());
        assert!(parse_answer("maybe").is_err());
    }

    #[test]
    fn codecs_hz_and_seconds() {
        assert_eq!(parse_codecs("PCMU,pcma,pcmu"), Ok(Codecs(vec![0, 8])));
        assert!(parse_codecs("g729").is_err());
        assert_eq!(parse_hz("1000"), Ok(1000.0));
        assert!(parse_hz("5000").is_err());
        assert!(parse_secs("nan").is_err());
        assert!(parse_secs("1e9").is_err());
    }

    #[test]
    fn command_line() {
        let a = Args::try_parse_from([
            "cig-phone",
            "--keystore",
            "ks",
            "--dial",
            "tel:+8888w101",
            "--tone",
            "1000",
            "--send-message",
            "tel:+1",
            "hello there",
            "--send-message",
            "tel:+2",
            "again",
            "--attach",
            "f.txt",
            "--json",
        ])
        .unwrap();
        assert_eq!(a.dial.as_deref(), Some("tel:+8888w101"));
        assert_eq!(a.send_message, ["tel:+1", "hello there", "tel:+2", "again"]);
        assert_eq!(a.codecs, Codecs(vec![8, 0]));
        assert_eq!(a.answer, AnswerMode::Auto);
        assert!(a.json);
        // Keys are required; --play and --tone exclude each other.
        assert!(Args::try_parse_from(["cig-phone"]).is_err());
        assert!(
            Args::try_parse_from([
                "cig-phone",
                "--keystore",
                "k",
                "--tone",
                "400",
                "--play",
                "a.wav"
            ])
            .is_err()
        );
    }
}
