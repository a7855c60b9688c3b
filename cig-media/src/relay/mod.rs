//! Relay-side building blocks shared by cig-relay and its controller: the RTP/RTCP port-pair
//! allocator. (The control protocol itself is [`crate::control`]; the per-call packet state is
//! [`crate::bridge`].)

pub mod ports;
