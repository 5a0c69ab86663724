//! Which interactive flow `login` uses: the browser (authorization code to a loopback
//! listener) or the device flow. The flags decide when given; otherwise what this session can
//! show (a display, SSH, `$BROWSER`) and what the provider offers.

use crate::config::Environment;

/// What the user's flags asked for (`--device`, `--browser`, `--no-browser`, or none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asked {
    Device,
    Browser,
    /// The browser flow, with the URL printed for the user to open.
    NoBrowser,
    /// No flag: the session and the provider decide.
    Unsaid,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Browser,
    Device,
}

impl Flow {
    pub fn name(self) -> &'static str {
        match self {
            Flow::Browser => "browser",
            Flow::Device => "device",
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub struct FlowChoice {
    pub flow: Flow,
    pub why: &'static str,
    /// The browser flow was a guess: when no browser opens, the device flow takes over.
    pub may_fall_back: bool,
}

/// Picks the flow: the flags decide when given; otherwise the device flow when the
/// provider offers it and no browser can be shown here. `Err` is a usage error.
pub fn choose(
    asked: Asked,
    device_supported: bool,
    env: &dyn Environment,
) -> Result<FlowChoice, &'static str> {
    let browser = |why| FlowChoice {
        flow: Flow::Browser,
        why,
        may_fall_back: false,
    };
    if asked == Asked::Device {
        return if device_supported {
            Ok(FlowChoice {
                flow: Flow::Device,
                why: "--device",
                may_fall_back: false,
            })
        } else {
            Err(
                "the provider offers no device flow (no device_authorization_endpoint in its discovery document); use the browser flow",
            )
        };
    }
    if asked == Asked::Browser {
        return Ok(browser("--browser"));
    }
    if asked == Asked::NoBrowser {
        return Ok(browser("--no-browser prints the URL to open yourself"));
    }
    if !device_supported {
        return Ok(browser("the provider offers no device flow"));
    }
    if let Some(why) = no_browser_reason(env) {
        return Ok(FlowChoice {
            flow: Flow::Device,
            why,
            may_fall_back: false,
        });
    }
    Ok(FlowChoice {
        flow: Flow::Browser,
        why: if env.var("BROWSER").is_some() {
            "$BROWSER is set"
        } else {
            "a browser can be opened here (use --device to log in on another device)"
        },
        may_fall_back: true,
    })
}

/// Why no browser can be opened in this session, or `None` when one probably can. An
/// explicit `$BROWSER` is trusted (it may be a text browser or a script).
fn no_browser_reason(env: &dyn Environment) -> Option<&'static str> {
    if env.var("BROWSER").is_some() {
        return None;
    }
    let ssh = env.var("SSH_CONNECTION").is_some() || env.var("SSH_TTY").is_some();
    if cfg!(all(unix, not(target_os = "macos"))) {
        // X11 and Wayland browsers need one of these; an SSH session with X forwarding
        // has DISPLAY set and can show a browser.
        let display = env.var("DISPLAY").is_some() || env.var("WAYLAND_DISPLAY").is_some();
        return match (display, ssh) {
            (true, _) => None,
            (false, true) => Some("SSH session without a display, and no $BROWSER"),
            (false, false) => Some("no $DISPLAY or $WAYLAND_DISPLAY, and no $BROWSER"),
        };
    }
    // Elsewhere a desktop is the rule, but a browser opened from SSH shows up on the
    // machine's screen, not the user's.
    ssh.then_some("SSH session, and no $BROWSER")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::FakeEnv;

    fn env(vars: &[(&str, &str)]) -> FakeEnv {
        FakeEnv::with(vars)
    }

    fn args() -> Asked {
        Asked::Unsaid
    }

    fn flow(asked: &Asked, device_supported: bool, env: &FakeEnv) -> Flow {
        choose(*asked, device_supported, env).unwrap().flow
    }

    #[test]
    fn flags_decide() {
        let headless = env(&[]);
        let desktop = env(&[("DISPLAY", ":0")]);
        assert_eq!(flow(&Asked::Device, true, &desktop), Flow::Device);
        assert!(choose(Asked::Device, false, &desktop).is_err());
        assert_eq!(flow(&Asked::Browser, true, &headless), Flow::Browser);
        assert_eq!(flow(&Asked::NoBrowser, true, &headless), Flow::Browser);
    }

    #[test]
    fn browser_env_counts_as_a_browser() {
        let choice = choose(args(), true, &env(&[("BROWSER", "w3m")])).unwrap();
        assert_eq!(choice.flow, Flow::Browser);
        assert!(choice.may_fall_back);
        assert_eq!(
            flow(
                &args(),
                true,
                &env(&[("BROWSER", "w3m"), ("SSH_CONNECTION", "1 2 3 4")])
            ),
            Flow::Browser
        );
    }

    #[test]
    fn without_the_device_flow_the_browser_is_used() {
        assert_eq!(flow(&args(), false, &env(&[])), Flow::Browser);
    }

    #[cfg(all(unix, not(target_os = "macos")))]
    #[test]
    fn display_decides_on_linux() {
        assert_eq!(flow(&args(), true, &env(&[])), Flow::Device);
        assert_eq!(
            flow(&args(), true, &env(&[("DISPLAY", ":0")])),
            Flow::Browser
        );
        assert_eq!(
            flow(&args(), true, &env(&[("WAYLAND_DISPLAY", "wayland-0")])),
            Flow::Browser
        );
        assert_eq!(
            flow(&args(), true, &env(&[("SSH_TTY", "/dev/pts/1")])),
            Flow::Device
        );
        // X forwarding.
        assert_eq!(
            flow(
                &args(),
                true,
                &env(&[("SSH_CONNECTION", "1 2 3 4"), ("DISPLAY", "localhost:10.0")])
            ),
            Flow::Browser
        );
    }
}
