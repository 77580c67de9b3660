//! Script tasks ([`kite_core::plugin::scripts`]) run with Kestra's Process task runner: a
//! temporary folder per attempt (removed afterwards) with the working directory and the
//! output directory in it, the input and namespace files written in, the command started
//! in a process group of its own, its lines logged as they come (INFO from stdout, ERROR
//! from stderr, `::{…}::` lines read as outputs and log entries), then the output files
//! uploaded under the task run's storage prefix. Inside a `flow.WorkingDirectory` the
//! working directory is the folder its script children share ([`shared`]).

pub(crate) mod files;
mod process;
mod python;
mod shared;

use std::path::{Path, PathBuf};

use kite_core::execution::LogEntry;
use kite_core::execution::LogLevel;
use kite_core::plugin::scripts::protocol::{read_line, Line};
use kite_core::plugin::scripts::{
    Program, ScriptCall, ScriptError, ScriptRun, OUTPUT_DIR_MARK, SCRIPT_FILE_MARK, WORKING_DIR_MARK,
};
use kite_core::plugin::IoJob;
use kite_engine::ports::WorkerContext;
use tracing::warn;

/// What to do with a task that asks for a container (`taskRunner` Docker, `containerImage`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ContainerTasks {
    /// Run it as a process on the host, with a WARN line naming the image.
    #[default]
    Process,
    /// Fail it, saying why.
    Refuse,
}

/// The host's settings for script tasks, read at the edge ([`ScriptConfig::from_env`]).
#[derive(Debug, Clone)]
pub struct ScriptConfig {
    pub container_tasks: ContainerTasks,
    /// Where the attempts' temporary folders go (the system's temporary folder: `/tmp` on
    /// AWS Lambda).
    pub temp_dir: PathBuf,
    /// Where Python `dependencies` environments are kept, one per requirement set.
    pub python_venv_cache: PathBuf,
}

impl Default for ScriptConfig {
    fn default() -> Self {
        let temp_dir = std::env::temp_dir();
        ScriptConfig {
            container_tasks: ContainerTasks::Process,
            python_venv_cache: temp_dir.join("kite-python-venvs"),
            temp_dir,
        }
    }
}

impl ScriptConfig {
    /// From `KITE_CONTAINER_TASKS` (`process`, the default, or `refuse`) and
    /// `KITE_PYTHON_VENV_CACHE` (default `{temp dir}/kite-python-venvs`).
    pub fn from_env() -> ScriptConfig {
        let mut config = ScriptConfig::default();
        if let Ok(value) = std::env::var("KITE_CONTAINER_TASKS") {
            if value.trim().eq_ignore_ascii_case("refuse") {
                config.container_tasks = ContainerTasks::Refuse;
            }
        }
        if let Some(dir) = std::env::var_os("KITE_PYTHON_VENV_CACHE").filter(|d| !d.is_empty()) {
            config.python_venv_cache = PathBuf::from(dir);
        }
        config
    }
}

/// The first of `names` that is an executable file in the `PATH`.
pub(super) fn find_program(names: &[&str]) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    names.iter().find_map(|name| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|candidate| {
                candidate
                    .metadata()
                    .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            })
    })
}

/// The lines of a run, written to the log store as they come.
struct LogSink<'a> {
    job: &'a IoJob,
    context: &'a WorkerContext,
    pending: Vec<LogEntry>,
}

impl LogSink<'_> {
    fn push(&mut self, level: LogLevel, message: impl Into<String>) {
        let now = self.context.clock.now();
        self.pending.extend(self.job.task_run.log(level, message, now));
    }

    async fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        if let Err(e) = self.context.logs.append(&self.pending).await {
            warn!(error = %e, "script task's log lines not stored");
        }
        self.pending.clear();
    }
}

/// Runs a script task's call.
pub async fn run(
    call: &ScriptCall,
    job: &IoJob,
    context: &WorkerContext,
    config: &ScriptConfig,
) -> Result<ScriptRun, ScriptError> {
    let mut sink = LogSink {
        job,
        context,
        pending: Vec::new(),
    };
    if let Some(image) = &call.container_image {
        if config.container_tasks == ContainerTasks::Refuse {
            return Err(ScriptError::ContainerRefused { image: image.clone() });
        }
        sink.push(
            LogLevel::Warn,
            format!(
                "This task asks for the container image '{image}': Kite runs it as a process on \
                 the host (Process task runner), with the programs the host has"
            ),
        );
    }
    let result = run_in_folder(call, job, context, config, &mut sink).await;
    sink.flush().await;
    result
}

async fn run_in_folder(
    call: &ScriptCall,
    job: &IoJob,
    context: &WorkerContext,
    config: &ScriptConfig,
    sink: &mut LogSink<'_>,
) -> Result<ScriptRun, ScriptError> {
    let local = |e: std::io::Error| ScriptError::WorkingDirectory(e.to_string());
    std::fs::create_dir_all(&config.temp_dir).map_err(local)?;
    // Removed when dropped: at the end, and when a timeout or a kill drops the run.
    let root = tempfile::Builder::new()
        .prefix("kite-script-")
        .tempdir_in(&config.temp_dir)
        .map_err(local)?;
    // Inside a WorkingDirectory the folder outlives the attempt: the next child uses it.
    let shared_root = shared::root(&config.temp_dir);
    let (work, fresh, _in_use) = match &call.shared_folder {
        Some(folder) => {
            std::fs::create_dir_all(&shared_root).map_err(local)?;
            let (dir, fresh, in_use) = shared::open(
                context.files.as_ref(),
                &shared_root,
                folder,
                &job.readable_prefixes,
            )
            .await?;
            (dir, fresh, Some(in_use))
        }
        None => {
            let work = root.path().join("work");
            std::fs::create_dir(&work).map_err(local)?;
            (work, true, None)
        }
    };
    let output = root.path().join("output");
    std::fs::create_dir(&output).map_err(local)?;
    let (work_text, output_text) = (work.to_string_lossy(), output.to_string_lossy());
    let replace = |text: &str| {
        text.replace(WORKING_DIR_MARK, &work_text)
            .replace(OUTPUT_DIR_MARK, &output_text)
    };

    let mut env: Vec<(String, String)> = call.env.iter().map(|(k, v)| (k.clone(), replace(v))).collect();
    env.push(("WORKING_DIR".into(), work_text.to_string()));
    env.push(("OUTPUT_DIR".into(), output_text.to_string()));
    let mut path_front: Vec<PathBuf> = Vec::new();
    if let Some(program) = call.program {
        let found = find_program(program.candidates()).ok_or_else(|| ScriptError::MissingProgram {
            program: program.candidates()[0].to_string(),
        })?;
        if program == Program::Python {
            path_front = python::setup(root.path(), &found, &call.dependencies, config, &mut env).await?;
        }
    }
    if !path_front.is_empty() {
        let rest = std::env::var_os("PATH").unwrap_or_default();
        let joined = std::env::join_paths(path_front.iter().cloned().chain(std::env::split_paths(&rest)))
            .map_err(|e| ScriptError::WorkingDirectory(e.to_string()))?;
        env.push(("PATH".into(), joined.to_string_lossy().into()));
    }

    if let Some(folder) = call.shared_folder.as_ref().filter(|_| fresh) {
        if let Some(filter) = &folder.namespace_files {
            files::namespace_files(context.files.as_ref(), &work, filter).await?;
        }
        files::input_files(
            context.files.as_ref(),
            &work,
            &folder.input_files,
            &job.readable_prefixes,
            replace,
        )
        .await?;
    }
    if let Some(filter) = &call.namespace_files {
        files::namespace_files(context.files.as_ref(), &work, filter).await?;
    }
    files::input_files(
        context.files.as_ref(),
        &work,
        &call.input_files,
        &job.readable_prefixes,
        replace,
    )
    .await?;
    for key in &call.legacy_output_files {
        files::write(&work, key, b"").await?;
    }
    let mut copies = files::LocalCopies {
        files: context.files.as_ref(),
        dir: &work,
        readable: &job.readable_prefixes,
        copied: Default::default(),
    };
    let script_path = match &call.script {
        Some(script) => {
            let name = format!("script_{}.{}", job.task_run.task_run_id, script.extension);
            let content = copies.replace(replace(&script.content)).await?;
            Some(files::write(&work, &name, content.as_bytes()).await?)
        }
        None => None,
    };
    let mut command = Vec::with_capacity(call.command.len());
    for arg in &call.command {
        let mut arg = copies.replace(replace(arg)).await?;
        if let Some(path) = &script_path {
            arg = arg.replace(SCRIPT_FILE_MARK, &path.to_string_lossy());
        }
        command.push(arg);
    }

    let run = execute(&command, &work, &env, sink).await;
    if let Some(folder) = &call.shared_folder {
        // Whether the process ran or not, the next child finds what this one left.
        shared::close(
            context.files.as_ref(),
            &shared_root,
            &work,
            folder,
            &job.task_run.task_run_id,
        )
        .await?;
    }
    let mut run = run?;
    if run.exit_code == 0 {
        run.output_files = files::upload_outputs(
            context.files.as_ref(),
            &job.task_run.storage_prefix(),
            &work,
            &output,
            &call.output_files,
            &call.legacy_output_files,
        )
        .await?;
    }
    Ok(run)
}

/// Starts the process and reads its lines until it ends.
async fn execute(
    command: &[String],
    work: &Path,
    env: &[(String, String)],
    sink: &mut LogSink<'_>,
) -> Result<ScriptRun, ScriptError> {
    let (mut running, mut lines) = process::start(command, work, env).map_err(|e| match e {
        process::StartError::NotFound => ScriptError::MissingProgram {
            program: command.first().cloned().unwrap_or_default(),
        },
        process::StartError::Other(reason) => ScriptError::Start(reason),
    })?;
    let mut run = ScriptRun::default();
    let exit = loop {
        tokio::select! {
            Some(line) = lines.recv() => {
                read(&mut run, sink, line);
                // Whatever else is already there goes in the same write.
                while let Ok(line) = lines.try_recv() {
                    read(&mut run, sink, line);
                }
                sink.flush().await;
            }
            status = running.wait() => break status,
        }
    };
    // The group is gone: the streams end once their last lines are read.
    while let Some(line) = lines.recv().await {
        read(&mut run, sink, line);
    }
    run.exit_code = exit.map_err(|e| ScriptError::Start(e.to_string()))?;
    Ok(run)
}

/// Counts and logs one line, or reads its data.
fn read(run: &mut ScriptRun, sink: &mut LogSink<'_>, line: process::OutputLine) {
    if line.std_err {
        run.std_err_lines += 1;
    } else {
        run.std_out_lines += 1;
    }
    match read_line(&line.text, line.std_err) {
        Line::Log(level, text) => sink.push(level, text),
        Line::Data(data) => {
            run.vars.extend(data.outputs.unwrap_or_default());
            for entry in data.logs.unwrap_or_default() {
                sink.push(entry.level(), entry.message);
            }
        }
        Line::Invalid(message) => sink.push(LogLevel::Warn, message),
    }
}
