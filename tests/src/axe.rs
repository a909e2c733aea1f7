//! axe-core (npm) inside a page, for the browser tests: the WCAG 2.0/2.1 A and AA rules; with
//! [`assert_accessible`] only serious or critical violations fail a test, [`violations`] gives them all.
//!
//! The script is the npm package's `axe.min.js`: `$AXE_CORE_JS` if set, else the global npm root
//! (`scripts/test` runs `npm install -g axe-core` when it is missing). It is injected through
//! WebDriver: the pages' CSP forbids inline scripts, but a driver's script is not the page's.
//!
//! ```ignore
//! sportello_tests::axe::assert_accessible(&browser, "/prenota, step 2").await?;
//! ```

use std::path::PathBuf;
use std::sync::OnceLock;

use serde::Deserialize;

use crate::browser::{Browser, Result, err};

/// One rule that failed, with where (CSS selectors of the first few elements).
#[derive(Debug, Deserialize)]
pub struct Violation {
    pub id: String,
    pub impact: String,
    pub help: String,
    pub targets: Vec<String>,
}

fn script_path() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("AXE_CORE_JS") {
        return Ok(PathBuf::from(path));
    }
    let out = std::process::Command::new("npm")
        .args(["root", "-g"])
        .output()
        .map_err(|e| err(format!("axe-core: cannot run `npm root -g` ({e}); set AXE_CORE_JS to axe.min.js")))?;
    let root = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    Ok(PathBuf::from(root).join("axe-core").join("axe.min.js"))
}

/// The axe-core script, read once per test binary.
fn script() -> Result<&'static str> {
    static SCRIPT: OnceLock<std::result::Result<String, String>> = OnceLock::new();
    let loaded = SCRIPT.get_or_init(|| {
        let path = script_path().map_err(|e| e.to_string())?;
        std::fs::read_to_string(&path).map_err(|e| {
            format!("axe-core: cannot read {} ({e}); install it with `npm install -g axe-core`", path.display())
        })
    });
    loaded.as_deref().map_err(|e| err(e.clone()))
}

/// Runs axe on the page as it is now; returns the serious and critical violations.
pub async fn serious_violations(b: &Browser) -> Result<Vec<Violation>> {
    let all = violations(b).await?;
    Ok(all.into_iter().filter(|v| v.impact == "serious" || v.impact == "critical").collect())
}

/// Runs axe on the page as it is now; returns every violation of the WCAG 2.0/2.1 A and AA rules,
/// whatever its impact.
pub async fn violations(b: &Browser) -> Result<Vec<Violation>> {
    if !b.eval::<bool>("typeof window.axe === 'object'").await? {
        b.exec(script()?).await?;
    }
    b.eval_async(
        "axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } })\
           .then(r => r.violations.map(v => ({ id: v.id, impact: v.impact || 'unknown', help: v.help, \
                          targets: v.nodes.slice(0, 5).map(n => n.target.join(' ')) })))",
    )
    .await
}

/// Fails with every serious or critical violation on the page, named after `what`.
pub async fn assert_accessible(b: &Browser, what: &str) -> Result<()> {
    let found = serious_violations(b).await?;
    if found.is_empty() {
        return Ok(());
    }
    let list: Vec<String> =
        found.iter().map(|v| format!("{} ({}): {} at {}", v.id, v.impact, v.help, v.targets.join(", "))).collect();
    Err(err(format!("axe on {what}: {}", list.join("; "))))
}
