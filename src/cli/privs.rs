//! Dropping root after the capture is open (`-Z USER`), the way tcpdump does: supplementary groups, group,
//! then user — in that order, because after `setuid` the others are no longer allowed.

use super::CliError;
use nix::unistd::{Gid, User, setgid, setgroups, setuid};

pub fn drop_to(name: &str) -> Result<(), CliError> {
    let user = User::from_name(name)
        .map_err(|e| CliError::Usage(format!("-Z {name}: cannot look up the user: {e}")))?
        .ok_or_else(|| CliError::Usage(format!("-Z {name}: no such user")))?;
    let gid: Gid = user.gid;
    setgroups(&[gid]).map_err(|e| CliError::Usage(format!("-Z {name}: cannot drop supplementary groups: {e}")))?;
    setgid(gid).map_err(|e| CliError::Usage(format!("-Z {name}: cannot change group: {e}")))?;
    setuid(user.uid).map_err(|e| CliError::Usage(format!("-Z {name}: cannot change user: {e}")))?;
    if nix::unistd::geteuid().is_root() && !user.uid.is_root() {
        return Err(CliError::Usage(format!("-Z {name}: still root after setuid")));
    }
    Ok(())
}
