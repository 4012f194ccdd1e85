//! The command line, as clap types. Nothing here runs anything.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Default state directory (the container registry and every container's files).
pub const DEFAULT_STATE_DIR: &str = "/var/lib/ctl";

/// Command-line front of the ctl framework: provision unprivileged LXC containers and run
/// the framework's container commands on them.
///
/// Every container command runs its LXC half in a separate runner process as the
/// container's system user, exactly as a daemon built on ctl-core would (state, freeze and
/// unfreeze ask the container's LXC monitor directly and need none). By default ctl is its
/// own runner; CTL_RUNNER names another runner binary.
#[derive(Debug, Parser)]
#[command(name = "ctl", version, propagate_version = true, max_term_width = 100)]
#[command(after_help = "Run `ctl demo` for a guided tour on a throwaway container.")]
pub struct Cli {
    /// Directory holding the container registry and the containers' files.
    #[arg(
        long,
        global = true,
        value_name = "DIR",
        env = "CTL_STATE_DIR",
        default_value = DEFAULT_STATE_DIR
    )]
    pub state_dir: PathBuf,

    /// Print one JSON document on stdout: {"ok":true,"result":...} or
    /// {"ok":false,"error":{"kind":...,"message":...}}.
    #[arg(long, global = true)]
    pub json: bool,

    /// Log what ctl does to stderr (-v: debug, -vv: trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Per-call deadline: a runner that takes longer is killed and the call fails.
    #[arg(long, global = true, value_name = "SECS", value_parser = parse_secs)]
    pub deadline: Option<Duration>,

    #[command(subcommand)]
    pub command: Command,
}

/// The top-level subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Manage containers and run commands on them.
    #[command(subcommand)]
    Ct(CtCommand),

    /// List every command linked into ctl, with its placement and summary.
    Commands,

    /// Walk through the commands on a throwaway container, timing each step.
    ///
    /// Provisions a container, starts it, runs commands in it, freezes and thaws it,
    /// stops it and removes everything again, also when interrupted with Ctrl-C.
    Demo(DemoArgs),

    /// Measure what a command costs, side by side with the host's floor and LXC's tools.
    ///
    /// Provisions and starts a throwaway container, runs every case for a share of
    /// --seconds, prints count, median, p90 and p99 (µs) per case and the ratios of the
    /// medians, and removes the container again. See docs/performance.md.
    Bench(BenchArgs),

    /// Print a shell completion script.
    ///
    /// Example: `ctl completions bash > /etc/bash_completion.d/ctl`.
    Completions {
        /// The shell to complete for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// Options of `ctl bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Bound on the whole run, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    pub seconds: f64,
    /// Run only the cases matching NAME (`*` matches any run of characters), e.g.
    /// `--case async_1000_sleep1` or `--case 'exec_*'`; repeat or separate with commas.
    #[arg(long = "case", value_name = "NAME", value_delimiter = ',')]
    pub cases: Vec<String>,
    /// Calls in flight at once in the async case (`async_<N>_sleep1`).
    #[arg(long, value_name = "N", default_value_t = ctl_bench::DEFAULT_ASYNC_IN_FLIGHT)]
    pub async_in_flight: usize,
}

/// Options of `ctl demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Name of the throwaway container (default: demo-PID).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Keep the container at the end instead of removing it.
    #[arg(long)]
    pub keep: bool,
}

/// `ctl ct ...`.
#[derive(Debug, Subcommand)]
pub enum CtCommand {
    /// Provision a container: a system user, subordinate ids, cgroups and a busybox rootfs.
    ///
    /// Running it again on a half-created container (e.g. after an interruption)
    /// completes it; `ctl ct del` removes it.
    New {
        /// Container name: lower-case letters, digits and dashes, not starting with a dash, at most 31 characters.
        name: String,
        /// Networking: only a loopback device, or a veth pair on the host bridge.
        #[arg(long, value_enum, default_value_t = NetArg::None)]
        net: NetArg,
    },

    /// Remove a container with its user, cgroups and files (stops it first).
    ///
    /// Works on half-created containers too.
    #[command(alias = "rm")]
    Del {
        /// Container name.
        name: String,
    },

    /// List containers: name, user, state, init pid.
    #[command(alias = "list")]
    Ls,

    /// Start a container.
    Start {
        /// Container name.
        name: String,
    },

    /// Stop a container.
    Stop {
        /// Container name.
        name: String,
        /// stop: clean shutdown, kill when the timeout passes; shutdown: clean or fail;
        /// kill: at once.
        #[arg(long, value_enum, default_value_t = StopModeArg::Stop)]
        mode: StopModeArg,
        /// Seconds to wait for a clean shutdown.
        #[arg(long, value_name = "SECS", default_value_t = 300)]
        timeout: u64,
        /// Message written to the container's users before it goes down.
        #[arg(long, value_name = "TEXT")]
        message: Option<String>,
    },

    /// Freeze every process of a container.
    Freeze {
        /// Container name.
        name: String,
    },

    /// Thaw a frozen container.
    Unfreeze {
        /// Container name.
        name: String,
    },

    /// Reboot a container.
    Reboot {
        /// Container name.
        name: String,
    },

    /// Print a container's state: running, frozen, stopped, ...
    State {
        /// Container name.
        name: String,
    },

    /// Print a container's hostname.
    Hostname {
        /// Container name.
        name: String,
    },

    /// Print the host-side name of a container's veth interface.
    VethName {
        /// Container name.
        name: String,
        /// Interface index (0 is the first).
        index: u32,
    },

    /// Write a message to every user terminal inside a container.
    Wall {
        /// Container name.
        name: String,
        /// The message.
        text: String,
        /// Banner printed above the message (default: names host and time).
        #[arg(long, value_name = "TEXT", conflicts_with = "no_banner")]
        banner: Option<String>,
        /// No banner: the message only.
        #[arg(long)]
        no_banner: bool,
    },

    /// Move the mount SHARED_DIR/SRC (propagated into the container) onto DST inside it.
    ///
    /// Containers made by `ctl ct new` see STATE_DIR/shared/NAME of the host at
    /// /run/ctl-shared: mount something below the host side, move it into place with this
    /// command, then unmount the host side's copy.
    #[command(after_help = "Example:\n  \
        mkdir /var/lib/ctl/shared/web/data && mount -t tmpfs tmpfs /var/lib/ctl/shared/web/data\n  \
        ctl ct mount web /run/ctl-shared data /mnt/data\n  \
        umount /var/lib/ctl/shared/web/data")]
    Mount {
        /// Container name.
        name: String,
        /// The shared directory as the container sees it (/run/ctl-shared).
        shared_dir: String,
        /// Mount below SHARED_DIR to move.
        src: String,
        /// Mount point inside the container.
        dst: String,
    },

    /// Unmount DST inside a container (not mounted is fine).
    Unmount {
        /// Container name.
        name: String,
        /// Mount point inside the container.
        dst: String,
    },

    /// Run a command inside a container with ctl's stdin, stdout and stderr.
    ///
    /// ctl exits with the command's exit status; a non-zero status also prints
    /// `error: executed command failed` on stderr.
    #[command(
        override_usage = "ctl ct exec [OPTIONS] <NAME> -- <CMD> [ARG]...",
        after_help = "Example: ctl ct exec web -- sh -c 'echo hello; exit 3'",
        arg_required_else_help = true
    )]
    Exec {
        #[command(flatten)]
        opts: RunOpts,
        #[command(flatten)]
        env: ExecEnvOpts,
        /// Container name.
        name: String,
        /// The command and its arguments (after `--`).
        #[arg(
            required = true,
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "CMD"
        )]
        cmd: Vec<String>,
    },

    /// Run a script inside a container with ctl's stdin, stdout and stderr.
    ///
    /// ctl exits with the script's exit status; a non-zero status also prints
    /// `error: executed command failed` on stderr.
    Runscript {
        #[command(flatten)]
        opts: RunOpts,
        /// Container name.
        name: String,
        /// Script file on the host; `-` reads the script from stdin.
        script: PathBuf,
        /// Arguments of the script.
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "ARG"
        )]
        args: Vec<String>,
    },
}

/// How `exec` sets up the program inside (as `lxc-attach` and `incus exec` do).
#[derive(Clone, Debug, Default, Args)]
pub struct ExecEnvOpts {
    /// Set a variable in the program's environment (repeatable).
    #[arg(short = 'e', long = "env", value_name = "NAME=VALUE")]
    pub env: Vec<String>,
    /// Pass this variable of ctl's own environment on (repeatable).
    #[arg(long = "keep-env", value_name = "NAME")]
    pub keep: Vec<String>,
    /// Start from an empty environment (only what --env and --keep-env give).
    #[arg(long)]
    pub clear_env: bool,
    /// Working directory inside the container (default /).
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<String>,
    /// User id inside the container (default 0).
    #[arg(long, value_name = "UID")]
    pub user: Option<u32>,
    /// Group id inside the container (default 0).
    #[arg(long, value_name = "GID")]
    pub group: Option<u32>,
    /// Run the program on a terminal of the container's even when stdin is no terminal.
    #[arg(short = 't', long = "force-tty", conflicts_with = "no_tty")]
    pub force_tty: bool,
    /// Never a terminal session, even when stdin is a terminal.
    #[arg(short = 'T', long = "no-tty")]
    pub no_tty: bool,
}

/// Options shared by `exec` and `runscript`.
#[derive(Clone, Copy, Debug, Args)]
pub struct RunOpts {
    /// Start a stopped container just for the command (and stop it again).
    #[arg(short, long)]
    pub run: bool,
    /// With --run: set up the container's network too.
    #[arg(short, long)]
    pub network: bool,
}

/// `--net`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum NetArg {
    /// Only a loopback device.
    None,
    /// A veth pair whose host end joins the bridge ctlbr0.
    Veth,
}

impl From<NetArg> for ctl_provision::Net {
    fn from(n: NetArg) -> Self {
        match n {
            NetArg::None => ctl_provision::Net::Empty,
            NetArg::Veth => ctl_provision::Net::Veth,
        }
    }
}

/// `--mode` of `ct stop`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum StopModeArg {
    /// Clean shutdown; kill when the timeout passes.
    Stop,
    /// Clean shutdown or fail.
    Shutdown,
    /// Kill at once.
    Kill,
}

impl From<StopModeArg> for commands::StopMode {
    fn from(m: StopModeArg) -> Self {
        match m {
            StopModeArg::Stop => commands::StopMode::Stop,
            StopModeArg::Shutdown => commands::StopMode::Shutdown,
            StopModeArg::Kill => commands::StopMode::Kill,
        }
    }
}

/// Seconds as a positive number, fractions allowed (`0.5`).
fn parse_secs(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if !secs.is_finite() || secs <= 0.0 || secs > 1e9 {
        return Err(format!("{s:?} is not a positive number of seconds"));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn deadline_parses_fractions_and_refuses_nonsense() {
        assert_eq!(parse_secs("1.5").unwrap(), Duration::from_millis(1500));
        assert!(parse_secs("0").is_err());
        assert!(parse_secs("-1").is_err());
        assert!(parse_secs("x").is_err());
    }

    #[test]
    fn exec_takes_everything_after_the_name() {
        let cli =
            Cli::try_parse_from(["ctl", "ct", "exec", "-r", "web", "--", "sh", "-c", "exit 3"])
                .unwrap();
        match cli.command {
            Command::Ct(CtCommand::Exec {
                opts,
                env,
                name,
                cmd,
            }) => {
                assert!(opts.run && !opts.network);
                assert!(env.env.is_empty() && !env.clear_env && env.cwd.is_none());
                assert_eq!(name, "web");
                assert_eq!(cmd, ["sh", "-c", "exit 3"]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn exec_environment_options() {
        let cli = Cli::try_parse_from([
            "ctl",
            "ct",
            "exec",
            "-e",
            "A=1",
            "--env",
            "B=x=y",
            "--keep-env",
            "LANG",
            "--clear-env",
            "--cwd",
            "/tmp",
            "--user",
            "1000",
            "--group",
            "100",
            "web",
            "--",
            "env",
        ])
        .unwrap();
        match cli.command {
            Command::Ct(CtCommand::Exec { env, cmd, .. }) => {
                assert_eq!(env.env, ["A=1", "B=x=y"]);
                assert_eq!(env.keep, ["LANG"]);
                assert!(env.clear_env);
                assert_eq!(env.cwd.as_deref(), Some("/tmp"));
                assert_eq!((env.user, env.group), (Some(1000), Some(100)));
                assert_eq!(cmd, ["env"]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn global_options_go_before_or_after_the_subcommand() {
        let cli = Cli::try_parse_from(["ctl", "--deadline", "2", "ct", "state", "web", "--json"])
            .unwrap();
        assert!(cli.json);
        assert_eq!(cli.deadline, Some(Duration::from_secs(2)));
    }
}
