//! Errors keep their causes: [`Failure`], a few words with the error behind
//! them, for a layer that must not name the type below it (the domain and a
//! protocol's transport); and [`chain`], the one way a cause chain is logged.
//!
//! A leaf module: the protocols, the domain and the log sites all use it.

use std::error::Error;
use std::fmt;

/// The error behind a [`Failure`], whatever its type.
pub type Cause = Box<dyn Error + Send + Sync + 'static>;

/// What went wrong in a few words (what a page or a stored row shows), and
/// the error that made it go wrong, if one did (what the log shows, level by
/// level, through [`Error::source`]).
#[derive(Debug)]
pub struct Failure {
    text: String,
    source: Option<Cause>,
}

impl Failure {
    /// Words alone: nothing below them (a check of ours that failed).
    pub fn new(text: impl Into<String>) -> Self {
        Failure {
            text: text.into(),
            source: None,
        }
    }

    /// `text`, because of `source`.
    pub fn because(text: impl Into<String>, source: impl Into<Cause>) -> Self {
        Failure {
            text: text.into(),
            source: Some(source.into()),
        }
    }

    /// An error's own words, keeping the error.
    pub fn of(source: impl Error + Send + Sync + 'static) -> Self {
        Failure::because(source.to_string(), source)
    }

    pub fn text(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Error for Failure {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn Error + 'static))
    }
}

impl From<String> for Failure {
    fn from(text: String) -> Self {
        Failure::new(text)
    }
}

impl From<&str> for Failure {
    fn from(text: &str) -> Self {
        Failure::new(text)
    }
}

/// `e` and every error below it, as one log field: `error.message = %e, error.cause_chain = %chain(&e)`.
pub fn chain<'a>(e: &'a (dyn Error + 'static)) -> Chain<'a> {
    Chain(e)
}

/// An error and its sources, top down.
pub fn levels<'a>(e: &'a (dyn Error + 'static)) -> impl Iterator<Item = &'a (dyn Error + 'static)> {
    std::iter::successors(Some(e), |e: &&'a (dyn Error + 'static)| (*e).source())
}

/// Every level's text, joined by `: `. A level whose words the level printed
/// before it already ends with is not said twice: many messages quote their
/// cause ("could not reach the payment gateway: timed out" over "timed out").
pub struct Chain<'a>(&'a (dyn Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut last = String::new();
        for (i, level) in levels(self.0).enumerate() {
            let text = level.to_string();
            if i > 0 && (text.is_empty() || last.ends_with(&text)) {
                continue;
            }
            if i > 0 {
                f.write_str(": ")?;
            }
            f.write_str(&text)?;
            last = text;
        }
        Ok(())
    }
}

impl fmt::Debug for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    enum Top {
        #[error("the poll failed")]
        Poll(#[source] Failure),
    }

    #[test]
    fn the_chain_says_every_level_once() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused by peer");
        let e = Top::Poll(Failure::because(
            "connection failed",
            Failure::because("could not connect", io),
        ));
        assert_eq!(
            chain(&e).to_string(),
            "the poll failed: connection failed: could not connect: refused by peer"
        );
        assert_eq!(levels(&e).count(), 4);
        let bottom = levels(&e).last().unwrap();
        assert!(bottom.downcast_ref::<std::io::Error>().is_some());
    }

    #[test]
    fn a_quoted_cause_is_not_said_twice() {
        #[derive(Debug, thiserror::Error)]
        #[error("could not reach the payment gateway: {0}")]
        struct Reach(#[source] Failure);
        let e = Reach(Failure::because(
            "timed out",
            std::io::Error::new(std::io::ErrorKind::TimedOut, "operation timed out"),
        ));
        assert_eq!(
            chain(&e).to_string(),
            "could not reach the payment gateway: timed out: operation timed out"
        );
        assert_eq!(chain(&Failure::new("alone")).to_string(), "alone");
        assert_eq!(Failure::from("words").text(), "words");
    }
}
