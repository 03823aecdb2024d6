//! Stack names as given on the command line: `dev`, `org/dev` or `org/project/dev`, checked
//! like pulumi checks them.

use crate::error::CliError;
use crate::project::Project;
use crate::store::{self, Backend};

/// Refuses a qualified stack name pulumi would refuse: on a diy backend the organization must be
/// `organization`, and a project part must name this project.
pub(crate) fn check_qualified(
    raw: &str,
    project: &Project,
    backend: &Backend,
) -> Result<(), CliError> {
    let parts: Vec<&str> = raw.split('/').collect();
    if parts.len() > 1 && backend.kind == store::BackendKind::Diy && parts[0] != "organization" {
        return Err(CliError::new("organization name must be 'organization'"));
    }
    if parts.len() == 3 && parts[1] != project.name {
        return Err(CliError::new(format!(
            "could not create stack: provided project name \"{}\" doesn't match Pulumi.yaml",
            parts[1]
        )));
    }
    Ok(())
}

/// Accepts `dev`, `org/dev` and `org/project/dev`, and validates the name like Pulumi.
pub(crate) fn normalize_stack_name(raw: &str) -> Result<String, CliError> {
    let name = raw.rsplit('/').next().unwrap_or(raw);
    if raw.split('/').count() > 3 {
        return Err(CliError::new(format!(
            "could not parse stack reference '{raw}'"
        )));
    }
    if name.is_empty()
        || name.len() > 100
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(CliError::new(
            "a stack name may only contain alphanumeric, hyphens, underscores, or periods",
        ));
    }
    Ok(name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stack_names_are_normalized_and_validated() {
        assert_eq!(normalize_stack_name("dev").unwrap(), "dev");
        assert_eq!(normalize_stack_name("org/proj/dev").unwrap(), "dev");
        assert!(normalize_stack_name("bad name").is_err());
        assert!(normalize_stack_name("a/b/c/d").is_err());
    }
}
