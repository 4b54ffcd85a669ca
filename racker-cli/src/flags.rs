//! One name, one default and one syntax per concept across every command
//! (docs/output.md "Flags"): durations through racker-inventory's
//! [`parse_duration`](racker_inventory::parse_duration), IPMI settings named
//! `--ipmi-*`, and an environment twin `RACKER_<FLAG>` for every option.

use std::time::Duration;

/// Default of `--ipmi-timeout` everywhere (`ipmi`, `status`, `bootstrap`).
pub(crate) const IPMI_TIMEOUT: &str = "5s";

/// `--ipmi-timeout`: a duration, `0 < d <= 1h`.
pub(crate) fn ipmi_timeout(text: &str) -> Result<Duration, String> {
    let d = racker_inventory::parse_duration(text).map_err(|e| e.to_string())?;
    if d.is_zero() || d > Duration::from_secs(3600) {
        return Err(format!("{text}: expected more than 0 and at most 1h"));
    }
    Ok(d)
}

/// Options that deliberately have no environment twin: switches that
/// overwrite or skip a confirmation must be typed for each command, and
/// the log verbosity has `RUST_LOG`.
const NO_ENV_TWIN: [&str; 5] = ["force", "yes", "verbose", "quiet", "help"];

/// Give every named option of `cmd` and its subcommands that has no
/// environment variable yet the twin `RACKER_<LONG NAME>` (`--ipmi-port`
/// ↔ `RACKER_IPMI_PORT`), so the same variable sets the same concept in
/// every command. Positional arguments and hidden aliases are left alone.
pub(crate) fn with_env_twins(cmd: clap::Command) -> clap::Command {
    let cmd = cmd.mut_args(|arg| {
        let Some(long) = arg.get_long() else {
            return arg;
        };
        if arg.get_env().is_some()
            || arg.is_hide_set()
            || NO_ENV_TWIN.contains(&arg.get_id().as_str())
            || long == "version"
        {
            return arg;
        }
        let name = format!("RACKER_{}", long.replace('-', "_").to_uppercase());
        arg.env(name)
    });
    cmd.mut_subcommands(with_env_twins)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    #[test]
    fn ipmi_timeouts_are_durations_within_bounds() {
        assert_eq!(ipmi_timeout("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(ipmi_timeout("0.2").unwrap(), Duration::from_millis(200));
        assert_eq!(ipmi_timeout("1h").unwrap(), Duration::from_secs(3600));
        for bad in ["0", "0s", "61m", "soon", "-1"] {
            assert!(ipmi_timeout(bad).is_err(), "{bad}");
        }
        assert_eq!(ipmi_timeout(IPMI_TIMEOUT).unwrap(), Duration::from_secs(5));
    }

    /// Every option of every command has its twin, and one variable never
    /// names two different long options.
    #[test]
    fn every_option_has_an_environment_twin() {
        fn walk(cmd: &clap::Command, path: &str, seen: &mut Vec<(String, String, String)>) {
            for arg in cmd.get_arguments() {
                let Some(long) = arg.get_long() else { continue };
                if arg.is_hide_set()
                    || NO_ENV_TWIN.contains(&arg.get_id().as_str())
                    || long == "version"
                {
                    continue;
                }
                let env = arg
                    .get_env()
                    .unwrap_or_else(|| panic!("{path} --{long} has no environment twin"))
                    .to_string_lossy()
                    .into_owned();
                assert!(env.starts_with("RACKER_"), "{path} --{long}: {env}");
                seen.push((env, long.to_owned(), path.to_owned()));
            }
            for sub in cmd.get_subcommands() {
                walk(sub, &format!("{path} {}", sub.get_name()), seen);
            }
        }
        let cmd = with_env_twins(crate::Cli::command());
        let mut seen = Vec::new();
        walk(&cmd, "racker", &mut seen);
        assert!(seen.len() > 50, "{}", seen.len());
        for (env, long, path) in &seen {
            for (env2, long2, path2) in &seen {
                assert!(
                    env != env2 || long == long2,
                    "{env} is both {path} --{long} and {path2} --{long2}"
                );
            }
        }
    }
}
