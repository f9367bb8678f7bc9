//! What goes wrong with definitions: every refusal is a list of [`Problem`]s, each naming the
//! JSON path, what was found there and what is allowed, because the spec wants a refused
//! definition to list *every* problem at once rather than stop at the first.

use std::fmt;

use serde::Serialize;

/// One reason a definition is refused, located by its JSON path.
///
/// Kept as plain strings (not an enum of causes) because it is meant for people and for the HTTP
/// API's `details` array: the caller shows or serialises it, it does not branch on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// Where in the document, as `condition.all[2].op`; empty for the document itself. When
    /// several definitions are checked together, prefixed with the definition's index in the
    /// set: `[1].condition.any[0].segment` (see [`crate::validate_set`]).
    pub path: String,
    /// What was found there: compact JSON (shortened when long), or `nothing` when missing.
    pub found: String,
    /// What is allowed there, e.g. the known field names or the operators of a column's type.
    pub allowed: String,
    /// One sentence saying what is wrong, for people.
    pub message: String,
}

impl Problem {
    /// Builds a problem; the `Into<String>` arguments keep call sites short.
    pub fn new(
        path: impl Into<String>,
        found: impl Into<String>,
        allowed: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Problem {
            path: path.into(),
            found: found.into(),
            allowed: allowed.into(),
            message: message.into(),
        }
    }

    /// The same problem with its path placed under `prefix` (e.g. `[1]`), so that problems of
    /// several definitions checked at once say which definition they belong to.
    pub fn under(mut self, prefix: &str) -> Self {
        self.path = join(prefix, &self.path);
        self
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = if self.path.is_empty() {
            "(definition)"
        } else {
            &self.path
        };
        write!(
            f,
            "{path}: {} (found {}; allowed: {})",
            self.message, self.found, self.allowed
        )
    }
}

/// Every problem found in one check, in document order; never empty when returned as an error.
///
/// A newtype rather than a bare `Vec` so that it can be an error (`std::error::Error`,
/// `Display` listing each problem on its own line) and serialise as a plain JSON array.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Problems(Vec<Problem>);

impl Problems {
    /// An empty list, to be filled while walking a document.
    pub fn new() -> Self {
        Problems(Vec::new())
    }

    /// Adds one problem.
    pub fn push(&mut self, problem: Problem) {
        self.0.push(problem);
    }

    /// Whether nothing was found wrong.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many problems there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The problems, in the order they were found.
    pub fn iter(&self) -> std::slice::Iter<'_, Problem> {
        self.0.iter()
    }

    /// The problems as a slice, e.g. for matching in tests or mapping to HTTP `details`.
    pub fn as_slice(&self) -> &[Problem] {
        &self.0
    }

    /// The problems, owned.
    pub fn into_vec(self) -> Vec<Problem> {
        self.0
    }

    /// Every problem with its path placed under `prefix` (see [`Problem::under`]).
    pub fn under(self, prefix: &str) -> Self {
        Problems(self.0.into_iter().map(|p| p.under(prefix)).collect())
    }

    /// `Ok(value)` when nothing was found wrong, else `Err(self)`: the usual end of a check.
    pub fn into_result<T>(self, value: T) -> Result<T, Problems> {
        if self.is_empty() {
            Ok(value)
        } else {
            Err(self)
        }
    }
}

impl From<Vec<Problem>> for Problems {
    fn from(problems: Vec<Problem>) -> Self {
        Problems(problems)
    }
}

impl Extend<Problem> for Problems {
    fn extend<I: IntoIterator<Item = Problem>>(&mut self, iter: I) {
        self.0.extend(iter);
    }
}

impl IntoIterator for Problems {
    type Item = Problem;
    type IntoIter = std::vec::IntoIter<Problem>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a Problems {
    type Item = &'a Problem;
    type IntoIter = std::slice::Iter<'a, Problem>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        write!(f, "{n} problem{}", if n == 1 { "" } else { "s" })?;
        for p in &self.0 {
            write!(f, "\n  {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}

/// The crate's one error type, so that callers (CLI, HTTP) map planner failures to exit codes
/// and error codes in one place: [`Error::blame`] says whose fault it is — a definition that
/// cannot plan is the caller's, a store or engine failure while running is the service's — and
/// the store's and DataFusion's errors are kept as sources, with what was being done.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// One or more definitions are refused; every problem is listed.
    #[error("the segment definition is refused: {0}")]
    Refused(#[from] Problems),
    /// A piece of text (an instant, a duration, a number, a cron expression) is not written the
    /// way the language allows. Returned by the small parsers of [`crate::time`] and
    /// [`crate::Decimal`], which have no JSON path to attach; [`crate::parse_definition`] turns
    /// it into a [`Problem`] at the right path.
    #[error("`{found}` is refused: {reason}; allowed: {allowed}")]
    Syntax {
        /// The text as given.
        found: String,
        /// What the language allows there.
        allowed: String,
        /// Why this text is not that.
        reason: String,
    },
    /// A valid definition could not be turned into a plan (a `sql` condition that does not
    /// plan, a column whose type changed since validation). Names the segment and the cause.
    /// The caller's: the definition has to change.
    #[error("cannot plan segment {segment}: {message}")]
    Compile {
        /// The segment being planned (empty when the whole refresh is concerned).
        segment: String,
        /// What went wrong.
        message: String,
    },
    /// No segment with this id is stored.
    #[error("no segment {0} is stored")]
    NotFound(String),
    /// The segment cannot be removed while others refer to it.
    #[error("segment {segment} is referred to by {}", referenced_by.join(", "))]
    InUse {
        /// The segment that was to be removed.
        segment: String,
        /// The stored segments that refer to it.
        referenced_by: Vec<String>,
    },
    /// Reading or writing the store failed (or a limit stopped the work, or another writer's
    /// commit made this one meaningless: see [`kitle_data::Error::blame`]) while `context` was
    /// being done.
    #[cfg(feature = "engine")]
    #[error("{}{source}", prefix(context))]
    Store {
        /// What was being done (`reading the manifest`, `evaluating vip`); may be empty.
        context: String,
        /// What failed.
        #[source]
        source: kitle_data::Error,
    },
    /// DataFusion failed while running a plan, while `context` was being done.
    #[cfg(feature = "engine")]
    #[error("{}{source}", prefix(context))]
    Engine {
        /// What was being done; may be empty.
        context: String,
        /// What failed.
        #[source]
        source: datafusion::error::DataFusionError,
    },
}

#[cfg(feature = "engine")]
fn prefix(context: &str) -> String {
    if context.is_empty() {
        String::new()
    } else {
        format!("{context}: ")
    }
}

#[cfg(feature = "engine")]
impl From<datafusion::error::DataFusionError> for Error {
    fn from(source: datafusion::error::DataFusionError) -> Self {
        Error::Engine {
            context: String::new(),
            source,
        }
    }
}

#[cfg(feature = "engine")]
impl From<kitle_data::Error> for Error {
    fn from(source: kitle_data::Error) -> Self {
        Error::Store {
            context: String::new(),
            source,
        }
    }
}

/// Adds what was being done to the store's and DataFusion's errors on the way up.
#[cfg(feature = "engine")]
pub trait Context<T> {
    /// The error of `self`, if any, with `context` (`evaluating vip, lapsed-90d`).
    fn context(self, context: impl FnOnce() -> String) -> Result<T, Error>;
}

#[cfg(feature = "engine")]
impl<T, E: Into<Error>> Context<T> for Result<T, E> {
    fn context(self, context: impl FnOnce() -> String) -> Result<T, Error> {
        self.map_err(|e| match e.into() {
            Error::Store { context: c, source } if c.is_empty() => Error::Store {
                context: context(),
                source,
            },
            Error::Engine { context: c, source } if c.is_empty() => Error::Engine {
                context: context(),
                source,
            },
            other => other,
        })
    }
}

#[cfg(feature = "engine")]
impl Error {
    /// Whose fault this is (see [`kitle_data::Blame`]): the caller's for everything
    /// about the definition or the request (found before anything runs), else the store's,
    /// the engine's, a limit's or a conflicting writer's.
    pub fn blame(&self) -> kitle_data::Blame {
        use kitle_data::Blame;
        match self {
            Error::Refused(_)
            | Error::Syntax { .. }
            | Error::Compile { .. }
            | Error::NotFound(_)
            | Error::InUse { .. } => Blame::Input,
            // Failures while running are never the caller's input: a definition's problems
            // are found when it is planned (`Compile`). A plan that DataFusion refuses at run
            // time is the engine's; a definition failing on the data it reads stays
            // `Evaluation` (the service's, for a stored definition).
            Error::Store { source, .. } => match source.blame() {
                Blame::Input => Blame::Engine,
                other => other,
            },
            Error::Engine { source, .. } => match kitle_data::classify(source) {
                Blame::Input => Blame::Engine,
                other => other,
            },
        }
    }
}

impl Error {
    /// Shorthand for [`Error::Syntax`].
    pub(crate) fn syntax(
        found: impl Into<String>,
        allowed: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        Error::Syntax {
            found: found.into(),
            allowed: allowed.into(),
            reason: reason.into(),
        }
    }

    /// This error as a problem at `path` (a syntax error) or the problems it holds.
    pub(crate) fn into_problems(self, path: &str) -> Vec<Problem> {
        match self {
            Error::Refused(problems) => problems.under(path).into_vec(),
            Error::Syntax {
                found,
                allowed,
                reason,
            } => vec![Problem::new(path, quote(&found), allowed, reason)],
            other => vec![Problem::new(path, "", "", other.to_string())],
        }
    }
}

/// Joins a JSON path and a field or index: `join("condition", "all[0]")` is
/// `condition.all[0]`, `join("[1]", "id")` is `[1].id`, and an empty side disappears.
pub(crate) fn join(prefix: &str, rest: &str) -> String {
    if prefix.is_empty() {
        rest.to_string()
    } else if rest.is_empty() {
        prefix.to_string()
    } else if rest.starts_with('[') {
        format!("{prefix}{rest}")
    } else {
        format!("{prefix}.{rest}")
    }
}

/// A string as it would appear in JSON, for the `found` of a problem.
pub(crate) fn quote(text: &str) -> String {
    shorten(serde_json::Value::String(text.to_string()).to_string())
}

/// Compact JSON of what was found, shortened so that a problem stays readable.
pub(crate) fn found(value: Option<&serde_json::Value>) -> String {
    match value {
        None => "nothing".to_string(),
        Some(v) => shorten(v.to_string()),
    }
}

fn shorten(text: String) -> String {
    const MAX: usize = 120;
    if text.chars().count() <= MAX {
        text
    } else {
        let mut short: String = text.chars().take(MAX).collect();
        short.push('…');
        short
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_join_fields_and_indices() {
        assert_eq!(join("", "id"), "id");
        assert_eq!(join("condition", "all[0]"), "condition.all[0]");
        assert_eq!(join("[1]", "condition"), "[1].condition");
        assert_eq!(join("[1]", ""), "[1]");
        assert_eq!(join("condition.all", "[2]"), "condition.all[2]");
    }

    #[test]
    fn problems_display_lists_each_problem() {
        let problems = Problems::from(vec![
            Problem::new("id", "nothing", "a segment id", "`id` is required"),
            Problem::new(
                "condition.op",
                "\"gt\"",
                "eq, neq",
                "not an operator of text",
            ),
        ]);
        let text = problems.to_string();
        assert!(text.starts_with("2 problems"));
        assert!(text.contains("\n  id: `id` is required (found nothing; allowed: a segment id)"));
        assert_eq!(
            problems.clone().under("[3]").as_slice()[1].path,
            "[3].condition.op"
        );
        assert_eq!(
            serde_json::to_value(&problems).unwrap()[0]["path"],
            serde_json::json!("id")
        );
    }

    #[test]
    fn long_found_values_are_shortened() {
        let long = "x".repeat(500);
        let q = quote(&long);
        assert!(q.chars().count() <= 121);
        assert!(q.ends_with('…'));
        assert_eq!(found(None), "nothing");
    }
}
