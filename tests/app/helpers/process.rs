//! The real `scanpay` binary in its own process: to kill it (`kill -9`) and
//! start it again, or to test its command line.

use super::*;

/// A `scanpay` process, killed when dropped.
pub struct Process {
    pub child: Child,
    pub url: String,
    pub stdout: Arc<Mutex<String>>,
    pub stderr: Arc<Mutex<String>>,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Collects a child's output lines in the background, echoed with `TEST_LOG`.
pub(crate) fn collect(out: impl std::io::Read + Send + 'static, lines: Arc<Mutex<String>>) {
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if std::env::var_os("TEST_LOG").is_some() {
                eprintln!("[scanpay] {line}");
            }
            let mut l = lines.lock().unwrap();
            l.push_str(&line);
            l.push('\n');
        }
    });
}

/// `scanpay ARGS` with `env` and no other `SCANPAY_*`, its output piped.
pub(crate) fn scanpay_command(args: &[&str], env: &[(String, String)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_scanpay"));
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    for (k, _) in std::env::vars() {
        if k.starts_with("SCANPAY_") {
            cmd.env_remove(k);
        }
    }
    cmd.envs(env.iter().map(|(k, v)| (k, v)));
    cmd
}

/// Starts `scanpay ARGS` with `env`, waiting for the first `http://` URL it prints.
pub fn spawn_binary(args: &[&str], env: &[(String, String)]) -> Process {
    let mut child = scanpay_command(args, env)
        .stdin(Stdio::null())
        .spawn()
        .expect("start the scanpay binary");
    let (stdout, stderr) = (Arc::default(), Arc::default());
    collect(child.stdout.take().unwrap(), Arc::clone(&stdout));
    collect(child.stderr.take().unwrap(), Arc::clone(&stderr));
    let start = Instant::now();
    let url = loop {
        let printed = stdout.lock().unwrap().clone();
        if let Some(i) = printed.find("http://") {
            break printed[i..].split_whitespace().next().unwrap().to_string();
        }
        if start.elapsed() > Duration::from_secs(30) || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            panic!("scanpay did not print its URL: {}", stderr.lock().unwrap());
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Process {
        child,
        url,
        stdout,
        stderr,
    }
}

/// `scanpay sim --listen ADDR` in its own process, to be killed and started again.
pub fn spawn_sim_process(listen: &str) -> Process {
    spawn_binary(&["sim", "--listen", listen], &env(FAST_ENV))
}

/// Runs `scanpay ARGS --data-dir DIR` with `env` and `stdin`, to its end.
pub fn run_cli(
    data_dir: &std::path::Path,
    args: &[&str],
    env: &[(&str, &str)],
    stdin: &str,
) -> std::process::Output {
    let mut child = scanpay_command(args, &self::env(env))
        .args(["--data-dir", data_dir.to_str().unwrap()])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    write!(child.stdin.take().unwrap(), "{stdin}").unwrap();
    child.wait_with_output().unwrap()
}

pub(crate) fn start_serve(
    dir: &std::path::Path,
    listen: &str,
    env: &[(String, String)],
) -> Process {
    spawn_binary(
        &[
            "serve",
            "--data-dir",
            dir.to_str().unwrap(),
            "--listen",
            listen,
        ],
        env,
    )
}
