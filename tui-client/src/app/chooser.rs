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
    /// Every listed entry of `dir`; [`Chooser::visible`] is what the filter leaves.
    pub entries: Vec<Entry>,
    /// Index into [`Chooser::visible`].
    pub selected: usize,
    pub purpose: Purpose,
    /// Why the directory could not be listed, if it could not.
    pub error: Option<String>,
    /// What the user typed: a filter on the names (a phone's DCIM folder holds
    /// thousands), or, when it starts with `/` or `~`, a path to go to on Enter.
    pub query: String,
    /// The typed path was refused (nothing there, or not a photo): the next character
    /// typed replaces it, as selected text would, rather than running on after it;
    /// Backspace edits it instead (QA s21d D6).
    pub refused: bool,
}

/// What Enter (or a pasted path) did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A file was chosen.
    File(PathBuf),
    /// The chooser moved to another directory, or nothing was highlighted.
    Stayed,
    /// The typed or pasted path names nothing on this device.
    NotFound(PathBuf),
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
            query: String::new(),
            refused: false,
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
                    // Through a link: a link to the camera's folder is a folder (QA s30e Q4).
                    let meta = std::fs::metadata(e.path()).ok();
                    let is_dir = meta.as_ref().is_some_and(|m| m.is_dir());
                    // Photos only (the device reads JPEG and PNG); any other file can
                    // still be typed as a path, and is refused with the reason (QA s30d P4).
                    if !is_dir && !is_picture(&name) {
                        continue;
                    }
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
        self.clamp_selection();
    }

    /// Whether the query is a path to go to rather than a filter.
    pub fn query_is_path(&self) -> bool {
        self.query.starts_with('/') || self.query.starts_with('~')
    }

    /// The entries the filter leaves, in listing order: those whose name contains the
    /// query, ignoring case (all of them while the query is empty or a path).
    pub fn visible(&self) -> Vec<&Entry> {
        if self.query.is_empty() || self.query_is_path() {
            return self.entries.iter().collect();
        }
        let needle = self.query.to_lowercase();
        self.entries
            .iter()
            .filter(|e| e.name.to_lowercase().contains(&needle))
            .collect()
    }

    /// Moves the highlight.
    pub fn move_by(&mut self, delta: isize) {
        let n = self.visible().len() as isize;
        if n == 0 {
            return;
        }
        self.selected = (self.selected as isize + delta).clamp(0, n - 1) as usize;
    }

    /// Adds a typed character to the query; a filter highlights its first match.
    pub fn type_char(&mut self, c: char) {
        if std::mem::take(&mut self.refused) {
            self.query.clear();
        }
        // A space before anything is typed (the key that opened the chooser, pressed
        // again) would filter to nothing behind a filter that looks empty (QA s32c W9).
        if self.query.is_empty() && c.is_whitespace() {
            return;
        }
        self.query.push(c);
        if !self.query_is_path() {
            self.selected = 0;
        }
    }

    /// Takes back the last typed character, or, with nothing typed, goes up.
    pub fn backspace(&mut self) {
        self.refused = false;
        if self.query.pop().is_none() {
            self.up();
        } else {
            self.clamp_selection();
        }
    }

    /// Marks a typed path as refused (see [`Chooser::refused`]); a filter is left as
    /// it is, since it chose the highlighted file rather than naming one.
    pub fn refuse_typed(&mut self) {
        self.refused = self.query_is_path();
    }

    /// Goes to the parent directory.
    pub fn up(&mut self) {
        self.query.clear();
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

    /// Goes to the typed path, or enters the highlighted directory, or returns the
    /// highlighted file.
    pub fn enter(&mut self) -> Outcome {
        if self.query_is_path() {
            let path = expand_home(&self.query);
            return self.go_to(&path);
        }
        let Some(entry) = self.visible().get(self.selected).map(|e| (*e).clone()) else {
            return Outcome::Stayed;
        };
        self.go_to(&entry.path)
    }

    /// A pasted path (a file dragged onto most terminals arrives so, often quoted, or
    /// as a `file://` address): a file is chosen, a directory opened. Other text becomes
    /// the query.
    pub fn paste(&mut self, text: &str) -> Outcome {
        let text = text.trim().trim_matches(|c| c == '\'' || c == '"');
        if let Some(address) = text.strip_prefix("file://") {
            return self.go_to(&PathBuf::from(percent_decode(address)));
        }
        if text.starts_with('/') || text.starts_with('~') {
            return self.go_to(&expand_home(text));
        }
        text.chars()
            .filter(|c| !c.is_control())
            .for_each(|c| self.type_char(c));
        Outcome::Stayed
    }

    fn go_to(&mut self, path: &Path) -> Outcome {
        if path.is_dir() {
            self.dir = path.to_path_buf();
            self.query.clear();
            self.selected = 0;
            self.reload();
            Outcome::Stayed
        } else if path.is_file() {
            Outcome::File(path.to_path_buf())
        } else {
            Outcome::NotFound(path.to_path_buf())
        }
    }

    fn clamp_selection(&mut self) {
        self.selected = self.selected.min(self.visible().len().saturating_sub(1));
    }
}

/// `~` and `~/…` from `$HOME`, as a shell would; anything else as typed.
fn expand_home(typed: &str) -> PathBuf {
    let rest = match typed.strip_prefix('~') {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => rest,
        _ => return PathBuf::from(typed),
    };
    match dirs::home_dir() {
        Some(home) => home.join(rest.trim_start_matches('/')),
        None => PathBuf::from(typed),
    }
}

/// `%E7%85%A7` → `照`: the path of a `file://` address. A malformed escape is kept
/// as written.
fn percent_decode(address: &str) -> String {
    let bytes = address.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| address.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether a file's name says it is a picture the device reads (JPEG or PNG).
fn is_picture(name: &str) -> bool {
    let lower = name.to_lowercase();
    [".jpg", ".jpeg", ".png"]
        .iter()
        .any(|ext| lower.ends_with(ext))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir_with(names: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("temp dir");
        for name in names {
            if let Some(d) = name.strip_suffix('/') {
                std::fs::create_dir(dir.path().join(d)).expect("dir");
            } else {
                std::fs::write(dir.path().join(name), b"x").expect("file");
            }
        }
        dir
    }

    fn names(c: &Chooser) -> Vec<&str> {
        c.visible().iter().map(|e| e.name.as_str()).collect()
    }

    #[test]
    fn typing_filters_names_ignoring_case_and_backspace_widens_again() {
        let dir = dir_with(&["DCIM/", "IMG_0001.JPG", "img_0002.jpg", "notes.txt"]);
        let mut c = Chooser::open(dir.path(), Purpose::Photo);
        // Folders and pictures only: a text file is not offered (QA s30d P4).
        assert_eq!(names(&c), ["DCIM", "IMG_0001.JPG", "img_0002.jpg"]);
        #[cfg(unix)]
        {
            // A link to a folder is a folder (QA s30e Q4).
            std::os::unix::fs::symlink(dir.path().join("DCIM"), dir.path().join("camera"))
                .expect("link");
            let linked = Chooser::open(dir.path(), Purpose::Photo);
            assert_eq!(
                names(&linked),
                ["DCIM", "camera", "IMG_0001.JPG", "img_0002.jpg"]
            );
        }
        c.move_by(2);
        "0002".chars().for_each(|ch| c.type_char(ch));
        assert_eq!(names(&c), ["img_0002.jpg"]);
        assert_eq!(c.selected, 0, "the first match is highlighted");
        assert_eq!(c.enter(), Outcome::File(dir.path().join("img_0002.jpg")));
        c.backspace();
        c.backspace();
        assert_eq!(names(&c), ["IMG_0001.JPG", "img_0002.jpg"]);
        "zz".chars().for_each(|ch| c.type_char(ch));
        assert!(names(&c).is_empty());
        assert_eq!(c.enter(), Outcome::Stayed, "nothing to choose");
    }
    #[test]
    fn a_space_typed_first_filters_nothing() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a b.jpg"), b"x").unwrap();
        let mut c = Chooser::open(dir.path(), Purpose::Photo);
        c.type_char(' ');
        assert_eq!(c.query, "");
        assert_eq!(c.visible().len(), 1);
        c.type_char('a');
        c.type_char(' ');
        assert_eq!(c.query, "a ", "a space within a filter is kept");
        assert_eq!(c.visible().len(), 1);
    }

    #[test]
    fn backspace_with_nothing_typed_goes_up_to_where_it_came_from() {
        let dir = dir_with(&["a/", "b/", "c.jpg"]);
        let mut c = Chooser::open(&dir.path().join("b"), Purpose::Photo);
        c.backspace();
        assert_eq!(c.dir, dir.path());
        assert_eq!(names(&c)[c.selected], "b");
    }

    #[test]
    fn a_typed_path_opens_a_directory_or_chooses_a_file_or_says_it_is_missing() {
        let dir = dir_with(&["photos/", "card.png"]);
        std::fs::write(dir.path().join("photos/p1.jpg"), b"x").expect("file");
        let mut c = Chooser::open(dir.path(), Purpose::Photo);
        let typed = dir.path().join("photos");
        typed
            .to_string_lossy()
            .chars()
            .for_each(|ch| c.type_char(ch));
        assert!(c.query_is_path());
        assert_eq!(names(&c).len(), 2, "a path does not filter the listing");
        assert_eq!(c.enter(), Outcome::Stayed);
        assert_eq!(c.dir, typed);
        assert!(c.query.is_empty());
        assert_eq!(names(&c), ["p1.jpg"]);

        let missing = dir.path().join("nope.jpg");
        c.query = missing.to_string_lossy().to_string();
        assert_eq!(c.enter(), Outcome::NotFound(missing));
        assert_eq!(c.dir, typed, "stays where it was");
    }

    #[test]
    fn a_pasted_quoted_path_chooses_the_file_and_other_text_filters() {
        let dir = dir_with(&["sub/", "card.png", "visit.jpg"]);
        let mut c = Chooser::open(&dir.path().join("sub"), Purpose::SignedCard);
        let quoted = format!("'{}'\n", dir.path().join("card.png").display());
        assert_eq!(c.paste(&quoted), Outcome::File(dir.path().join("card.png")));
        assert_eq!(c.paste(&dir.path().display().to_string()), Outcome::Stayed);
        assert_eq!(c.dir, dir.path());
        assert_eq!(c.paste("VISIT"), Outcome::Stayed);
        assert_eq!(names(&c), ["visit.jpg"]);
    }

    #[test]
    fn a_dragged_file_address_is_decoded_to_its_path() {
        let dir = dir_with(&["走访 1.jpg"]);
        let mut c = Chooser::open(dir.path(), Purpose::Photo);
        let address = format!("file://{}/%E8%B5%B0%E8%AE%BF%201.jpg", dir.path().display());
        assert_eq!(
            c.paste(&address),
            Outcome::File(dir.path().join("走访 1.jpg"))
        );
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("100%zz"), "100%zz");
    }

    #[test]
    fn typing_after_a_refused_path_starts_a_new_one_and_backspace_edits_it() {
        let dir = dir_with(&["a.jpg"]);
        let mut c = Chooser::open(dir.path(), Purpose::Photo);
        for ch in "/no/such.jpg".chars() {
            c.type_char(ch);
        }
        assert!(matches!(c.enter(), Outcome::NotFound(_)));
        c.refuse_typed();
        c.type_char('/');
        assert_eq!(c.query, "/", "the refused path is replaced");
        c.type_char('x');
        assert_eq!(c.query, "/x", "then typing runs on");
        c.query = "/no/such.jpgg".into();
        c.refuse_typed();
        c.backspace();
        c.type_char('!');
        assert_eq!(c.query, "/no/such.jpg!", "Backspace edits the refused path");
        c.query = "a.j".into();
        c.refuse_typed();
        c.type_char('p');
        assert_eq!(c.query, "a.jp", "a filter is never replaced");
    }

    #[test]
    fn tilde_is_the_home_directory() {
        let home = dirs::home_dir().expect("a home directory");
        assert_eq!(expand_home("~"), home);
        assert_eq!(expand_home("~/Pictures"), home.join("Pictures"));
        assert_eq!(expand_home("~other/x"), PathBuf::from("~other/x"));
    }
}
