//! Dialog state (RFC 3261 §12): Call-ID, tags, local and remote CSeq, remote target and route
//! set, and the in-dialog requests built from them.

use std::net::{IpAddr, SocketAddr};

use crate::message::{CSeq, HeaderName, Host, Method, NameAddr, Request, Response, Uri};
use crate::transaction::Transport;

/// The state shared by both ends of a dialog, seen from this side.
#[derive(Clone, Debug)]
pub(crate) struct Dialog {
    pub(crate) call_id: String,
    pub(crate) local_tag: String,
    pub(crate) remote_tag: Option<String>,
    /// The local URI as a name-addr with our tag (our From in requests we send).
    pub(crate) local: NameAddr,
    /// The remote URI as a name-addr, tag set once known (our To in requests we send).
    pub(crate) remote: NameAddr,
    pub(crate) local_seq: u32,
    pub(crate) remote_seq: Option<u32>,
    pub(crate) remote_target: Uri,
    /// Route set in the order requests carry it.
    pub(crate) route_set: Vec<NameAddr>,
    /// Where in-dialog requests go, and how.
    pub(crate) destination: SocketAddr,
    pub(crate) transport: Transport,
}

/// The address of a URI whose host is an IP literal; `None` for host names.
pub(crate) fn literal_address(uri: &Uri) -> Option<SocketAddr> {
    let sip = uri.as_sip()?;
    let ip: IpAddr = match &sip.host {
        Host::Ipv4(a) => (*a).into(),
        Host::Ipv6(a) => (*a).into(),
        Host::Domain(_) => return None,
    };
    Some(SocketAddr::new(ip, sip.port.unwrap_or(5060)))
}

impl Dialog {
    /// The UAC's dialog created by a 2xx to `invite` (RFC 3261 §12.1.2): our From and Call-ID,
    /// the response's To (with its tag), Contact as the remote target, the Record-Route
    /// reversed as the route set, the INVITE's CSeq as the local sequence. `None` when the
    /// messages lack what a dialog needs.
    pub(crate) fn from_2xx(
        invite: &Request,
        resp: &Response,
        destination: SocketAddr,
        transport: Transport,
    ) -> Option<Dialog> {
        let local = invite.headers.from().ok()?;
        let remote = resp.headers.to().ok()?;
        let mut route_set = resp.headers.record_route().unwrap_or_default();
        route_set.reverse();
        let mut d = Dialog {
            call_id: invite.headers.call_id().ok()?.to_string(),
            local_tag: local.tag()?.to_owned(),
            remote_tag: remote.tag().map(str::to_owned),
            local,
            remote,
            local_seq: invite.headers.cseq().ok()?.seq,
            remote_seq: None,
            remote_target: resp
                .headers
                .contact()
                .ok()
                .flatten()
                .map_or_else(|| invite.uri.clone(), |c| c.uri),
            route_set,
            destination,
            transport,
        };
        d.retarget();
        Some(d)
    }

    /// Sets the remote tag (from a response's To, or a request's From).
    pub(crate) fn set_remote_tag(&mut self, tag: &str) {
        self.remote_tag = Some(tag.to_owned());
        self.remote.set_tag(tag);
    }

    /// Points in-dialog requests at the first route, else the remote target, when that is an IP
    /// literal; over UDP only (TCP keeps using the connection the dialog started on).
    pub(crate) fn retarget(&mut self) {
        if self.transport.is_reliable() {
            return;
        }
        let next = self
            .route_set
            .first()
            .map(|r| &r.uri)
            .unwrap_or(&self.remote_target);
        if let Some(addr) = literal_address(next) {
            self.destination = addr;
        }
    }

    /// A new in-dialog request (RFC 3261 §12.2.1.1): CSeq incremented except for ACK (which
    /// takes `ack_seq`).
    pub(crate) fn request(
        &mut self,
        method: Method,
        via: String,
        contact: &str,
        ack_seq: Option<u32>,
    ) -> Request {
        let seq = match ack_seq {
            Some(s) => s,
            None => {
                self.local_seq = self.local_seq.wrapping_add(1);
                self.local_seq
            }
        };
        // Loose routing when the first route has `lr`; strict routing otherwise.
        let strict = self
            .route_set
            .first()
            .is_some_and(|r| r.uri.as_sip().is_some_and(|u| !u.params.contains("lr")));
        let (uri, routes): (Uri, Vec<String>) = if strict {
            let mut routes: Vec<String> = self.route_set[1..]
                .iter()
                .map(ToString::to_string)
                .collect();
            routes.push(format!("<{}>", self.remote_target));
            (self.route_set[0].uri.clone(), routes)
        } else {
            (
                self.remote_target.clone(),
                self.route_set.iter().map(ToString::to_string).collect(),
            )
        };
        let mut r = Request::new(method.clone(), uri);
        r.headers.push(HeaderName::Via, via);
        r.headers.push(HeaderName::MaxForwards, "70");
        r.headers.push(HeaderName::From, self.local.to_string());
        r.headers.push(HeaderName::To, self.remote.to_string());
        r.headers.push(HeaderName::CallId, self.call_id.clone());
        r.headers
            .push(HeaderName::CSeq, CSeq { seq, method }.to_string());
        for route in routes {
            r.headers.push(HeaderName::Route, route);
        }
        if !contact.is_empty() {
            r.headers.push(HeaderName::Contact, contact.to_owned());
        }
        r
    }
}
