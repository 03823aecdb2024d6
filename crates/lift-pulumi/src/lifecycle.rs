//! A workspace's stacks: handles on them, creating (`stack init`),
//! selecting (checking that one exists) and removing (`stack rm`) them.

use crate::audit::Auditor;
use crate::error::{Error, Result};
use crate::names::StackName;
use crate::stack::Stack;
use crate::workspace::Workspace;

impl Workspace {
    /// A handle on `name`, without checking that it exists.
    pub fn stack(&self, name: StackName) -> Stack {
        Stack::new(self.clone(), name)
    }

    /// Creates `name` (without selecting it globally); fails with
    /// [`Error::StackAlreadyExists`] when it exists. The stack's secrets use
    /// the backend's default provider (a passphrase on DIY backends); see
    /// [`Workspace::create_stack_with`] for another.
    pub async fn create_stack(&self, name: StackName) -> Result<Stack> {
        self.create_stack_with(name, &StackInitOptions::default())
            .await
    }

    /// Creates `name` with options, such as its secrets provider.
    pub async fn create_stack_with(
        &self,
        name: StackName,
        options: &StackInitOptions,
    ) -> Result<Stack> {
        let stack = self.stack(name);
        let mut words = vec!["stack", "init", "--no-select"];
        if let Some(provider) = &options.secrets_provider {
            words.push("--secrets-provider");
            words.push(provider);
        }
        let audit = Auditor::new(self.session(), stack.name(), "stack.init").detail(
            "secrets_provider",
            options
                .secrets_provider
                .as_deref()
                .map(redact_provider_url)
                .unwrap_or_else(|| "default".to_owned()),
        );
        audit.run(stack.run_ok(&words, None)).await?;
        Ok(stack)
    }

    /// A handle on `name`, checking that it exists ([`Error::StackNotFound`] otherwise).
    ///
    /// The name is resolved by pulumi itself, so `dev`, `org/dev` and
    /// `org/project/dev` mean what they mean to the CLI (on DIY backends the
    /// organization is always `organization`).
    pub async fn select_stack(&self, name: StackName) -> Result<Stack> {
        let stack = self.stack(name);
        stack.history(1).await?;
        Ok(stack)
    }

    /// Selects `name`, creating it when it does not exist.
    pub async fn select_or_create_stack(&self, name: StackName) -> Result<Stack> {
        match self.select_stack(name.clone()).await {
            Ok(stack) => Ok(stack),
            Err(Error::StackNotFound { .. }) => match self.create_stack(name.clone()).await {
                Err(Error::StackAlreadyExists { .. }) => Ok(self.stack(name)),
                other => other,
            },
            Err(err) => Err(err),
        }
    }

    /// Deletes a stack with its configuration and history. `force` deletes it even if it still has resources.
    pub async fn remove_stack(&self, name: &StackName, force: bool) -> Result<()> {
        let mut words = vec!["stack", "rm", "--yes"];
        if force {
            words.push("--force");
        }
        let session = self.session();
        let audit = Auditor::new(session, name, "stack.rm").detail("force", force);
        audit
            .run(session.run_ok(&words, Some(name), None))
            .await
            .map(|_| ())
    }
}

/// Options of [`Workspace::create_stack_with`].
///
/// ```
/// use lift_pulumi::StackInitOptions;
///
/// let options = StackInitOptions::default().secrets_provider("awskms://alias/pulumi?region=eu-west-1");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
#[must_use]
pub struct StackInitOptions {
    secrets_provider: Option<String>,
}

impl StackInitOptions {
    /// The stack's secrets provider (`--secrets-provider`): `passphrase`,
    /// `awskms://...`, `azurekeyvault://...`, `gcpkms://...` or `hashivault://...`.
    pub fn secrets_provider(mut self, provider: impl Into<String>) -> Self {
        self.secrets_provider = Some(provider.into());
        self
    }
}

/// A secrets provider URL without its query (which may carry credentials), for audit records.
fn redact_provider_url(url: &str) -> String {
    url.split(['?', '#']).next().unwrap_or(url).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_urls_lose_their_query_in_audit_records() {
        assert_eq!(
            redact_provider_url("awskms://alias/x?region=eu-west-1&secret=k"),
            "awskms://alias/x"
        );
        assert_eq!(redact_provider_url("passphrase"), "passphrase");
    }
}
