//! The rules for operator accounts, shared by the CLI and the users API.

/// Shortest accepted password, characters.
pub const MIN_PASSWORD_LEN: usize = 8;
/// Longest accepted password, bytes (argon2 input stays bounded).
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Checks a new user name: 1 to 64 characters without whitespace or control characters.
pub fn check_username(name: &str) -> Result<(), String> {
    if name.is_empty()
        || name.chars().count() > 64
        || name.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err("user names are 1 to 64 characters without spaces".into());
    }
    Ok(())
}

/// Checks a new password's length.
pub fn check_password(password: &str) -> Result<(), String> {
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(format!(
            "passwords need at least {MIN_PASSWORD_LEN} characters"
        ));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(format!("passwords are at most {MAX_PASSWORD_BYTES} bytes"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_passwords_are_checked() {
        assert!(check_username("alice").is_ok());
        assert!(check_username("").is_err());
        assert!(check_username("a b").is_err());
        assert!(check_username("a\u{7}").is_err());
        assert!(check_username(&"x".repeat(65)).is_err());
        assert!(check_password("12345678").is_ok());
        assert!(check_password("1234567").is_err());
        assert!(check_password(&"x".repeat(2000)).is_err());
    }
}
