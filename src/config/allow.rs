//! The `allow:` entries of a listener: CIDRs (`10.0.0.0/8`) or single
//! addresses, checked by the loader and turned into the accept loop's
//! allow-list by the same function.

use ipnet::IpNet;

/// Parses `allow:` entries: CIDRs (`10.0.0.0/8`) or single addresses.
pub(crate) fn parse_allow<'a>(
    entries: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<IpNet>, String> {
    entries.into_iter().map(parse_allow_entry).collect()
}

/// One `allow:` entry; the listeners use the loader's parse, so `check`
/// refuses exactly what `serve` would.
pub(crate) fn parse_allow_entry(e: &str) -> Result<IpNet, String> {
    let e = e.trim();
    e.parse::<IpNet>()
        .or_else(|_| e.parse::<std::net::IpAddr>().map(IpNet::from))
        .map_err(|_| {
            format!("allow: {e:?} is not an address or CIDR (e.g. 10.0.0.0/8 or 192.0.2.7)")
        })
}
