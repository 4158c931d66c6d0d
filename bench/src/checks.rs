//! Correctness checks of a benchmark run: they fail the run, unlike speed figures.

/// The checks made during one scenario.
#[derive(Debug, Default)]
pub struct Checks {
    failures: Vec<String>,
    passed: usize,
}

impl Checks {
    /// Records one check.
    pub fn check(&mut self, ok: bool, what: impl Into<String>) {
        if ok {
            self.passed += 1;
        } else {
            self.failures.push(what.into());
        }
    }

    /// Prints the outcome; true when every check passed.
    pub fn report(&self) -> bool {
        for failure in &self.failures {
            eprintln!("CHECK FAILED: {failure}");
        }
        println!(
            "correctness: {} check(s) passed, {} failed",
            self.passed,
            self.failures.len()
        );
        self.failures.is_empty()
    }
}
