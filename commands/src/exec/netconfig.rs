//! osctld's `NetConfig`: the static network configuration that `run_network` mode applies
//! inside a container that was started just for one command.
//!
//! A stopped container started by LXC for one command gets its interfaces (LXC creates and
//! raises them) but no addresses or routes: those are normally configured by the
//! container's own init, which does not run then. So the frontend exports the container's
//! interfaces as [`NetConfig`] (osctld's JSON, below), and a process attached to the
//! container — in its network namespace, as its root — calls [`NetConfig::apply`] before
//! the command runs.
//!
//! # The export
//!
//! An array with one object per interface, exactly as osctld's `NetConfig#export` writes it
//! (Ruby symbols become strings):
//!
//! ```json
//! [{"name":"eth0",
//!   "ips":[{"version":4,"address":"10.1.2.3","prefix":24},
//!          {"version":6,"address":"fd00::3","prefix":64}],
//!   "routes":[{"version":4,"address":"0.0.0.0","prefix":0,"via":"10.1.2.1"},
//!             {"version":4,"address":"10.0.0.1","prefix":32,"via":null}]}]
//! ```
//!
//! osctld writes for a *bridged* interface one default route via its gateway per IP
//! version, and for a *routed* one first a via-less host route (`/32`, `/128`) to the
//! host-side address, then the default route via that address. A default route is an
//! unspecified address (`0.0.0.0` or `::`) with prefix 0, and its family is `version`:
//! osctld writes `0.0.0.0` for IPv6 default routes too.
//!
//! Parsing is strict, because a misspelt key would otherwise silently change a route
//! (a lost `via` makes a gateway route a link route): unknown keys, IP versions other
//! than 4 and 6, unparsable addresses, an address or gateway of the other family and
//! prefixes beyond 32 (IPv4) or 128 (IPv6) are refused with an error naming the
//! interface. A missing (or `null`) `ips`, `routes` or `via` is empty.
//!
//! # Applying it
//!
//! [`NetConfig::apply`] works in the calling thread's network namespace, over one
//! `NETLINK_ROUTE` socket, one request at a time: it sends a request, waits for the
//! kernel's acknowledgement and checks it before sending the next. It is synchronous — no
//! threads, no async runtime — because it runs in a forked child right before `exec`.
//! For each interface, in order:
//!
//! - each address: `RTM_NEWADDR` (`NLM_F_CREATE | NLM_F_EXCL`) with `IFA_LOCAL` and
//!   `IFA_ADDRESS` = address, prefix length = prefix, scope global;
//! - each route: `RTM_NEWROUTE` (`NLM_F_CREATE | NLM_F_EXCL`) in the main table, protocol
//!   `boot`, type unicast, `RTA_OIF` = the interface, `RTA_DST`/`dst_len` =
//!   address/prefix (no `RTA_DST` for a default route), `RTA_GATEWAY` = `via`; scope
//!   `link` when there is no `via`, else `universe`.
//!
//! `EEXIST` counts as success, so applying twice is harmless. Any other refusal is an
//! error that names the interface, the address or route, the errno and, where the kernel
//! gives one (extended ACK), its message. Links are neither raised nor lowered: LXC does
//! that.
//!
//! # Differences from osctld
//!
//! - Every interface name is resolved before anything is changed, so a missing interface
//!   fails the whole call with nothing applied; osctld resolved each name as it went and
//!   left the interfaces before the missing one configured.
//! - osctld's netlink library took a route's family from its first address, the
//!   `0.0.0.0` destination of an IPv6 default route, then refused the IPv6 gateway
//!   ("Mismatched address family"), which ended the setup there. Here `version` decides,
//!   so that route becomes `::/0` via the IPv6 gateway, as osctld meant it.
//! - The input is validated (above); osctld passed whatever it got to netlink.
//! - A failure is returned to the caller; osctld's runner ignored the exit status of the
//!   process that applied the configuration.
//!
//! The requests carry what osctld's netlink library (`netlinkrb`) sent for these calls —
//! flags, table, protocol, type, scopes, attributes — except that a default route has no
//! `RTA_DST` (as `ip` sends it; the kernel reads both alike).

use std::ffi::CString;
use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use netlink_packet_core::{
    ErrorBuffer, NetlinkBuffer, NetlinkHeader, NetlinkMessage, NetlinkPayload, NlasIterator,
    NLMSG_ERROR, NLM_F_ACK, NLM_F_ACK_TLVS, NLM_F_CAPPED, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use nix::errno::Errno;
use nix::sys::socket::{setsockopt, sockopt};
use nix::sys::time::{TimeVal, TimeValLike};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// How long [`NetConfig::apply`] waits for the kernel to acknowledge one request.
/// rtnetlink handles a request within the sender's `send` call, so the acknowledgement is
/// already queued when `send` returns; the bound only keeps a kernel that never answers
/// from hanging the command that is waiting for its network.
pub const ACK_TIMEOUT: Duration = Duration::from_secs(5);

/// The static network configuration of a container's interfaces: osctld's
/// `NetConfig#export`, a JSON array of [`NetInterface`]s (see the module docs).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct NetConfig {
    /// The interfaces, configured in this order.
    pub interfaces: Vec<NetInterface>,
}

/// One interface of the container, named as inside the container (e.g. `eth0`), with the
/// addresses and routes to add to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NetInterface {
    /// The interface's name in the container's network namespace.
    pub name: String,
    /// Addresses, added before the routes (a gateway must be reachable first).
    pub ips: Vec<Address>,
    /// Routes, added in this order (a routed interface's host route before the default
    /// route through it).
    pub routes: Vec<Route>,
}

/// IP version of an [`Address`] or [`Route`]; osctld's `version`, 4 or 6 in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpVersion {
    /// IPv4 (`4`).
    V4,
    /// IPv6 (`6`).
    V6,
}

/// An address to add to an interface, with the length of its network's prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Address {
    /// Must match `address`'s family.
    pub version: IpVersion,
    pub address: IpAddr,
    /// At most 32 (IPv4) or 128 (IPv6).
    pub prefix: u8,
}

/// A route through an interface: to `address`/`prefix`, via the gateway `via` if any,
/// else directly on the link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Route {
    /// The route's family; decides it also for a default route, whose `address` may be of
    /// either family (osctld writes `0.0.0.0` for IPv6 too).
    pub version: IpVersion,
    /// Destination network; an unspecified address with prefix 0 is the default route.
    pub address: IpAddr,
    /// At most 32 (IPv4) or 128 (IPv6).
    pub prefix: u8,
    /// Gateway, of the route's family; `None` for a link (e.g. host) route.
    pub via: Option<IpAddr>,
}

/// Why a configuration was refused before anything was applied: the interface (its name,
/// or `#<index>` where it has none) and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("interface {interface}: {reason}")]
pub struct InvalidConfig {
    pub interface: String,
    pub reason: String,
}

/// The change whose request the kernel refused or did not acknowledge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    AddAddress(Address),
    AddRoute(Route),
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::AddAddress(address) => write!(f, "adding address {address}"),
            Change::AddRoute(route) => write!(f, "adding route {route}"),
        }
    }
}

/// Why [`NetConfig::apply`] failed. Every variant but [`Socket`](Self::Socket) names the
/// interface.
#[derive(Debug, thiserror::Error)]
pub enum NetConfigError {
    #[error("invalid network configuration: {0}")]
    Invalid(#[from] InvalidConfig),
    /// The interface does not exist (`ENODEV`); nothing was changed.
    #[error("interface {interface}: no such interface in this network namespace")]
    NoSuchInterface { interface: String },
    /// Looking the interface up failed otherwise (e.g. no file descriptors left).
    #[error("interface {interface}: cannot look up its index: {errno}")]
    Lookup { interface: String, errno: Errno },
    #[error("cannot open a netlink route socket: {0}")]
    Socket(#[source] io::Error),
    /// The kernel refused the change with `errno` (never `EEXIST`, which counts as done),
    /// and said `message` if it sends extended acknowledgements.
    #[error("interface {interface}: {change}: {errno}{}", kernel_says(.message))]
    Refused {
        interface: String,
        change: Change,
        errno: Errno,
        message: Option<String>,
    },
    /// The request could not be sent, or no valid acknowledgement came back.
    #[error("interface {interface}: {change}: netlink: {source}")]
    Netlink {
        interface: String,
        change: Change,
        #[source]
        source: io::Error,
    },
}

fn kernel_says(message: &Option<String>) -> String {
    match message {
        Some(message) => format!(" (kernel: {message})"),
        None => String::new(),
    }
}

// ---------------------------------------------------------------------------------------
// Values and their checks
// ---------------------------------------------------------------------------------------

impl IpVersion {
    /// The family of `address`.
    pub fn of(address: IpAddr) -> IpVersion {
        match address {
            IpAddr::V4(_) => IpVersion::V4,
            IpAddr::V6(_) => IpVersion::V6,
        }
    }

    /// The longest prefix of this version: 32 or 128.
    pub fn max_prefix(self) -> u8 {
        match self {
            IpVersion::V4 => 32,
            IpVersion::V6 => 128,
        }
    }

    fn number(self) -> u8 {
        match self {
            IpVersion::V4 => 4,
            IpVersion::V6 => 6,
        }
    }

    fn unspecified(self) -> IpAddr {
        match self {
            IpVersion::V4 => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            IpVersion::V6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        }
    }

    fn family(self) -> AddressFamily {
        match self {
            IpVersion::V4 => AddressFamily::Inet,
            IpVersion::V6 => AddressFamily::Inet6,
        }
    }
}

impl fmt::Display for IpVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IPv{}", self.number())
    }
}

impl Serialize for IpVersion {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u8(self.number())
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix)
    }
}

impl Address {
    fn check(&self) -> Result<(), String> {
        check_prefix(self.version, self.prefix)?;
        check_family(self.version, "address", self.address)
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let destination = self.destination().unwrap_or(self.version.unspecified());
        write!(f, "{destination}/{}", self.prefix)?;
        match self.via {
            Some(via) => write!(f, " via {via}"),
            None => Ok(()),
        }
    }
}

impl Route {
    /// Whether this is the default route of its version.
    pub fn is_default(&self) -> bool {
        self.prefix == 0 && self.address.is_unspecified()
    }

    /// The destination to send as `RTA_DST`: `None` for the default route, as `ip` sends
    /// it, since its address may be of the other family (osctld's IPv6 `0.0.0.0`).
    pub fn destination(&self) -> Option<IpAddr> {
        (!self.is_default()).then_some(self.address)
    }

    fn check(&self) -> Result<(), String> {
        check_prefix(self.version, self.prefix)?;
        if let Some(destination) = self.destination() {
            check_family(self.version, "destination", destination)?;
        }
        match self.via {
            Some(via) => check_family(self.version, "gateway", via),
            None => Ok(()),
        }
    }
}

fn check_prefix(version: IpVersion, prefix: u8) -> Result<(), String> {
    if prefix > version.max_prefix() {
        return Err(format!(
            "prefix {prefix} is out of range for {version} (0-{})",
            version.max_prefix()
        ));
    }
    Ok(())
}

fn check_family(version: IpVersion, what: &str, address: IpAddr) -> Result<(), String> {
    if IpVersion::of(address) != version {
        return Err(format!("{what} {address} is not an {version} address"));
    }
    Ok(())
}

/// What the kernel accepts as an interface name (`dev_valid_name`): 1 to 15 bytes, not
/// `.` or `..`, no `/`, `:`, whitespace or NUL.
fn check_name(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() < libc::IFNAMSIZ
        && name != "."
        && name != ".."
        && !name
            .bytes()
            .any(|b| b == b'/' || b == b':' || b == 0 || b.is_ascii_whitespace());
    if !valid {
        return Err(format!("{name:?} is not a valid interface name"));
    }
    Ok(())
}

impl NetInterface {
    /// Checks names, families and prefixes (what deserialisation checks too).
    pub fn validate(&self) -> Result<(), InvalidConfig> {
        let invalid = |reason: String| InvalidConfig {
            interface: self.name.clone(),
            reason,
        };
        check_name(&self.name).map_err(invalid)?;
        for address in &self.ips {
            address
                .check()
                .map_err(|e| invalid(format!("address {address}: {e}")))?;
        }
        for route in &self.routes {
            route
                .check()
                .map_err(|e| invalid(format!("route {route}: {e}")))?;
        }
        Ok(())
    }
}

impl NetConfig {
    /// Checks every interface (see [`NetInterface::validate`]).
    pub fn validate(&self) -> Result<(), InvalidConfig> {
        self.interfaces.iter().try_for_each(NetInterface::validate)
    }
}

// ---------------------------------------------------------------------------------------
// Deserialisation: osctld's JSON, checked, with errors that name the interface
// ---------------------------------------------------------------------------------------

// Each interface is first taken as a JSON value, so that an error anywhere inside it can
// name the interface (serde's own errors only give a position).

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInterface {
    name: String,
    #[serde(default)]
    ips: Option<Vec<RawAddress>>,
    #[serde(default)]
    routes: Option<Vec<RawRoute>>,
}

// Numbers are taken wide, so that a version 5 or a prefix 300 gets a message of ours.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAddress {
    version: i64,
    address: String,
    prefix: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    version: i64,
    address: String,
    prefix: i64,
    #[serde(default)]
    via: Option<String>,
}

fn parse_version(version: i64) -> Result<IpVersion, String> {
    match version {
        4 => Ok(IpVersion::V4),
        6 => Ok(IpVersion::V6),
        other => Err(format!("unknown IP version {other} (expected 4 or 6)")),
    }
}

fn parse_prefix(version: IpVersion, prefix: i64) -> Result<u8, String> {
    match u8::try_from(prefix) {
        Ok(prefix) if prefix <= version.max_prefix() => Ok(prefix),
        _ => Err(format!(
            "prefix {prefix} is out of range for {version} (0-{})",
            version.max_prefix()
        )),
    }
}

fn parse_ip(what: &str, text: &str) -> Result<IpAddr, String> {
    text.parse()
        .map_err(|_| format!("{what} {text:?} is not an IP address"))
}

impl RawAddress {
    fn parse(&self) -> Result<Address, String> {
        let version = parse_version(self.version)?;
        let address = Address {
            version,
            address: parse_ip("address", &self.address)?,
            prefix: parse_prefix(version, self.prefix)?,
        };
        address.check()?;
        Ok(address)
    }
}

impl RawRoute {
    fn parse(&self) -> Result<Route, String> {
        let version = parse_version(self.version)?;
        let route = Route {
            version,
            address: parse_ip("destination", &self.address)?,
            prefix: parse_prefix(version, self.prefix)?,
            via: self
                .via
                .as_deref()
                .map(|via| parse_ip("gateway", via))
                .transpose()?,
        };
        route.check()?;
        Ok(route)
    }
}

impl NetInterface {
    /// Parses one element of osctld's array; `index` names it in errors where it has no
    /// readable name.
    fn from_value(index: usize, value: serde_json::Value) -> Result<Self, InvalidConfig> {
        let label = match value.get("name").and_then(|n| n.as_str()) {
            Some(name) => name.to_owned(),
            None => format!("#{index}"),
        };
        let invalid = |reason: String| InvalidConfig {
            interface: label.clone(),
            reason,
        };
        let raw: RawInterface =
            serde_json::from_value(value).map_err(|e| invalid(e.to_string()))?;
        check_name(&raw.name).map_err(invalid)?;
        let ips = raw
            .ips
            .unwrap_or_default()
            .iter()
            .map(|a| {
                a.parse()
                    .map_err(|e| invalid(format!("address {}/{}: {e}", a.address, a.prefix)))
            })
            .collect::<Result<_, _>>()?;
        let routes = raw
            .routes
            .unwrap_or_default()
            .iter()
            .map(|r| {
                r.parse().map_err(|e| {
                    let via = r
                        .via
                        .as_deref()
                        .map(|v| format!(" via {v}"))
                        .unwrap_or_default();
                    invalid(format!("route {}/{}{via}: {e}", r.address, r.prefix))
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(NetInterface {
            name: raw.name,
            ips,
            routes,
        })
    }
}

impl<'de> Deserialize<'de> for NetInterface {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        NetInterface::from_value(0, value).map_err(serde::de::Error::custom)
    }
}

impl<'de> Deserialize<'de> for NetConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let values = Vec::<serde_json::Value>::deserialize(deserializer)?;
        let interfaces = values
            .into_iter()
            .enumerate()
            .map(|(index, value)| NetInterface::from_value(index, value))
            .collect::<Result<_, _>>()
            .map_err(serde::de::Error::custom)?;
        Ok(NetConfig { interfaces })
    }
}

// ---------------------------------------------------------------------------------------
// Applying
// ---------------------------------------------------------------------------------------

impl NetConfig {
    /// Adds every interface's addresses, then its routes, in the calling thread's network
    /// namespace (see the module docs). Checks the configuration and resolves every
    /// interface name first, so that bad input or a missing interface changes nothing.
    /// Addresses and routes that exist already (`EEXIST`) count as added.
    ///
    /// Synchronous and single-threaded: meant for a forked child right before `exec`.
    pub fn apply(&self) -> Result<(), NetConfigError> {
        self.validate()?;
        let indices = self
            .interfaces
            .iter()
            .map(|netif| interface_index(&netif.name))
            .collect::<Result<Vec<_>, _>>()?;
        if self.interfaces.is_empty() {
            return Ok(());
        }
        let mut socket = RouteSocket::open().map_err(NetConfigError::Socket)?;
        for (netif, &index) in self.interfaces.iter().zip(&indices) {
            for &address in &netif.ips {
                socket.change(&netif.name, Change::AddAddress(address), index)?;
            }
            for &route in &netif.routes {
                socket.change(&netif.name, Change::AddRoute(route), index)?;
            }
        }
        Ok(())
    }
}

/// The index of interface `name` in the calling thread's network namespace.
fn interface_index(name: &str) -> Result<u32, NetConfigError> {
    // `validate` refused names with NUL.
    let c_name = CString::new(name).map_err(|_| NetConfigError::NoSuchInterface {
        interface: name.to_owned(),
    })?;
    // SAFETY: `c_name` is a NUL-terminated string that outlives the call.
    let index = unsafe { libc::if_nametoindex(c_name.as_ptr()) };
    if index != 0 {
        return Ok(index);
    }
    match Errno::last() {
        Errno::ENODEV => Err(NetConfigError::NoSuchInterface {
            interface: name.to_owned(),
        }),
        errno => Err(NetConfigError::Lookup {
            interface: name.to_owned(),
            errno,
        }),
    }
}

/// The `RTM_NEWADDR` or `RTM_NEWROUTE` message for `change` on interface `index`, with
/// what `ip` and osctld's netlink library put into it.
fn request(change: Change, index: u32) -> RouteNetlinkMessage {
    match change {
        Change::AddAddress(address) => {
            let mut message = AddressMessage::default();
            message.header.family = address.version.family();
            message.header.prefix_len = address.prefix;
            message.header.index = index;
            // IFA_ADDRESS is the peer on point-to-point links, else the same as the local
            // address; the kernel would copy it for IPv4, `ip` sends both.
            message
                .attributes
                .push(AddressAttribute::Local(address.address));
            message
                .attributes
                .push(AddressAttribute::Address(address.address));
            RouteNetlinkMessage::NewAddress(message)
        }
        Change::AddRoute(route) => {
            let mut message = RouteMessage::default();
            let header = &mut message.header;
            header.address_family = route.version.family();
            header.destination_prefix_length = route.prefix;
            header.table = RouteHeader::RT_TABLE_MAIN;
            header.protocol = RouteProtocol::Boot;
            header.kind = RouteType::Unicast;
            // A route without gateway must have link scope: IPv4 accepts a gateway only
            // if a link-scope route reaches it, which is what a routed interface's host
            // route is there for.
            header.scope = match route.via {
                Some(_) => RouteScope::Universe,
                None => RouteScope::Link,
            };
            if let Some(destination) = route.destination() {
                message
                    .attributes
                    .push(RouteAttribute::Destination(RouteAddress::from(destination)));
            }
            message.attributes.push(RouteAttribute::Oif(index));
            if let Some(via) = route.via {
                message
                    .attributes
                    .push(RouteAttribute::Gateway(RouteAddress::from(via)));
            }
            RouteNetlinkMessage::NewRoute(message)
        }
    }
}

/// How one request went wrong.
#[derive(Debug)]
enum Failure {
    /// The kernel answered with this errno (and, with extended ACKs, a message).
    Refused {
        errno: Errno,
        message: Option<String>,
    },
    /// Sending or receiving failed, or the answer made no sense.
    Io(io::Error),
}

/// `NLMSGERR_ATTR_MSG` (`linux/netlink.h`): the extended ACK's error message.
const NLMSGERR_ATTR_MSG: u16 = 1;

/// Room for an acknowledgement: with `NETLINK_CAP_ACK` it holds the request's header and
/// the kernel's message, without (kernels before 4.2) the whole request, a few hundred
/// bytes at most.
const RECEIVE_BUFFER: usize = 8192;

/// A `NETLINK_ROUTE` socket connected to the kernel, one request in flight at a time.
struct RouteSocket {
    socket: Socket,
    sequence: u32,
    buffer: Vec<u8>,
}

impl RouteSocket {
    fn open() -> io::Result<RouteSocket> {
        let mut socket = Socket::new(NETLINK_ROUTE)?;
        socket.bind_auto()?;
        // Only the kernel may answer.
        socket.connect(&SocketAddr::new(0, 0))?;
        // Both are optional: the kernel's reasons make better errors (4.12), and capped
        // ACKs stay small (4.2). Older kernels refuse them; requests work all the same.
        let _ = socket.set_ext_ack(true);
        let _ = socket.set_cap_ack(true);
        let timeout = TimeVal::milliseconds(ACK_TIMEOUT.as_millis() as i64);
        setsockopt(&socket, sockopt::ReceiveTimeout, &timeout).map_err(io::Error::from)?;
        Ok(RouteSocket {
            socket,
            sequence: 0,
            buffer: Vec::with_capacity(RECEIVE_BUFFER),
        })
    }

    /// Makes `change` on interface `name` (index `index`); `EEXIST` is success.
    fn change(&mut self, name: &str, change: Change, index: u32) -> Result<(), NetConfigError> {
        match self.request(request(change, index)) {
            Ok(())
            | Err(Failure::Refused {
                errno: Errno::EEXIST,
                ..
            }) => Ok(()),
            Err(Failure::Refused { errno, message }) => Err(NetConfigError::Refused {
                interface: name.to_owned(),
                change,
                errno,
                message,
            }),
            Err(Failure::Io(source)) => Err(NetConfigError::Netlink {
                interface: name.to_owned(),
                change,
                source,
            }),
        }
    }

    /// Sends `payload` as a create-exclusive request and waits for its acknowledgement.
    fn request(&mut self, payload: RouteNetlinkMessage) -> Answer {
        self.sequence = self.sequence.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
        header.sequence_number = self.sequence;
        let mut message = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(payload));
        message.finalize();
        let mut bytes = vec![0; message.buffer_len()];
        message.serialize(&mut bytes);
        loop {
            match self.socket.send(&bytes, 0) {
                Ok(sent) if sent == bytes.len() => break,
                Ok(sent) => {
                    return Err(Failure::Io(io::Error::other(format!(
                        "sent {sent} of {} bytes",
                        bytes.len()
                    ))))
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Failure::Io(e)),
            }
        }
        self.acknowledgement()
    }

    /// Reads until the answer to the current request; anything else is skipped.
    fn acknowledgement(&mut self) -> Answer {
        loop {
            self.buffer.clear();
            let length = match self.socket.recv(&mut self.buffer, libc::MSG_TRUNC) {
                Ok(length) => length,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Err(Failure::Io(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!(
                            "no acknowledgement from the kernel within {} s",
                            ACK_TIMEOUT.as_secs()
                        ),
                    )))
                }
                Err(e) => return Err(Failure::Io(e)),
            };
            if length > self.buffer.len() {
                return Err(Failure::Io(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("a {length}-byte answer does not fit in {RECEIVE_BUFFER} bytes"),
                )));
            }
            if let Some(answer) = find_answer(&self.buffer, self.sequence)? {
                return answer;
            }
        }
    }
}

/// What the kernel answered to one request.
type Answer = Result<(), Failure>;

/// The answer in `datagram` to request number `sequence`, if it holds it; an error if the
/// datagram cannot be read.
fn find_answer(datagram: &[u8], sequence: u32) -> Result<Option<Answer>, Failure> {
    let mut rest = datagram;
    while !rest.is_empty() {
        let message = NetlinkBuffer::new_checked(rest).map_err(malformed)?;
        if message.sequence_number() == sequence && message.message_type() == NLMSG_ERROR {
            return Ok(Some(acknowledged(message.flags(), message.payload())));
        }
        // Messages are 4-byte aligned; `new_checked` made sure the length fits.
        let step = (message.length() as usize + 3) & !3;
        rest = rest.get(step..).unwrap_or_default();
    }
    Ok(None)
}

/// The outcome an `NLMSG_ERROR` payload reports: success (error 0), or the errno with the
/// kernel's extended-ACK message, if any.
fn acknowledged(flags: u16, payload: &[u8]) -> Answer {
    let error = ErrorBuffer::new_checked(payload).map_err(malformed)?;
    let Some(code) = error.code() else {
        return Ok(());
    };
    let errno = Errno::from_raw(code.get().saturating_neg());
    let message = if flags & NLM_F_ACK_TLVS != 0 {
        ack_message(flags, error.payload())
    } else {
        None
    };
    Err(Failure::Refused { errno, message })
}

/// The `NLMSGERR_ATTR_MSG` string after the echoed request (`echo`: its header, and its
/// body unless the ACK is capped).
fn ack_message(flags: u16, echo: &[u8]) -> Option<String> {
    let echoed = NetlinkBuffer::new_checked(echo).ok()?;
    let skip = if flags & NLM_F_CAPPED != 0 {
        16
    } else {
        (echoed.length() as usize + 3) & !3
    };
    let attributes = echo.get(skip..)?;
    NlasIterator::new(attributes)
        .map_while(Result::ok)
        .find(|nla| nla.kind() == NLMSGERR_ATTR_MSG)
        .map(|nla| {
            let text = nla.value();
            let text = text.split(|&b| b == 0).next().unwrap_or_default();
            String::from_utf8_lossy(text).trim().to_owned()
        })
        .filter(|text| !text.is_empty())
}

fn malformed(e: netlink_packet_core::DecodeError) -> Failure {
    Failure::Io(io::Error::new(
        io::ErrorKind::InvalidData,
        format!("malformed answer from the kernel: {e}"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_core::{Emitable, NLMSG_DONE};

    /// osctld's export for a bridged eth0 (gateway per version, IPv6 default written with
    /// `0.0.0.0` as osctld does) and a routed eth1.
    const OSCTLD: &str = r#"[
      {"name":"eth0",
       "ips":[{"version":4,"address":"10.1.2.3","prefix":24},
              {"version":6,"address":"fd00::3","prefix":64}],
       "routes":[{"version":4,"address":"0.0.0.0","prefix":0,"via":"10.1.2.1"},
                 {"version":6,"address":"0.0.0.0","prefix":0,"via":"fd00::1"}]},
      {"name":"eth1",
       "ips":[{"version":4,"address":"198.51.100.7","prefix":32}],
       "routes":[{"version":4,"address":"10.0.0.1","prefix":32,"via":null},
                 {"version":4,"address":"0.0.0.0","prefix":0,"via":"10.0.0.1"}]}
    ]"#;

    fn parse(json: &str) -> Result<NetConfig, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    fn parse_err(json: &str) -> String {
        match parse(json) {
            Ok(config) => panic!("accepted {json}: {config:?}"),
            Err(e) => e,
        }
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn parses_osctlds_export() {
        let config = parse(OSCTLD).unwrap();
        assert_eq!(config.interfaces.len(), 2);
        let eth0 = &config.interfaces[0];
        assert_eq!(eth0.name, "eth0");
        assert_eq!(
            eth0.ips,
            [
                Address {
                    version: IpVersion::V4,
                    address: ip("10.1.2.3"),
                    prefix: 24
                },
                Address {
                    version: IpVersion::V6,
                    address: ip("fd00::3"),
                    prefix: 64
                },
            ]
        );
        let v6_default = eth0.routes[1];
        assert_eq!(v6_default.version, IpVersion::V6);
        assert!(v6_default.is_default());
        assert_eq!(v6_default.destination(), None);
        assert_eq!(v6_default.to_string(), "::/0 via fd00::1");
        let host = config.interfaces[1].routes[0];
        assert_eq!(host.via, None);
        assert_eq!(host.destination(), Some(ip("10.0.0.1")));
        assert_eq!(host.to_string(), "10.0.0.1/32");
        config.validate().unwrap();
    }

    #[test]
    fn serialises_back_to_osctlds_shape() {
        let config = parse(OSCTLD).unwrap();
        let written: serde_json::Value = serde_json::to_value(&config).unwrap();
        let original: serde_json::Value = serde_json::from_str(OSCTLD).unwrap();
        assert_eq!(written, original);
        assert_eq!(parse(&written.to_string()).unwrap(), config);
    }

    #[test]
    fn missing_or_null_lists_are_empty() {
        let config =
            parse(r#"[{"name":"eth0"},{"name":"eth1","ips":null,"routes":null}]"#).unwrap();
        for netif in &config.interfaces {
            assert!(netif.ips.is_empty() && netif.routes.is_empty());
        }
        let route =
            parse(r#"[{"name":"eth0","routes":[{"version":6,"address":"fe80::1","prefix":128}]}]"#)
                .unwrap()
                .interfaces[0]
                .routes[0];
        assert_eq!(route.via, None);
        assert_eq!(parse("[]").unwrap(), NetConfig::default());
    }

    #[test]
    fn a_default_route_may_be_written_in_either_family() {
        let config = parse(
            r#"[{"name":"eth0","routes":[
                {"version":4,"address":"::","prefix":0,"via":"10.0.0.1"},
                {"version":6,"address":"::","prefix":0,"via":"fe80::1"}]}]"#,
        )
        .unwrap();
        let routes = &config.interfaces[0].routes;
        assert_eq!(routes[0].to_string(), "0.0.0.0/0 via 10.0.0.1");
        assert_eq!(routes[1].to_string(), "::/0 via fe80::1");
    }

    #[test]
    fn refuses_bad_input_naming_the_interface() {
        let cases = [
            (
                r#"[{"name":"eth0","ips":[{"version":5,"address":"10.1.2.3","prefix":24}]}]"#,
                "interface eth0: address 10.1.2.3/24: unknown IP version 5 (expected 4 or 6)",
            ),
            (
                r#"[{"name":"eth0","ips":[{"version":4,"address":"10.1.2.300","prefix":24}]}]"#,
                r#"interface eth0: address 10.1.2.300/24: address "10.1.2.300" is not an IP address"#,
            ),
            (
                r#"[{"name":"eth0","ips":[{"version":4,"address":"10.1.2.3","prefix":33}]}]"#,
                "interface eth0: address 10.1.2.3/33: prefix 33 is out of range for IPv4 (0-32)",
            ),
            (
                r#"[{"name":"eth0","ips":[{"version":6,"address":"fd00::3","prefix":129}]}]"#,
                "interface eth0: address fd00::3/129: prefix 129 is out of range for IPv6 (0-128)",
            ),
            (
                r#"[{"name":"eth0","ips":[{"version":4,"address":"10.1.2.3","prefix":-1}]}]"#,
                "interface eth0: address 10.1.2.3/-1: prefix -1 is out of range for IPv4 (0-32)",
            ),
            (
                r#"[{"name":"eth0","ips":[{"version":4,"address":"fd00::3","prefix":24}]}]"#,
                "interface eth0: address fd00::3/24: address fd00::3 is not an IPv4 address",
            ),
            (
                r#"[{"name":"eth1","routes":[{"version":4,"address":"0.0.0.0","prefix":0,"via":"fd00::1"}]}]"#,
                "interface eth1: route 0.0.0.0/0 via fd00::1: gateway fd00::1 is not an IPv4 address",
            ),
            (
                r#"[{"name":"eth1","routes":[{"version":6,"address":"10.0.0.1","prefix":128,"via":null}]}]"#,
                "interface eth1: route 10.0.0.1/128: destination 10.0.0.1 is not an IPv6 address",
            ),
            (
                r#"[{"name":"eth1","routes":[{"version":4,"address":"0.0.0.0","prefix":0,"via":"gw"}]}]"#,
                r#"interface eth1: route 0.0.0.0/0 via gw: gateway "gw" is not an IP address"#,
            ),
            (
                r#"[{"name":"eth1","routes":[{"version":4,"address":"0.0.0.0","prefix":0,"gw":"10.0.0.1"}]}]"#,
                "interface eth1: unknown field `gw`",
            ),
            (
                r#"[{"name":"eth0","ips":[{"version":4,"address":"10.1.2.3","prefix":"24"}]}]"#,
                "interface eth0: invalid type: string \"24\"",
            ),
            (r#"[{"name":"eth0"},{"ips":[]}]"#, "interface #1: missing field `name`"),
            (r#"[{"name":5}]"#, "interface #0: invalid type: integer `5`"),
            (r#"[{"name":"eth0/1"}]"#, r#"interface eth0/1: "eth0/1" is not a valid interface name"#),
            (r#"[{"name":""}]"#, r#"interface : "" is not a valid interface name"#),
            (
                r#"[{"name":"a-very-long-name0"}]"#,
                r#""a-very-long-name0" is not a valid interface name"#,
            ),
        ];
        for (json, expected) in cases {
            let error = parse_err(json);
            assert!(
                error.contains(expected),
                "{json}\n  gave {error}\n  wanted {expected}"
            );
        }
        assert!(parse_err(r#"{"name":"eth0"}"#).contains("expected a sequence"));
        assert!(parse_err(r#"[{"name":"eth0","ips":[{"#).contains("EOF"));
    }

    #[test]
    fn apply_checks_before_touching_anything() {
        // A prefix out of range built in code, not parsed: refused before any interface
        // is looked up (there is no interface "nonexistent0" either).
        let config = NetConfig {
            interfaces: vec![NetInterface {
                name: "nonexistent0".into(),
                ips: vec![Address {
                    version: IpVersion::V4,
                    address: ip("10.1.2.3"),
                    prefix: 40,
                }],
                routes: vec![],
            }],
        };
        let error = config.apply().unwrap_err();
        assert!(matches!(error, NetConfigError::Invalid(_)), "{error:?}");
        assert_eq!(
            error.to_string(),
            "invalid network configuration: interface nonexistent0: address 10.1.2.3/40: \
             prefix 40 is out of range for IPv4 (0-32)"
        );
    }

    #[test]
    fn route_requests_carry_what_osctld_sent() {
        let config = parse(OSCTLD).unwrap();
        let [host, default] = [
            config.interfaces[1].routes[0],
            config.interfaces[0].routes[1],
        ];
        let RouteNetlinkMessage::NewRoute(host) = request(Change::AddRoute(host), 7) else {
            panic!("not a route request");
        };
        assert_eq!(host.header.scope, RouteScope::Link);
        assert_eq!(host.header.protocol, RouteProtocol::Boot);
        assert_eq!(host.header.table, RouteHeader::RT_TABLE_MAIN);
        assert_eq!(host.header.destination_prefix_length, 32);
        assert_eq!(
            host.attributes,
            [
                RouteAttribute::Destination(RouteAddress::Inet("10.0.0.1".parse().unwrap())),
                RouteAttribute::Oif(7),
            ]
        );
        let RouteNetlinkMessage::NewRoute(default) = request(Change::AddRoute(default), 7) else {
            panic!("not a route request");
        };
        assert_eq!(default.header.address_family, AddressFamily::Inet6);
        assert_eq!(default.header.scope, RouteScope::Universe);
        assert_eq!(
            default.attributes,
            [
                RouteAttribute::Oif(7),
                RouteAttribute::Gateway(RouteAddress::Inet6("fd00::1".parse().unwrap())),
            ]
        );
    }

    /// An `NLMSG_ERROR` answer as the kernel writes it: `code`, the request's header
    /// (capped), then an `NLMSGERR_ATTR_MSG` attribute.
    fn nack(sequence: u32, code: i32, text: &str) -> Vec<u8> {
        let mut body = code.to_ne_bytes().to_vec();
        let mut echoed = [0u8; 16];
        echoed[0..4].copy_from_slice(&40u32.to_ne_bytes()); // the request was 40 bytes
        echoed[8..12].copy_from_slice(&sequence.to_ne_bytes());
        body.extend_from_slice(&echoed);
        let value = [text.as_bytes(), &[0]].concat();
        body.extend_from_slice(&((4 + value.len()) as u16).to_ne_bytes());
        body.extend_from_slice(&NLMSGERR_ATTR_MSG.to_ne_bytes());
        body.extend_from_slice(&value);
        body.resize((body.len() + 3) & !3, 0);
        let mut header = NetlinkHeader::default();
        header.length = (16 + body.len()) as u32;
        header.message_type = NLMSG_ERROR;
        header.flags = NLM_F_CAPPED | NLM_F_ACK_TLVS;
        header.sequence_number = sequence;
        let mut bytes = vec![0; 16];
        header.emit(&mut bytes);
        bytes.extend_from_slice(&body);
        bytes
    }

    #[test]
    fn reads_the_errno_and_the_kernels_message() {
        // A stray message of another sequence first, then the answer.
        let mut datagram = vec![0u8; 20];
        let mut done = NetlinkHeader::default();
        done.length = 20;
        done.message_type = NLMSG_DONE;
        done.sequence_number = 1;
        done.emit(&mut datagram);
        datagram.extend(nack(
            2,
            -(Errno::ENETUNREACH as i32),
            "Nexthop has invalid gateway",
        ));
        match find_answer(&datagram, 2) {
            Ok(Some(Err(Failure::Refused { errno, message }))) => {
                assert_eq!(errno, Errno::ENETUNREACH);
                assert_eq!(message.as_deref(), Some("Nexthop has invalid gateway"));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(find_answer(&datagram, 3), Ok(None)));
        // An ACK (code 0) is success.
        let ack = nack(4, 0, "");
        assert!(matches!(find_answer(&ack, 4), Ok(Some(Ok(())))));
        // A truncated message is an error, not a panic.
        assert!(matches!(
            find_answer(&datagram[..30], 2),
            Err(Failure::Io(_))
        ));
    }

    #[test]
    fn refusals_name_interface_change_and_errno() {
        let route = parse(OSCTLD).unwrap().interfaces[0].routes[0];
        let error = NetConfigError::Refused {
            interface: "eth0".into(),
            change: Change::AddRoute(route),
            errno: Errno::ENETUNREACH,
            message: Some("Nexthop has invalid gateway".into()),
        };
        assert_eq!(
            error.to_string(),
            "interface eth0: adding route 0.0.0.0/0 via 10.1.2.1: ENETUNREACH: Network is \
             unreachable (kernel: Nexthop has invalid gateway)"
        );
    }
}
