//! An auto-answering SIP UAS built on cig-sip (UDP and TCP on one port): every INVITE gets 180
//! and 200 with a G.711 SDP answer, every BYE its 200. The peer for call-rate measurements
//! with sipp (see docs/perf.md):
//!
//! ```text
//! cargo run --release -p cig-sip --example sip_uas -- 127.0.0.1:5080
//! sipp -sn uac 127.0.0.1:5080 -i 127.0.0.1 -p 5081 -r 2000 -m 60000 -nostdin
//! ```

use cig_sip::driver;
use cig_sip::sdp::AudioCapabilities;
use cig_sip::ua::UaConfig;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:5080".to_owned());
    let config = UaConfig::new(addr.parse()?);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_nanos() as u64;
    let (handle, mut events) = driver::start(config, seed).await?;
    println!("sip_uas listening on {} (UDP and TCP)", handle.local_addr());
    let caps = AudioCapabilities::new(handle.local_addr().ip(), 40000);
    let stats = tokio::select! {
        s = driver::answer_all(&handle, &mut events, &caps, true, |_| false) => s,
        _ = tokio::signal::ctrl_c() => return Ok(()),
    };
    println!("{stats:?}");
    Ok(())
}
