//! Classification of IP addresses the gate must not connect to unless a
//! rule allows private addresses: loopback, private, link-local, multicast,
//! unspecified, cloud metadata and other special-purpose ranges, in IPv4,
//! IPv6, IPv4-mapped, IPv4-compatible and NAT64 forms.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why an address is special, or `None` for an ordinary public address.
pub fn special_range(address: IpAddr) -> Option<&'static str> {
    match address {
        IpAddr::V4(v4) => special_v4(v4),
        IpAddr::V6(v6) => special_v6(v6),
    }
}

fn special_v4(address: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = address.octets();
    if address.is_unspecified() || a == 0 {
        return Some("an unspecified or \"this network\" address (0.0.0.0/8)");
    }
    if address.is_loopback() {
        return Some("a loopback address (127.0.0.0/8)");
    }
    if address == Ipv4Addr::new(169, 254, 169, 254) {
        return Some("the cloud metadata address (169.254.169.254)");
    }
    if address.is_link_local() {
        return Some("a link-local address (169.254.0.0/16)");
    }
    if address.is_private() {
        return Some("a private address (10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16)");
    }
    if a == 100 && (64..128).contains(&b) {
        return Some(
            "a shared address (100.64.0.0/10), used for carrier NAT and some cloud metadata services",
        );
    }
    if a == 192 && b == 0 && c == 0 {
        return Some("an IETF protocol address (192.0.0.0/24)");
    }
    if (a == 192 && b == 0 && c == 2)
        || (a == 198 && b == 51 && c == 100)
        || (a == 203 && b == 0 && c == 113)
    {
        return Some("a documentation address (TEST-NET)");
    }
    if a == 198 && (b == 18 || b == 19) {
        return Some("a benchmarking address (198.18.0.0/15)");
    }
    if address.is_multicast() {
        return Some("a multicast address (224.0.0.0/4)");
    }
    if a >= 240 {
        return Some("a reserved or broadcast address (240.0.0.0/4)");
    }
    None
}

fn special_v6(address: Ipv6Addr) -> Option<&'static str> {
    // Forms that carry an IPv4 address inside: the embedded address decides.
    if let Some(v4) = address.to_ipv4_mapped() {
        return special_v4(v4);
    }
    let segments = address.segments();
    if segments[..6] == [0, 0, 0, 0, 0, 0] && !address.is_unspecified() && !address.is_loopback() {
        // IPv4-compatible (deprecated) ::a.b.c.d.
        let v4 = Ipv4Addr::from(((segments[6] as u32) << 16) | segments[7] as u32);
        return special_v4(v4).or(Some("an IPv4-compatible address (::/96)"));
    }
    if segments[0] == 0x64 && segments[1] == 0xff9b && segments[2..6] == [0, 0, 0, 0] {
        // NAT64 well-known prefix 64:ff9b::/96.
        let v4 = Ipv4Addr::from(((segments[6] as u32) << 16) | segments[7] as u32);
        return special_v4(v4);
    }
    if segments[0] == 0x64 && segments[1] == 0xff9b && segments[2] == 1 {
        return Some("a local-use NAT64 address (64:ff9b:1::/48)");
    }
    if segments[0] == 0x2002 {
        // 6to4 embeds the IPv4 address in the next 32 bits.
        let v4 = Ipv4Addr::from(((segments[1] as u32) << 16) | segments[2] as u32);
        return special_v4(v4).or(Some("a 6to4 address (2002::/16)"));
    }
    if address.is_unspecified() {
        return Some("the unspecified address (::)");
    }
    if address.is_loopback() {
        return Some("the loopback address (::1)");
    }
    if address.is_multicast() {
        return Some("a multicast address (ff00::/8)");
    }
    if segments[0] & 0xffc0 == 0xfe80 {
        return Some("a link-local address (fe80::/10)");
    }
    if segments[0] & 0xffc0 == 0xfec0 {
        return Some("a site-local address (fec0::/10)");
    }
    if segments[0] & 0xfe00 == 0xfc00 {
        return Some(
            "a unique local (private) address (fc00::/7), which includes cloud metadata addresses such as fd00:ec2::254",
        );
    }
    if segments[0] == 0x2001 && segments[1] == 0 {
        return Some("a Teredo address (2001::/32)");
    }
    if segments[0] == 0x2001 && segments[1] == 0x0db8 {
        return Some("a documentation address (2001:db8::/32)");
    }
    if segments[0] == 0x0100 && segments[1..4] == [0, 0, 0] {
        return Some("a discard-only address (100::/64)");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn special(text: &str) -> bool {
        special_range(text.parse().expect("valid address")).is_some()
    }

    #[test]
    fn special_ipv4() {
        for address in [
            "127.0.0.1",
            "127.1.2.3",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "169.254.1.1",
            "0.0.0.0",
            "0.1.2.3",
            "100.64.0.1",
            "100.100.100.200",
            "224.0.0.1",
            "255.255.255.255",
            "240.0.0.1",
            "192.0.2.1",
            "198.18.0.1",
        ] {
            assert!(special(address), "{address} should be special");
        }
    }

    #[test]
    fn public_ipv4() {
        for address in [
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "100.128.0.1",
            "93.184.216.34",
        ] {
            assert!(!special(address), "{address} should be public");
        }
    }

    #[test]
    fn special_ipv6() {
        for address in [
            "::1",
            "::",
            "fe80::1",
            "fc00::1",
            "fd00:ec2::254",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::7f00:1",
            "64:ff9b::a00:1",
            "64:ff9b:1::1",
            "::127.0.0.1",
            "2002:7f00:1::",
            "2001::1",
            "2001:db8::1",
            "fec0::1",
        ] {
            assert!(special(address), "{address} should be special");
        }
    }

    #[test]
    fn public_ipv6() {
        for address in [
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2a00:1450::1",
        ] {
            assert!(!special(address), "{address} should be public");
        }
    }
}
