//! A small file chooser for attaching photos: directories first, then files.

use std::path::{Path, PathBuf};

/// One line of the listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub path: PathBuf,
    pub is_dir: bool,
    pub bytes: u64,
}

/// What the chosen file will be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Photo,
    SignedCard,
}

/// The chooser's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chooser {
    pub dir: PathBuf,
    pub entries: Vec<Entry>,
    pub selected: usize,
    pub purpose: Purpose,
    /// Why the directory could not be listed, if it could not.
    pub error: Option<String>,
}

impl Chooser {
    /// Lists `dir`.
    pub fn open(dir: &Path, purpose: Purpose) -> Self {
        let mut c = Chooser {
            dir: dir.to_path_buf(),
            entries: Vec::new(),
            selected: 0,
            purpose,
            error: None,
        };
        c.reload();
        c
    }

    /// Re-reads the directory (hidden files are left out).
    pub fn reload(&mut self) {
        self.entries.clear();
        self.error = None;
        match std::fs::read_dir(&self.dir) {
            Ok(rd) => {
                for e in rd.flatten() {
                    let name = e.file_name().to_string_lossy().to_string();
                    if name.starts_with('.') {
                        continue;
                    }
                    let meta = e.metadata().ok();
                    let is_dir = meta.as_ref().is_some_and(|m| m.is_dir());
                    self.entries.push(Entry {
                        name,
                        path: e.path(),
                        is_dir,
                        bytes: meta.map(|m| m.len()).unwrap_or(0),
                    });
                }
            }
            Err(e) => self.error = Some(format!("{}: {e}", self.dir.display())),
        }
        self.entries
            .sort_by(|a, b| b.is_dir.cmp(&a.is_dir).then_with(|| a.name.cmp(&b.name)));
        self.selected = self.selected.min(self.entries.len().saturating_sub(1));
    }

    /// Moves the highlight.
    pub fn move_by(&mut self, delta: isize) {
        if self.entries.is_empty() {
            return;
        }
        let n = self.entries.len() as isize;
        self.selected = (self.selected as isize + delta).clamp(0, n - 1) as usize;
    }

    /// Goes to the parent directory.
    pub fn up(&mut self) {
        if let Some(parent) = self.dir.parent() {
            let came_from = self
                .dir
                .file_name()
                .map(|n| n.to_string_lossy().to_string());
            self.dir = parent.to_path_buf();
            self.reload();
            if let Some(name) = came_from {
                self.selected = self
                    .entries
                    .iter()
                    .position(|e| e.name == name)
                    .unwrap_or(0);
            }
        }
    }

    /// Enters the highlighted directory, or returns the highlighted file.
    pub fn enter(&mut self) -> Option<PathBuf> {
        let entry = self.entries.get(self.selected)?.clone();
        if entry.is_dir {
            self.dir = entry.path;
            self.selected = 0;
            self.reload();
            None
        } else {
            Some(entry.path)
        }
    }
}
