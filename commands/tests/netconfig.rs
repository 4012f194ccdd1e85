//! `NetConfig::apply` against the real kernel: each test runs in a network namespace of
//! its own (a thread that unshares `CLONE_NEWNET`; it and the `ip` processes it starts
//! live there, and the namespace goes away with the thread). The container's interface is
//! one end of a veth pair whose other end is in the same namespace, as LXC's veth looks
//! from inside a container; nothing reaches the host's network. Needs root and `ip`
//! (iproute2); fails without them.

use std::process::Command;

use commands::netconfig::{NetConfig, NetConfigError};
use nix::errno::Errno;
use nix::sched::{unshare, CloneFlags};
use serde_json::Value;

/// Runs `test` in a thread in a fresh network namespace and passes its panic on.
fn in_new_netns(test: impl FnOnce() + Send + 'static) {
    let thread = std::thread::spawn(move || {
        unshare(CloneFlags::CLONE_NEWNET)
            .unwrap_or_else(|e| panic!("unshare(CLONE_NEWNET): {e} (the tests need root)"));
        test();
    });
    if let Err(panic) = thread.join() {
        std::panic::resume_unwind(panic);
    }
}

/// Runs `ip args...` in the calling thread's network namespace; panics unless it succeeds.
fn ip(args: &[&str]) -> String {
    let output = Command::new("ip")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run ip {args:?}: {e} (install iproute2)"));
    assert!(
        output.status.success(),
        "ip {args:?}: {}: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr).trim()
    );
    String::from_utf8(output.stdout).expect("ip's output is UTF-8")
}

/// `ip -j args...`, parsed.
fn ip_json(args: &[&str]) -> Vec<Value> {
    let text = ip(&[&["-j"], args].concat());
    if text.trim().is_empty() {
        return Vec::new();
    }
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("ip -j {args:?}: {e}: {text}"))
}

/// The container's `eth0` (one end of a veth pair; the other end, `peer0`, stays in this
/// namespace), up like LXC leaves it unless `up` is false.
fn add_eth0(up: bool) {
    ip(&[
        "link", "add", "eth0", "type", "veth", "peer", "name", "peer0",
    ]);
    if up {
        ip(&["link", "set", "peer0", "up"]);
        ip(&["link", "set", "eth0", "up"]);
    }
}

/// `address/prefix` of each address of `dev` in `family` (`-4`, `-6`), link-local ones
/// left out (the kernel adds those).
fn addresses(family: &str, dev: &str) -> Vec<String> {
    let mut found = Vec::new();
    for link in ip_json(&[family, "addr", "show", "dev", dev]) {
        for info in link["addr_info"].as_array().into_iter().flatten() {
            if info["scope"] != "link" {
                found.push(format!(
                    "{}/{}",
                    info["local"].as_str().unwrap(),
                    info["prefixlen"]
                ));
            }
        }
    }
    found.sort();
    found
}

/// Each route of `family` in the main table, as `dst [via gateway] dev dev [scope s]
/// [proto p]`, the kernel's own (prefix routes of addresses, link-local) left out.
fn routes(family: &str) -> Vec<String> {
    let mut found = Vec::new();
    for route in ip_json(&[family, "route", "show", "table", "main"]) {
        if route["protocol"] == "kernel" {
            continue;
        }
        let mut text = route["dst"].as_str().unwrap().to_owned();
        if let Some(gateway) = route["gateway"].as_str() {
            text += &format!(" via {gateway}");
        }
        text += &format!(" dev {}", route["dev"].as_str().unwrap());
        if let Some(scope) = route["scope"].as_str() {
            text += &format!(" scope {scope}");
        }
        if let Some(protocol) = route["protocol"].as_str() {
            text += &format!(" proto {protocol}");
        }
        found.push(text);
    }
    found.sort();
    found
}

fn parse(json: &str) -> NetConfig {
    serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {json}"))
}

/// A bridged interface as osctld exports it: addresses of both versions, a default route
/// via the gateway per version (the IPv6 one written with `0.0.0.0`, as osctld does), plus
/// the via-less host route of the brief's example.
const BRIDGED: &str = r#"[{"name":"eth0",
  "ips":[{"version":4,"address":"10.1.2.3","prefix":24},
         {"version":6,"address":"fd00::3","prefix":64}],
  "routes":[{"version":4,"address":"0.0.0.0","prefix":0,"via":"10.1.2.1"},
            {"version":4,"address":"10.0.0.1","prefix":32,"via":null},
            {"version":6,"address":"0.0.0.0","prefix":0,"via":"fd00::1"}]}]"#;

#[test]
fn bridged_interface_gets_addresses_and_default_routes_and_reapplying_is_harmless() {
    in_new_netns(|| {
        add_eth0(true);
        let config = parse(BRIDGED);
        config.apply().expect("first apply");

        let check = || {
            assert_eq!(addresses("-4", "eth0"), ["10.1.2.3/24"]);
            assert_eq!(addresses("-6", "eth0"), ["fd00::3/64"]);
            // `ip` does not print protocol "boot", the protocol of routes added by hand.
            assert_eq!(
                routes("-4"),
                [
                    "10.0.0.1 dev eth0 scope link",
                    "default via 10.1.2.1 dev eth0"
                ]
            );
            assert_eq!(routes("-6"), ["default via fd00::1 dev eth0"]);
        };
        check();

        // Everything exists now: every request gets EEXIST, which counts as done.
        config.apply().expect("second apply");
        check();
    });
}

#[test]
fn routed_interface_gets_host_routes_then_default_routes_through_them() {
    in_new_netns(|| {
        add_eth0(true);
        // osctld's routed interface: the container's addresses as /32 and /128, a host
        // route to the host side's address, then the default route via it. The IPv4
        // default route is accepted only because the host route has link scope.
        let config = parse(
            r#"[{"name":"eth0",
              "ips":[{"version":4,"address":"198.51.100.7","prefix":32},
                     {"version":6,"address":"2001:db8::7","prefix":128}],
              "routes":[{"version":4,"address":"203.0.113.1","prefix":32,"via":null},
                        {"version":4,"address":"0.0.0.0","prefix":0,"via":"203.0.113.1"},
                        {"version":6,"address":"fe80::1","prefix":128,"via":null},
                        {"version":6,"address":"0.0.0.0","prefix":0,"via":"fe80::1"}]}]"#,
        );
        config.apply().expect("apply");
        assert_eq!(addresses("-4", "eth0"), ["198.51.100.7/32"]);
        assert_eq!(addresses("-6", "eth0"), ["2001:db8::7/128"]);
        assert_eq!(
            routes("-4"),
            [
                "203.0.113.1 dev eth0 scope link",
                "default via 203.0.113.1 dev eth0"
            ]
        );
        assert_eq!(
            routes("-6"),
            ["default via fe80::1 dev eth0", "fe80::1 dev eth0"]
        );
        config.apply().expect("second apply");
        assert_eq!(routes("-4").len(), 2);
        assert_eq!(routes("-6").len(), 2);
    });
}

#[test]
fn a_missing_interface_fails_before_anything_is_changed() {
    in_new_netns(|| {
        add_eth0(true);
        let config = parse(
            r#"[{"name":"eth0","ips":[{"version":4,"address":"10.1.2.3","prefix":24}],"routes":[]},
                {"name":"eth9","ips":[{"version":4,"address":"10.9.9.9","prefix":24}],"routes":[]}]"#,
        );
        let error = config.apply().expect_err("eth9 does not exist");
        assert!(
            matches!(&error, NetConfigError::NoSuchInterface { interface } if interface == "eth9"),
            "{error:?}"
        );
        assert_eq!(
            error.to_string(),
            "interface eth9: no such interface in this network namespace"
        );
        assert!(addresses("-4", "eth0").is_empty(), "eth0 was changed");
    });
}

#[test]
fn a_refused_route_names_interface_route_errno_and_the_kernels_reason() {
    in_new_netns(|| {
        add_eth0(true);
        // No route reaches 192.0.2.1: the kernel refuses the gateway.
        let config = parse(
            r#"[{"name":"eth0","ips":[{"version":4,"address":"10.1.2.3","prefix":24}],
                 "routes":[{"version":4,"address":"0.0.0.0","prefix":0,"via":"192.0.2.1"}]}]"#,
        );
        let error = config.apply().expect_err("gateway is unreachable");
        let NetConfigError::Refused {
            interface,
            errno,
            message,
            ..
        } = &error
        else {
            panic!("{error:?}");
        };
        assert_eq!(interface, "eth0");
        assert!(
            [Errno::ENETUNREACH, Errno::EINVAL].contains(errno),
            "{error}"
        );
        assert!(message.is_some(), "no extended ACK message: {error}");
        let text = error.to_string();
        assert!(
            text.starts_with(&format!(
                "interface eth0: adding route 0.0.0.0/0 via 192.0.2.1: {errno} (kernel: "
            )),
            "{text}"
        );
        // The address before it was added.
        assert_eq!(addresses("-4", "eth0"), ["10.1.2.3/24"]);
    });
}

#[test]
fn links_are_neither_raised_nor_lowered() {
    in_new_netns(|| {
        add_eth0(false);
        let config = parse(
            r#"[{"name":"eth0","ips":[{"version":4,"address":"10.1.2.3","prefix":24},
                                      {"version":6,"address":"fd00::3","prefix":64}]}]"#,
        );
        config
            .apply()
            .expect("addresses go onto a link that is down");
        assert_eq!(addresses("-4", "eth0"), ["10.1.2.3/24"]);
        assert_eq!(addresses("-6", "eth0"), ["fd00::3/64"]);
        let link = &ip_json(&["link", "show", "dev", "eth0"])[0];
        let flags: Vec<&str> = link["flags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f.as_str().unwrap())
            .collect();
        assert!(!flags.contains(&"UP"), "eth0 was raised: {flags:?}");

        // A route needs the link up: the kernel's refusal comes back as an error.
        let route = parse(
            r#"[{"name":"eth0","routes":[{"version":4,"address":"10.0.0.1","prefix":32,"via":null}]}]"#,
        );
        let error = route.apply().expect_err("eth0 is down");
        assert!(
            error
                .to_string()
                .starts_with("interface eth0: adding route 10.0.0.1/32: ENETDOWN"),
            "{error}"
        );
    });
}

#[test]
fn malformed_json_is_refused_naming_the_interface() {
    let error = serde_json::from_str::<NetConfig>(
        r#"[{"name":"eth0","ips":[{"version":4,"address":"10.1.2.3","prefix":24}]},
            {"name":"eth1","ips":[{"version":4,"address":"10.1.2","prefix":24}]}]"#,
    )
    .expect_err("10.1.2 is no address");
    assert!(
        error.to_string().starts_with(
            r#"interface eth1: address 10.1.2/24: address "10.1.2" is not an IP address"#
        ),
        "{error}"
    );
    let error = serde_json::from_str::<NetConfig>(r#"[{"name":"eth0","ips":[{"version":4,"#)
        .expect_err("truncated");
    assert!(error.is_eof(), "{error}");
}

#[test]
fn an_empty_configuration_needs_no_namespace_changes() {
    in_new_netns(|| {
        parse("[]").apply().expect("nothing to do");
        parse(r#"[{"name":"lo"}]"#)
            .apply()
            .expect("lo exists, nothing to add");
    });
}
