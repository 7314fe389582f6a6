//! Manual pages generated from the command-line definitions in [`crate::cli`], so that they
//! can never describe options the binary does not have. The hidden `beffroi man --dir DIR`
//! subcommand writes them; packaging (`scripts/build-deb`, `deploy/install.sh`) runs the built
//! binary rather than keeping roff files in the repository. It reads no configuration and
//! writes nothing outside `DIR`.

use std::path::{Path, PathBuf};

use clap::CommandFactory;

/// Writes `beffroi.1` and one page per visible subcommand (`beffroi-backup.1`,
/// `beffroi-backup-create.1`, …) into `dir`, creating it if needed, and returns the pages now
/// in `dir`, sorted. Hidden subcommands (this one) get no page.
pub fn write_pages(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let fail = |e: std::io::Error| format!("{}: {e}", dir.display());
    std::fs::create_dir_all(dir).map_err(fail)?;
    clap_mangen::generate_to(crate::cli::Cli::command(), dir).map_err(fail)?;
    let mut pages = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(fail)? {
        let path = entry.map_err(fail)?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with("beffroi") && name.ends_with(".1") {
            pages.push(path);
        }
    }
    pages.sort();
    Ok(pages)
}
