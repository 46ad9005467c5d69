//! The one place subprocesses run: output goes to a log file, and a failure
//! reports the command line, the exit status and the tail of the log.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

mod cause;
mod groups;
pub use cause::Cause;
pub use groups::interrupted;
mod watch;

const TAIL_LINES: usize = 20;

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("`{tool}` is not installed (Debian package: {package})")]
    ToolMissing { tool: String, package: String },
    #[error("`{command}` failed ({status}){}\n{tail}", log.as_ref().map(|l| format!("; full log: {}", l.display())).unwrap_or_default())]
    Failed {
        command: String,
        status: String,
        log: Option<PathBuf>,
        tail: String,
        /// What its output says went wrong.
        cause: Cause,
    },
    #[error("cannot run `{command}`: {source}")]
    Io { command: String, source: std::io::Error },
}

impl ProcessError {
    /// What went wrong, as its output said (a tool that did not start: none).
    pub fn cause(&self) -> Cause {
        match self {
            ProcessError::Failed { cause, .. } => *cause,
            _ => Cause::Other,
        }
    }

    /// The cause of the first failed command in an error's chain.
    pub fn cause_of(error: &anyhow::Error) -> Cause {
        error
            .chain()
            .find_map(|e| e.downcast_ref::<ProcessError>())
            .map_or(Cause::Other, ProcessError::cause)
    }
}

/// How a command given a time limit ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    Exited(i32),
    Signaled(i32),
    /// Still running at the limit: stopped with its process group.
    TimedOut,
    /// Stopped with its process group because its watcher said so.
    Stopped,
}

/// What the watcher of a running command (`run_watched`) says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Watch {
    Continue,
    Stop,
}

#[derive(Clone, Debug)]
pub struct Cmd {
    program: OsString,
    package: String,
    args: Vec<OsString>,
    cwd: Option<PathBuf>,
    env: Vec<(OsString, OsString)>,
    env_remove: Vec<OsString>,
    /// Start from an empty environment (only `env` reaches the command).
    clear_env: bool,
    log: Option<PathBuf>,
    /// Read as standard input (else none).
    stdin: Option<PathBuf>,
    /// Left in sultana's process group (see `in_foreground`).
    foreground: bool,
    /// Killed when sultana dies (see `dies_with_sultana`).
    tied: bool,
    /// A make jobserver the command (and its makes) take their slots from,
    /// with the number of jobs it stands for.
    jobserver: Option<(jobserver::Client, usize)>,
}

impl Cmd {
    /// `package` is the Debian package that provides `program`, for the
    /// missing-tool message.
    pub fn new(program: impl AsRef<OsStr>, package: &str) -> Cmd {
        Cmd {
            program: program.as_ref().to_owned(),
            package: package.to_string(),
            args: Vec::new(),
            cwd: None,
            env: Vec::new(),
            env_remove: Vec::new(),
            clear_env: false,
            log: None,
            stdin: None,
            foreground: false,
            tied: false,
            jobserver: None,
        }
    }

    /// Give the command this file as its standard input.
    pub fn stdin_file(mut self, path: impl Into<PathBuf>) -> Cmd {
        self.stdin = Some(path.into());
        self
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Cmd {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    pub fn args<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(mut self, args: I) -> Cmd {
        self.args.extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    pub fn cwd(mut self, dir: impl Into<PathBuf>) -> Cmd {
        self.cwd = Some(dir.into());
        self
    }

    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Cmd {
        self.env.push((key.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }

    /// Nothing of sultana's environment reaches the command but what
    /// `env` sets (a build step's clean environment).
    pub fn env_clear(mut self) -> Cmd {
        self.clear_env = true;
        self
    }

    /// Share this make jobserver's slots (MAKEFLAGS, its pipe inherited);
    /// `jobs` is how many it stands for.
    pub fn jobserver(mut self, client: &jobserver::Client, jobs: usize) -> Cmd {
        self.jobserver = Some((client.clone(), jobs));
        self
    }

    pub fn env_remove(mut self, key: impl AsRef<OsStr>) -> Cmd {
        self.env_remove.push(key.as_ref().to_owned());
        self
    }

    /// Stay in sultana's process group, where the terminal is: ssh may ask
    /// for a passphrase or a host key there, which a command in a group of
    /// its own could not (it would be stopped by SIGTTIN). It is still
    /// stopped on SIGINT/SIGTERM, alone.
    pub fn in_foreground(mut self) -> Cmd {
        self.foreground = true;
        self
    }

    /// Killed with SIGKILL when sultana dies, even by `kill -9`: a git
    /// transfer left running would hold its lock files (`shallow.lock`,
    /// ref locks) in a store the next run takes for abandoned.
    pub fn dies_with_sultana(mut self) -> Cmd {
        self.tied = true;
        self
    }

    /// Append all output (stdout and stderr) to this file.
    pub fn log(mut self, path: impl Into<PathBuf>) -> Cmd {
        self.log = Some(path.into());
        self
    }

    /// The command line as a user would type it.
    pub fn display(&self) -> String {
        std::iter::once(&self.program)
            .chain(&self.args)
            .map(|a| shell_quote(&a.to_string_lossy()))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Run to completion; each output line (split at `\n` or `\r`, as progress
    /// meters write) goes to `on_line` and to the log.
    pub fn run_with(&self, mut on_line: impl FnMut(&str)) -> Result<(), ProcessError> {
        let mut cause = Cause::Other;
        let (status, mut tail) = self.stream(|line| {
            cause = cause.with_line(line);
            on_line(line);
        })?;
        match status {
            Some(status) if status.success() => Ok(()),
            other => Err(ProcessError::Failed {
                command: self.display(),
                status: other.map_or("killed".into(), describe_status),
                log: self.log.clone(),
                tail: quote_tail(tail.make_contiguous()),
                cause,
            }),
        }
    }

    /// Like `run_with`, but a non-zero exit is an answer, not an error:
    /// returns the exit code (None when killed by a signal).
    pub fn run_with_code(&self, on_line: impl FnMut(&str)) -> Result<Option<i32>, ProcessError> {
        let (status, _) = self.stream(on_line)?;
        Ok(status.and_then(|s| s.code()))
    }

    fn stream(
        &self,
        mut on_line: impl FnMut(&str),
    ) -> Result<(Option<std::process::ExitStatus>, VecDeque<String>), ProcessError> {
        let program = self.resolve_program()?;
        let io_err = |source| self.io_error(source);
        let expr = self.configured(duct::cmd(program, &self.args).stderr_to_stdout());
        let mut log = match &self.log {
            Some(path) => Some(BufWriter::new(self.open_log(path)?)),
            None => None,
        };
        let mut reader = expr.reader().map_err(io_err)?;
        let _group = self.register(reader.pids().first().copied());
        let mut tail: VecDeque<String> = VecDeque::new();
        let mut pending = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            let n = reader.read(&mut buf).map_err(io_err)?;
            if n == 0 {
                break;
            }
            for &byte in &buf[..n] {
                if byte == b'\n' || byte == b'\r' {
                    if let Some(log) = log.as_mut() {
                        let _ = log.write_all(&redacted(&pending));
                        let _ = log.write_all(&[byte]);
                    }
                    let line = String::from_utf8_lossy(&pending).into_owned();
                    pending.clear();
                    if line.trim().is_empty() {
                        continue;
                    }
                    on_line(&line);
                    if byte == b'\n' {
                        if tail.len() == TAIL_LINES {
                            tail.pop_front();
                        }
                        tail.push_back(line);
                    }
                } else {
                    pending.push(byte);
                }
            }
        }
        if !pending.is_empty() {
            if let Some(log) = log.as_mut() {
                let _ = log.write_all(&redacted(&pending));
            }
            tail.push_back(String::from_utf8_lossy(&pending).into_owned());
        }
        if let Some(log) = log.as_mut() {
            let _ = log.flush();
        }
        let output = reader.try_wait().map_err(io_err)?;
        Ok((output.map(|o| o.status), tail))
    }

    /// `expr` with this command's folder and environment, its input (none unless given), and
    /// its exit status left to the caller.
    fn configured(&self, mut expr: duct::Expression) -> duct::Expression {
        use std::os::unix::process::CommandExt;
        // Each command in a group of its own, which sultana stops on
        // SIGINT/SIGTERM (see `groups`).
        expr = match &self.stdin {
            Some(path) => expr.stdin_path(path),
            None => expr.stdin_null(),
        }
        .unchecked();
        if !self.foreground {
            expr = expr.before_spawn(|command| {
                command.process_group(0);
                Ok(())
            });
        }
        if self.tied {
            expr = expr.before_spawn(|command| {
                // SAFETY: prctl is async-signal-safe; nothing else runs
                // between fork and exec.
                unsafe {
                    command.pre_exec(|| {
                        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                        Ok(())
                    });
                }
                Ok(())
            });
        }
        if let Some((client, jobs)) = self.jobserver.clone() {
            // After the environment is set (duct runs hooks last).
            expr = expr.before_spawn(move |command| {
                client.configure_make(command);
                // `-jN` beside the jobserver, as GNU make itself passes it
                // down: Makefiles read the count from MAKEFLAGS (QEMU's gives
                // it to ninja), and a -j there is no command line's.
                for name in ["MAKEFLAGS", "MFLAGS", "CARGO_MAKEFLAGS"] {
                    let value = command
                        .get_envs()
                        .find(|(k, _)| *k == name)
                        .and_then(|(_, v)| v)
                        .map(|v| v.to_string_lossy().into_owned());
                    if let Some(value) = value {
                        let counted = match value.strip_prefix("-j ") {
                            Some(rest) => format!("-j{jobs} {rest}"),
                            None => value,
                        };
                        command.env(name, counted);
                    }
                }
                Ok(())
            });
        }
        if self.program == "git" {
            // Its messages are parsed (progress, "No space left", …).
            expr = expr.env("LC_ALL", "C");
        }
        if let Some(dir) = &self.cwd {
            expr = expr.dir(dir);
        }
        if self.clear_env {
            return expr.full_env(self.env.iter().cloned());
        }
        for key in &self.env_remove {
            expr = expr.env_remove(key);
        }
        for (key, value) in &self.env {
            expr = expr.env(key, value);
        }
        expr
    }

    /// Remember the started command, to stop it on SIGINT/SIGTERM/SIGHUP,
    /// and watch its group, to stop it when sultana is killed.
    fn register(&self, pid: Option<u32>) -> Guard {
        let Some(pid) = pid.map(|p| p as i32) else {
            return Guard::default();
        };
        Guard {
            _registered: groups::register(if self.foreground {
                groups::Started::Process(pid)
            } else {
                groups::Started::Group(pid)
            }),
            // A command left in sultana's group has no group of its own to
            // stop (`dies_with_sultana` covers it).
            _watcher: (!self.foreground).then(|| watch::watch(pid)).flatten(),
        }
    }

    fn io_error(&self, source: std::io::Error) -> ProcessError {
        ProcessError::Io {
            command: self.display(),
            source,
        }
    }

    /// The log opened for appending, headed by the command line.
    fn open_log(&self, path: &Path) -> Result<File, ProcessError> {
        let io_err = |source| self.io_error(source);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io_err)?;
        }
        let mut file = File::options().create(true).append(true).open(path).map_err(io_err)?;
        let _ = writeln!(file, "$ {}", crate::validate::redact_credentials(&self.display()));
        Ok(file)
    }

    pub fn run(&self) -> Result<(), ProcessError> {
        self.run_with(|_| {})
    }

    /// Become the command (`execvp`): the terminal, signals and the exit
    /// status are then the command's own, as with jhbuild's `run`. The
    /// program is looked up in the PATH this command is given. Returns only
    /// when the command cannot be started.
    pub fn exec(&self) -> ProcessError {
        use std::os::unix::process::CommandExt;
        let mut command = std::process::Command::new(&self.program);
        command.args(&self.args);
        if let Some(dir) = &self.cwd {
            command.current_dir(dir);
        }
        if self.clear_env {
            command.env_clear();
        }
        for key in &self.env_remove {
            command.env_remove(key);
        }
        for (key, value) in &self.env {
            command.env(key, value);
        }
        let error = command.exec();
        if error.kind() == std::io::ErrorKind::NotFound {
            return ProcessError::ToolMissing {
                tool: self.program.to_string_lossy().into_owned(),
                package: self.package.clone(),
            };
        }
        self.io_error(error)
    }

    /// Run to completion and return its standard output exactly; standard
    /// error goes to the log and, on failure, into the error.
    pub fn output(&self) -> Result<Vec<u8>, ProcessError> {
        let output = self.capture()?;
        if output.status.success() {
            return Ok(output.stdout);
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        let lines: Vec<&str> = stderr.lines().collect();
        Err(ProcessError::Failed {
            command: self.display(),
            status: describe_status(output.status),
            log: self.log.clone(),
            tail: quote_tail(&lines[lines.len().saturating_sub(TAIL_LINES)..]),
            cause: Cause::of_lines(lines.iter().copied()),
        })
    }

    /// Run to completion; a non-zero exit is an answer: its code (None when
    /// killed by a signal) and standard output exactly, standard error to
    /// the log.
    pub fn output_with_code(&self) -> Result<(Option<i32>, Vec<u8>), ProcessError> {
        let output = self.capture()?;
        Ok((output.status.code(), output.stdout))
    }

    /// Run to completion with both outputs captured, standard error also
    /// written to the log (redacted).
    fn capture(&self) -> Result<std::process::Output, ProcessError> {
        let program = self.resolve_program()?;
        let io_err = |source| self.io_error(source);
        let expr = self.configured(duct::cmd(program, &self.args).stdout_capture().stderr_capture());
        let handle = expr.start().map_err(io_err)?;
        let _group = self.register(handle.pids().first().copied());
        let output = handle.into_output().map_err(io_err)?;
        if let Some(path) = &self.log {
            let _ = self.open_log(path)?.write_all(&redacted(&output.stderr));
        }
        Ok(output)
    }

    /// Run with a time limit in its own process group, all output appended
    /// to the log. At the limit the group gets SIGTERM (so scripts can clean
    /// up) and, 5 s later, SIGKILL; whatever of the group is left when the
    /// command ends is killed too.
    pub fn run_limited(&self, limit: std::time::Duration) -> Result<Ended, ProcessError> {
        self.run_watched(limit, &mut || Watch::Continue)
    }

    /// `run_limited`, asking `watch` every 50 ms whether to go on: a
    /// `Watch::Stop` stops the group at once (e.g. a VM whose guest said it
    /// is done, or that never started).
    pub fn run_watched(
        &self,
        limit: std::time::Duration,
        watch: &mut dyn FnMut() -> Watch,
    ) -> Result<Ended, ProcessError> {
        let program = self.resolve_program()?;
        let io_err = |source| self.io_error(source);
        let log = self.log.clone().unwrap_or_else(|| PathBuf::from("/dev/null"));
        // duct applies the outer redirection first: stdout goes to the log,
        // then stderr to where stdout now goes (the other order sends the
        // test's stderr to sultana's own stdout, into a --json document).
        let expr = self.configured(
            duct::cmd(program, &self.args)
                .stderr_to_stdout()
                .stdout_file(self.open_log(&log)?),
        );
        let handle = expr.start().map_err(io_err)?;
        let group = handle.pids().first().copied().unwrap_or(0) as i32;
        let _registered = groups::register(groups::Started::Group(group));
        let _watcher = watch::watch(group);
        let deadline = std::time::Instant::now() + limit;
        let mut timed_out = false;
        let mut stopped = false;
        let status = loop {
            if let Some(output) = handle.try_wait().map_err(io_err)? {
                break Some(output.status);
            }
            if watch() == Watch::Stop {
                stopped = true;
                signal_group(group, libc::SIGKILL);
                let _ = handle.wait();
                break None;
            }
            if std::time::Instant::now() >= deadline {
                timed_out = true;
                signal_group(group, libc::SIGTERM);
                let grace = std::time::Instant::now() + std::time::Duration::from_secs(5);
                while std::time::Instant::now() < grace {
                    if handle.try_wait().map_err(io_err)?.is_some() {
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                signal_group(group, libc::SIGKILL);
                let _ = handle.wait();
                break None;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        };
        // Background children the command left in its group.
        signal_group(group, libc::SIGKILL);
        if timed_out {
            return Ok(Ended::TimedOut);
        }
        if stopped {
            return Ok(Ended::Stopped);
        }
        use std::os::unix::process::ExitStatusExt;
        Ok(
            match status.and_then(|s| s.code().map(Ended::Exited).or(s.signal().map(Ended::Signaled))) {
                Some(ended) => ended,
                None => Ended::Signaled(0),
            },
        )
    }

    /// The program to start: a path (`./autogen.sh`) is the step's own file,
    /// relative to its folder; a name is looked up on PATH.
    fn resolve_program(&self) -> Result<PathBuf, ProcessError> {
        let missing = || ProcessError::ToolMissing {
            tool: self.program.to_string_lossy().into_owned(),
            package: self.package.clone(),
        };
        if self.program.to_string_lossy().contains('/') {
            let path = match &self.cwd {
                Some(dir) => dir.join(&self.program),
                None => PathBuf::from(&self.program),
            };
            path.exists().then_some(path).ok_or_else(missing)
        } else {
            // The PATH the command is given, when it is given one (a build
            // step's clean environment): the program it runs is that one's.
            let given = self.env.iter().rev().find(|(k, _)| k == "PATH").map(|(_, v)| v.clone());
            let given = given.or_else(|| self.clear_env.then(OsString::new));
            match given {
                Some(path) => {
                    let cwd = self
                        .cwd
                        .clone()
                        .or_else(|| std::env::current_dir().ok())
                        .unwrap_or_default();
                    which::which_in(&self.program, Some(path), cwd).map_err(|_| missing())
                }
                None => which::which(&self.program).map_err(|_| missing()),
            }
        }
    }
}

/// What is kept of a started command until it ends (dropped in order: no
/// longer stopped on a signal, then no longer watched).
#[derive(Default)]
struct Guard {
    _registered: Option<groups::Registered>,
    _watcher: Option<watch::Watcher>,
}

/// A line of a command's output as it goes to a log: credentials of urls
/// stripped (git may print a url as it was given).
fn redacted(line: &[u8]) -> Vec<u8> {
    match std::str::from_utf8(line) {
        Ok(text) if text.contains("://") => crate::validate::redact_credentials(text).into_bytes(),
        _ => line.to_vec(),
    }
}

/// Output lines as quoted in an error.
fn quote_tail<S: AsRef<str>>(lines: &[S]) -> String {
    lines
        .iter()
        .map(|l| format!("  | {}", l.as_ref()))
        .collect::<Vec<_>>()
        .join("\n")
}

fn describe_status(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        _ => status.to_string(),
    }
}

/// Quote one word for a POSIX shell (printed commands a user pastes).
pub fn shell_quote(arg: &str) -> String {
    if !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:+,@%^".contains(c))
    {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

fn signal_group(group: i32, signal: i32) {
    if group > 1 {
        // SAFETY: killpg only sends a signal; a group that is gone is ESRCH.
        unsafe {
            libc::killpg(group, signal);
        }
    }
}

/// Where a log file for `what` goes under a workspace's state folder.
pub fn log_path(state_dir: &Path, what: &str) -> PathBuf {
    state_dir.join("logs").join(format!("{what}.log"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_reports_command_status_and_tail() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("x.log");
        let err = Cmd::new("sh", "dash")
            .args(["-c", "echo one; echo two >&2; exit 3"])
            .log(&log)
            .run()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`sh -c 'echo one; echo two >&2; exit 3'` failed (exit status 3)"),
            "{err}"
        );
        assert!(err.contains("  | one\n  | two"), "{err}");
        assert!(std::fs::read_to_string(&log).unwrap().contains("two"));
    }

    #[test]
    fn a_time_limit_stops_the_whole_group() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("t.log");
        let marker = dir.path().join("cleaned");
        // A background child in the group, and a TERM trap that records it ran.
        let script = format!(
            "trap 'touch {}; exit 1' TERM; sleep 300 & echo started; wait",
            marker.display()
        );
        let started = std::time::Instant::now();
        let ended = Cmd::new("bash", "bash")
            .args(["-c", &script])
            .log(&log)
            .run_limited(std::time::Duration::from_millis(500))
            .unwrap();
        assert_eq!(ended, Ended::TimedOut);
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
        assert!(marker.exists(), "the script's TERM trap ran");
        assert!(std::fs::read_to_string(&log).unwrap().contains("started"));
        let ended = Cmd::new("sh", "dash")
            .args(["-c", "exit 77"])
            .run_limited(std::time::Duration::from_secs(30))
            .unwrap();
        assert_eq!(ended, Ended::Exited(77));
    }

    #[test]
    fn missing_tool_names_the_package() {
        let err = Cmd::new("sultana-no-such-tool", "sultana-pkg").run().unwrap_err();
        assert!(matches!(err, ProcessError::ToolMissing { .. }));
        assert!(err.to_string().contains("sultana-pkg"));
    }

    #[test]
    fn progress_lines_split_on_carriage_returns() {
        let mut lines = Vec::new();
        Cmd::new("printf", "coreutils")
            .arg("a 1\\ra 2\\nb\\n")
            .run_with(|l| lines.push(l.to_string()))
            .unwrap();
        assert_eq!(lines, ["a 1", "a 2", "b"]);
    }
}
