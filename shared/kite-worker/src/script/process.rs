//! One process of a script task, in a process group of its own: its lines of standard
//! output and error are read as they come, and the whole group is killed when the
//! process ends or the run is dropped (a task's `timeout`, a kill), so nothing it started
//! in the background outlives the task run.

use std::path::Path;
use std::process::Stdio;

use rustix::process::{kill_process_group, Pid, Signal};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

/// One line of output and the stream it came from.
pub(super) struct OutputLine {
    pub std_err: bool,
    pub text: String,
}

/// Kills the process group when dropped.
struct GroupGuard(Option<Pid>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            // The group may be gone already: nothing to do then.
            let _ = kill_process_group(pid, Signal::KILL);
        }
    }
}

/// A started process and the lines it writes.
pub(super) struct Running {
    child: Child,
    guard: GroupGuard,
}

/// Why a process did not start.
pub(super) enum StartError {
    NotFound,
    Other(String),
}

/// Starts `command` in `dir` with `env` added, in a new process group; the receiver gets
/// its lines until both streams end.
pub(super) fn start(
    command: &[String],
    dir: &Path,
    env: &[(String, String)],
) -> Result<(Running, mpsc::Receiver<OutputLine>), StartError> {
    let (program, args) = command.split_first().ok_or(StartError::NotFound)?;
    let mut child = Command::new(program)
        .args(args)
        .current_dir(dir)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => StartError::NotFound,
            _ => StartError::Other(e.to_string()),
        })?;
    let guard = GroupGuard(child.id().and_then(|id| Pid::from_raw(id as i32)));
    let (sender, lines) = mpsc::channel(1024);
    if let Some(out) = child.stdout.take() {
        tokio::spawn(forward(out, false, sender.clone()));
    }
    if let Some(err) = child.stderr.take() {
        tokio::spawn(forward(err, true, sender));
    }
    Ok((Running { child, guard }, lines))
}

impl Running {
    /// Waits for the process's end, kills what it left in its group, and returns its
    /// exit code (128 + the signal's number when a signal ended it, as shells report).
    pub async fn wait(&mut self) -> std::io::Result<i32> {
        let status = self.child.wait().await?;
        // Background processes would hold the pipes open, and must not survive the run.
        drop(std::mem::replace(&mut self.guard, GroupGuard(None)));
        use std::os::unix::process::ExitStatusExt;
        Ok(status
            .code()
            .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
    }
}

/// Sends the lines of `stream` (invalid UTF-8 replaced) until its end.
async fn forward(stream: impl AsyncRead + Unpin, std_err: bool, sender: mpsc::Sender<OutputLine>) {
    let mut reader = BufReader::new(stream);
    let mut buffer = Vec::new();
    loop {
        buffer.clear();
        match reader.read_until(b'\n', &mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                if buffer.last() == Some(&b'\n') {
                    buffer.pop();
                }
                let text = String::from_utf8_lossy(&buffer).into_owned();
                if sender.send(OutputLine { std_err, text }).await.is_err() {
                    return;
                }
            }
        }
    }
}
