//! Who is calling, as the kernel says (`SO_PEERCRED`), and whether they may use the bridge.
//!
//! Names come from the system's user database (`getpwuid_r`, `getgrouplist`, `getgrnam_r`,
//! so LDAP and systemd-homed users count too). Group membership is the user's as the
//! database lists it, plus the primary group the calling process runs with.

use std::ffi::{CStr, CString};

/// The calling process's credentials, from the socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub uid: u32,
    pub gid: u32,
    /// The user's name, when the database knows the uid.
    pub name: Option<String>,
    /// The user's primary group in the database (the base of its group list).
    user_gid: Option<u32>,
}

impl Caller {
    pub fn new(uid: u32, gid: u32) -> Caller {
        let (name, user_gid) = match user_entry(uid) {
            Some((name, gid)) => (Some(name), Some(gid)),
            None => (None, None),
        };
        Caller {
            uid,
            gid,
            name,
            user_gid,
        }
    }

    pub fn is_root(&self) -> bool {
        self.uid == 0
    }

    /// `uid=1000 (alice)`, for the log and messages.
    pub fn describe(&self) -> String {
        match &self.name {
            Some(n) => format!("uid={} ({})", self.uid, crate::untrusted::clean(n)),
            None => format!("uid={}", self.uid),
        }
    }
}

/// Who may hand tokens over: root always; users named in `users`; members of `groups`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Access {
    pub users: Vec<String>,
    pub groups: Vec<String>,
}

impl Access {
    pub fn allows(&self, caller: &Caller) -> bool {
        if caller.is_root() {
            return true;
        }
        if let Some(name) = &caller.name
            && self.users.iter().any(|u| u == name)
        {
            return true;
        }
        if self.groups.is_empty() {
            return false;
        }
        let member_of = groups_of(caller);
        self.groups
            .iter()
            .filter_map(|g| group_id(g))
            .any(|gid| member_of.contains(&gid))
    }
}

/// The caller's primary gid and every group the database gives its user.
fn groups_of(caller: &Caller) -> Vec<u32> {
    let mut gids = vec![caller.gid];
    let Some(name) = caller.name.as_deref().and_then(|n| CString::new(n).ok()) else {
        return gids;
    };
    let base = caller.user_gid.unwrap_or(caller.gid);
    let mut count: libc::c_int = 64;
    loop {
        let mut list: Vec<libc::gid_t> = vec![0; count as usize];
        let mut n = count;
        // SAFETY: `list` has room for `n` gids; getgrouplist writes at most that many and
        // sets `n` to how many there are.
        let rc = unsafe { libc::getgrouplist(name.as_ptr(), base, list.as_mut_ptr(), &mut n) };
        if rc >= 0 {
            list.truncate(n.max(0) as usize);
            gids.extend(list);
            return gids;
        }
        if n <= count || n > 65_536 {
            return gids;
        }
        count = n;
    }
}

/// Runs a reentrant `get*_r` lookup with a growing buffer; `Some` when an entry was found.
fn lookup<T>(
    mut call: impl FnMut(&mut Vec<libc::c_char>) -> (libc::c_int, Option<T>),
) -> Option<T> {
    let mut buf: Vec<libc::c_char> = vec![0; 1024];
    loop {
        let (rc, found) = call(&mut buf);
        if rc == libc::ERANGE && buf.len() < 1 << 20 {
            buf.resize(buf.len() * 4, 0);
            continue;
        }
        return found;
    }
}

/// The user's name and primary gid.
fn user_entry(uid: u32) -> Option<(String, u32)> {
    lookup(|buf| {
        // SAFETY: a zeroed passwd is a valid out-parameter; getpwuid_r fills it with pointers
        // into `buf`, which outlives the reads below.
        let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let rc =
            unsafe { libc::getpwuid_r(uid, &mut pw, buf.as_mut_ptr(), buf.len(), &mut result) };
        if rc != 0 || result.is_null() || pw.pw_name.is_null() {
            return (rc, None);
        }
        // SAFETY: pw_name points to a NUL-terminated string in `buf`.
        let name = unsafe { CStr::from_ptr(pw.pw_name) };
        (rc, name.to_str().ok().map(|n| (n.to_string(), pw.pw_gid)))
    })
}

fn group_id(name: &str) -> Option<u32> {
    let cname = CString::new(name).ok()?;
    lookup(|buf| {
        // SAFETY: a zeroed group is a valid out-parameter; only gr_gid is read.
        let mut gr: libc::group = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::group = std::ptr::null_mut();
        let rc = unsafe {
            libc::getgrnam_r(
                cname.as_ptr(),
                &mut gr,
                buf.as_mut_ptr(),
                buf.len(),
                &mut result,
            )
        };
        (rc, (rc == 0 && !result.is_null()).then_some(gr.gr_gid))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_always_allowed_and_nobody_only_when_named() {
        let root = Caller::new(0, 0);
        assert_eq!(root.name.as_deref(), Some("root"));
        assert!(Access::default().allows(&root));
        let nobody = Caller::new(65534, 65534);
        assert_eq!(nobody.name.as_deref(), Some("nobody"));
        assert!(!Access::default().allows(&nobody));
        let by_name = Access {
            users: vec!["nobody".into()],
            groups: vec![],
        };
        assert!(by_name.allows(&nobody));
        // Debian's nogroup is 65534: the caller's primary gid counts.
        let by_group = Access {
            users: vec![],
            groups: vec!["nogroup".into(), "no-such-group-here".into()],
        };
        assert!(by_group.allows(&nobody));
        let other_group = Access {
            users: vec!["root".into()],
            groups: vec!["root".into()],
        };
        assert!(!other_group.allows(&Caller::new(65534, 65534)));
    }

    #[test]
    fn unknown_uids_have_no_name() {
        let ghost = Caller::new(4_000_000_000, 4_000_000_000);
        assert_eq!(ghost.name, None);
        assert_eq!(ghost.describe(), "uid=4000000000");
        assert!(
            !Access {
                users: vec!["nobody".into()],
                groups: vec!["nogroup".into()]
            }
            .allows(&ghost)
        );
    }
}
