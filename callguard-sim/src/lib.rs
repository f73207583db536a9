//! The PBX simulators: what plays Asterisk (FastAGI) and FreeSWITCH (outbound ESL) against
//! callguard, byte-exact, without being part of the service. The test suite
//! (`use callguard_sim::asterisk;`), the examples and the load generator share them, so
//! shipped code never compiles test files.

pub mod asterisk;
pub mod freeswitch;
