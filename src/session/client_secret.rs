//! Reading `client_secret_file`: the one place that knows what the file must hold.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::Result;

use crate::exit::ConfigError;
use crate::secret::Secret;

/// How much the caller depends on the secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretUse {
    /// The grant cannot be made without it (`service-account`): the file must exist, be
    /// readable and hold a non-empty secret; a file others can read is warned about.
    Required,
    /// Only nice to have (`logout` revoking a service account's token): a file that cannot be
    /// read gives no secret, and the request goes without one.
    IfReadable,
}

/// The client secret in `path`: the file's text without its final line break.
pub fn read(path: &Path, usage: SecretUse) -> Result<Option<Secret>> {
    match usage {
        SecretUse::Required => read_required(path).map(Some),
        SecretUse::IfReadable => Ok(std::fs::read_to_string(path)
            .ok()
            .map(|text| Secret::new(without_line_break(&text)))),
    }
}

fn without_line_break(text: &str) -> &str {
    text.trim_end_matches(['\n', '\r'])
}

fn read_required(path: &Path) -> Result<Secret> {
    let bytes = std::fs::read(path).map_err(|e| {
        ConfigError::invalid(format!(
            "cannot read client_secret_file {}: {e}",
            path.display()
        ))
    })?;
    let text = String::from_utf8(bytes).map_err(|_| {
        ConfigError::invalid(format!(
            "client_secret_file {} is not UTF-8",
            path.display()
        ))
    })?;
    let secret = without_line_break(&text);
    if secret.trim().is_empty() {
        return Err(ConfigError::invalid(format!(
            "client_secret_file {} is empty",
            path.display()
        ))
        .into());
    }
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        let warning = format!(
            "client_secret_file {} is readable by group or others (mode {:o}); chmod 600 it",
            path.display(),
            meta.permissions().mode() & 0o777
        );
        crate::exit::warn(&warning);
    }
    Ok(Secret::new(secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn required_is_strict_and_if_readable_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        let missing = read(&path, SecretUse::Required).unwrap_err();
        assert_eq!(crate::exit::code_for(&missing), crate::exit::USAGE);
        assert_eq!(read(&path, SecretUse::IfReadable).unwrap(), None);

        std::fs::write(&path, "s3cret\r\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        for usage in [SecretUse::Required, SecretUse::IfReadable] {
            assert_eq!(read(&path, usage).unwrap().unwrap().expose(), "s3cret");
        }
        std::fs::write(&path, "\n").unwrap();
        assert!(read(&path, SecretUse::Required).is_err());
    }
}
