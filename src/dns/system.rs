//! The resolver the system names (`GREY_LISTING_RESOLVER`, `resolver =` in the configuration
//! file, `/etc/resolv.conf`), set up on first use: a message that needs no DNS never reads
//! resolv.conf, and one that does while no resolver can be found is decided as if every list
//! had not answered (the mail path never fails because of DNS).

use std::cell::OnceCell;

use thiserror::Error;

use super::{DnsFacts, DnsSource, LocateError, Question, Resolver, ResolverError, locate_system};

/// Why the system's resolver cannot be used; reads as the error underneath.
#[derive(Debug, Error)]
pub enum NoResolver {
    /// Nothing names a resolver, or what names it is no address.
    #[error(transparent)]
    Locate(#[from] LocateError),
    /// The DNS client cannot be set up for the resolver.
    #[error(transparent)]
    Client(#[from] ResolverError),
}

/// The system's resolver as a blocking client, or why there is none.
pub(crate) fn system_resolver(
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Resolver, NoResolver> {
    let located = locate_system(env)?;
    Ok(Resolver::new(located.addr)?)
}

/// A [`DnsSource`] over the system's resolver, located when first asked.
pub struct SystemResolver<'a> {
    env: &'a dyn Fn(&str) -> Option<String>,
    resolver: OnceCell<Result<Resolver, NoResolver>>,
}

impl std::fmt::Debug for SystemResolver<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SystemResolver")
            .field("resolver", &self.resolver)
            .finish_non_exhaustive()
    }
}

impl<'a> SystemResolver<'a> {
    /// Finds the resolver through `env` (the process environment, or a test's) when first asked.
    pub fn new(env: &'a dyn Fn(&str) -> Option<String>) -> SystemResolver<'a> {
        SystemResolver {
            env,
            resolver: OnceCell::new(),
        }
    }

    fn resolver(&self) -> &Result<Resolver, NoResolver> {
        self.resolver.get_or_init(|| system_resolver(self.env))
    }

    /// Why there is no resolver, once one was needed and could not be set up.
    pub fn error(&self) -> Option<&NoResolver> {
        match self.resolver.get() {
            Some(Err(why)) => Some(why),
            _ => None,
        }
    }
}

impl DnsSource for SystemResolver<'_> {
    fn ask(&self, question: &Question<'_>) -> DnsFacts {
        match self.resolver() {
            Ok(resolver) => resolver.ask(question),
            Err(_) => DnsFacts::unanswered(question.zones, question.confirm.is_some()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::{Forward, ZoneResult};

    #[test]
    fn without_a_resolver_every_question_is_unanswered_and_the_reason_kept() {
        let env = |key: &str| match key {
            "GREY_LISTING_RESOLVER" => Some("not-an-address".to_string()),
            _ => None,
        };
        let system = SystemResolver::new(&env);
        assert!(
            system.error().is_none(),
            "nothing is located before the first question"
        );
        let zones = vec!["list.example".to_string(), "LIST.example".to_string()];
        let facts = system.ask(&Question {
            ip: "192.0.2.1".parse().unwrap(),
            zones: &zones,
            confirm: Some("mail.example"),
        });
        assert_eq!(facts.zones.len(), 1);
        assert_eq!(facts.zone("list.example"), Some(ZoneResult::NoAnswer));
        assert_eq!(facts.forward, Some(Forward::NoAnswer));
        assert!(
            system
                .error()
                .is_some_and(|why| why.to_string().contains("not-an-address"))
        );
        assert!(
            matches!(
                system.error(),
                Some(NoResolver::Locate(LocateError::BadValue { .. }))
            ),
            "the locate error is kept: {:?}",
            system.error()
        );
    }

    // Why there is no resolver reads exactly as the locate error: the filter and `--explain`
    // write it into their lines as it is.
    #[test]
    fn the_reason_reads_as_the_locate_error() {
        let env = |key: &str| match key {
            "GREY_LISTING_RESOLVER" => Some("not-an-address".to_string()),
            _ => None,
        };
        let expected = locate_system(&env).expect_err("no address").to_string();
        let system = SystemResolver::new(&env);
        let zones = vec!["list.example".to_string()];
        let _ = system.ask(&Question {
            ip: "192.0.2.1".parse().unwrap(),
            zones: &zones,
            confirm: None,
        });
        assert_eq!(system.error().map(ToString::to_string), Some(expected));
    }
}
