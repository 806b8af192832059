//! `[udp] allow`: datagrams from other sources are dropped and counted.

use std::net::{IpAddr, UdpSocket};
use std::time::Duration;

use watermeter::config::IpNet;

use crate::util::{get, App};

fn check(net: &str, ip: &str, expected: bool) {
    let (addr, prefix) = net.split_once('/').unwrap();
    let net = IpNet {
        addr: addr.parse().unwrap(),
        prefix: prefix.parse().unwrap(),
    };
    let ip: IpAddr = ip.parse().unwrap();
    assert_eq!(net.contains(ip), expected, "{net:?} contains {ip}");
}

#[test]
fn a_network_contains_exactly_its_addresses() {
    check("192.168.1.0/24", "192.168.1.77", true);
    check("192.168.1.0/24", "192.168.2.1", false);
    check("192.168.1.5/32", "192.168.1.5", true);
    check("192.168.1.5/32", "192.168.1.4", false);
    check("10.0.0.0/8", "10.255.255.255", true);
    check("10.0.0.0/8", "11.0.0.0", false);
    check("172.16.0.0/12", "172.31.0.1", true);
    check("172.16.0.0/12", "172.32.0.1", false);
    check("0.0.0.0/0", "8.8.8.8", true);
    check("192.168.1.0/24", "::ffff:192.168.1.9", true); // IPv4-mapped IPv6
    check("fd00::/8", "fd12::1", true);
    check("fd00::/8", "fe80::1", false);
    check("192.168.1.0/24", "fd00::1", false);
    check("::/0", "192.168.1.1", false);
}

#[test]
fn datagrams_from_outside_udp_allow_are_dropped_and_counted() {
    let (app, _tmp) = App::start("UTC", "");
    let text = std::fs::read_to_string(&app.config).unwrap();
    let text = text.replacen("[udp]\n", "[udp]\nallow = [\"127.0.0.2/32\"]\n", 1);
    std::fs::write(&app.config, text).unwrap();
    let app = app.restart();
    let outsider = UdpSocket::bind("127.0.0.1:0").unwrap();
    let allowed = UdpSocket::bind("127.0.0.2:0").unwrap();
    for _ in 0..5 {
        outsider
            .send_to(b"water,meter=main liters=1", app.udp)
            .unwrap();
    }
    allowed
        .send_to(b"water,meter=main liters=2", app.udp)
        .unwrap();
    assert_eq!(app.wait_total("main", 2.0, Duration::from_secs(10)), 2.0);
    let metrics = get(&app.url("/metrics")).body;
    assert!(
        metrics.contains("watermeter_udp_dropped_total{reason=\"not_allowed\"} 5"),
        "{metrics}"
    );
}
