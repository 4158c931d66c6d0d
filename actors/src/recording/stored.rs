//! Recordings on disk: `<dir>/<sessionId>.cast` while the session runs, then
//! `<sessionId>.cast.gz` with its signature in `<sessionId>.cast.gz.sig`. Playback checks the
//! signature before it reads a byte of the recording.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::RecordingKey;

/// Why a recording cannot be played.
#[derive(Debug, thiserror::Error)]
pub enum PlaybackError {
    /// There is none for this session.
    #[error("no recording for this session")]
    Missing,
    /// The session is still being recorded.
    #[error("the session is still being recorded")]
    InProgress,
    /// The file or its signature was changed after the session ended.
    #[error("the recording was changed after it was made (signature mismatch)")]
    Tampered,
    /// The file cannot be read.
    #[error("reading the recording: {0}")]
    Io(#[from] std::io::Error),
}

/// The files of `session_id`'s recording: (while recording, compressed, signature).
pub fn paths(dir: &Path, session_id: &str) -> (PathBuf, PathBuf, PathBuf) {
    (
        dir.join(format!("{session_id}.cast")),
        dir.join(format!("{session_id}.cast.gz")),
        dir.join(format!("{session_id}.cast.gz.sig")),
    )
}

/// Compresses a finished recording and signs the compressed file; the plain file goes.
pub fn finish(plain: &Path, key: &RecordingKey) -> std::io::Result<PathBuf> {
    let compressed = plain.with_extension("cast.gz");
    let mut input = std::fs::File::open(plain)?;
    let output = std::fs::File::create(&compressed)?;
    let mut encoder = flate2::write::GzEncoder::new(output, flate2::Compression::default());
    std::io::copy(&mut input, &mut encoder)?;
    encoder.finish()?.sync_all()?;
    let bytes = std::fs::read(&compressed)?;
    let signature = compressed.with_extension("gz.sig");
    std::fs::write(&signature, key.sign(&bytes))?;
    std::fs::remove_file(plain)?;
    Ok(compressed)
}

/// The asciicast of `session_id`, after its signature was checked.
pub fn open_verified(
    dir: &Path,
    session_id: &str,
    key: &RecordingKey,
) -> Result<String, PlaybackError> {
    let (plain, compressed, signature) = paths(dir, session_id);
    if !compressed.exists() {
        return Err(if plain.exists() {
            PlaybackError::InProgress
        } else {
            PlaybackError::Missing
        });
    }
    let bytes = std::fs::read(&compressed)?;
    let signed = std::fs::read_to_string(&signature).unwrap_or_default();
    if !key.verify(&bytes, &signed) {
        return Err(PlaybackError::Tampered);
    }
    let mut text = String::new();
    flate2::read::GzDecoder::new(bytes.as_slice()).read_to_string(&mut text)?;
    Ok(text)
}

/// Removes finished recordings last changed before `cutoff`; returns how many.
pub fn prune(dir: &Path, cutoff: SystemTime) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        let finished = path.to_str().is_some_and(|p| p.ends_with(".cast.gz"));
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|modified| modified < cutoff);
        if finished && old && std::fs::remove_file(&path).is_ok() {
            let _signature_too = std::fs::remove_file(path.with_extension("gz.sig"));
            removed += 1;
        }
    }
    removed
}

/// Writes `line` and a newline.
pub(super) fn write_line(writer: &mut impl Write, line: &str) -> std::io::Result<()> {
    writer.write_all(line.as_bytes())?;
    writer.write_all(b"\n")
}
