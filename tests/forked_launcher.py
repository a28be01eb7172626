"""Runs `python -m official_ext.train` command lines as forks of one process.

Each launch of the launcher spends most of its time importing TensorFlow and
Model Garden. Tests that launch it many times start one server process that
imports those once and forks a child per command line; the child runs the
launcher's `__main__` exactly as `python -m official_ext.train` would (its
own flags, its own exit code, stdout discarded, stderr into a file), so each
launch is still a process of its own, killable by its pid:

    with ForkedLauncher() as launcher:
      launch = launcher.start(['--experiment=lars_digits', ...])
      returncode = launch.wait(timeout=600)
      log = launch.stderr()

The server is this module run as a script; it reads one JSON command per
line on stdin, `{"id", "argv", "env", "stderr"}`, and answers on stdout with
`{"id", "pid"}` once forked and `{"id", "returncode"}` once the child exits
(negative: killed by that signal, as `subprocess` reports it).
"""
import importlib
import json
import os
import pathlib
import runpy
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from typing import Dict, List, Mapping, Optional, Sequence

REPO = pathlib.Path(__file__).resolve().parent.parent
LAUNCHER = 'official_ext.train'
# What the launcher imports that takes its time; imported by the server
# before it forks. Not the launcher itself: its module body (flag
# definitions included) runs in each child, as under `python -m`.
PRELOADED_MODULES = ('tensorflow', 'official.common.flags',
                     'official.common.registry_imports',
                     'official_ext.experiments',
                     'official_ext.launcher.experiment_runner',
                     'official_ext.launcher.launch_checks')
_POLL_SECONDS = 0.02


def _exit_code(exit_request: SystemExit) -> int:
  """The exit code Python gives `sys.exit(code)` at the top level."""
  code = exit_request.code
  if code is None:
    return 0
  if isinstance(code, int):
    return code
  print(code, file=sys.stderr)
  return 1


def _run_child(argv: Sequence[str], env: Mapping[str, str],
               stderr_path: str) -> None:
  """In the forked child: runs the launcher's `__main__`; never returns."""
  code = 1
  try:
    stderr = os.open(stderr_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(stderr, 2)
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    os.environ.update(env)
    tempfile.tempdir = None  # Read $TMPDIR again.
    sys.argv = [str(REPO / (LAUNCHER.replace('.', '/') + '.py')), *argv]
    try:
      runpy.run_module(LAUNCHER, run_name='__main__', alter_sys=True)
      code = 0
    except SystemExit as exit_request:
      code = _exit_code(exit_request)
    except BaseException:  # pylint: disable=broad-except
      traceback.print_exc()
  finally:
    for stream in (sys.stdout, sys.stderr):
      stream.flush()
    os._exit(code)  # pylint: disable=protected-access


def _returncode(status: int) -> int:
  if os.WIFSIGNALED(status):
    return -os.WTERMSIG(status)
  return os.WEXITSTATUS(status)


def serve() -> None:
  """The server: forks a launcher per command line read from stdin."""
  for module in PRELOADED_MODULES:
    importlib.import_module(module)
  children: Dict[int, str] = {}
  stdin_open = True

  def answer(message):
    sys.stdout.write(json.dumps(message) + '\n')
    sys.stdout.flush()

  while stdin_open or children:
    if stdin_open and select.select([sys.stdin], [], [], _POLL_SECONDS)[0]:
      line = sys.stdin.readline()
      if not line:
        stdin_open = False
        continue
      command = json.loads(line)
      sys.stdout.flush()
      sys.stderr.flush()
      pid = os.fork()
      if pid == 0:
        _run_child(command['argv'], command['env'], command['stderr'])
      children[pid] = command['id']
      answer({'id': command['id'], 'pid': pid})
    elif not stdin_open:
      time.sleep(_POLL_SECONDS)
    while children:
      pid, status = os.waitpid(-1, os.WNOHANG)
      if pid == 0:
        break
      answer({'id': children.pop(pid), 'returncode': _returncode(status)})
  # Nothing to clean up: skips TensorFlow's slow interpreter shutdown.
  os._exit(0)  # pylint: disable=protected-access


class Launch:
  """One launch: its pid, and its exit code once it has exited."""

  def __init__(self, launcher: 'ForkedLauncher', launch_id: int, pid: int,
               stderr_path: str):
    self._launcher = launcher
    self._id = launch_id
    self.pid = pid
    self.stderr_path = stderr_path

  def poll(self) -> Optional[int]:
    """The exit code, or None while it runs."""
    self._launcher.read_answers(timeout=0)
    return self._launcher.returncodes.get(self._id)

  def wait(self, timeout: float) -> int:
    """Waits for the exit; raises TimeoutError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while self._id not in self._launcher.returncodes:
      if time.monotonic() > deadline:
        raise TimeoutError(f'launch {self._id} (pid {self.pid}) still runs '
                           f'after {timeout} s')
      self._launcher.check_server()
      self._launcher.read_answers(timeout=_POLL_SECONDS * 10)
    return self._launcher.returncodes[self._id]

  def stderr(self) -> str:
    with open(self.stderr_path) as f:
      return f.read()


class ForkedLauncher:
  """The client: starts the server, then launches through it."""

  def __init__(self):
    self._server = subprocess.Popen(
        [sys.executable, '-m', 'tests.forked_launcher'], cwd=REPO,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2'),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    self._stderr_dir = tempfile.mkdtemp(prefix='forked_launcher_')
    self._pending = b''
    self._pids: Dict[int, int] = {}
    self.returncodes: Dict[int, int] = {}
    self._launches: List[Launch] = []

  def start(self, argv: Sequence[str],
            env: Optional[Mapping[str, str]] = None) -> Launch:
    """Forks a launcher with command-line arguments `argv`.

    Args:
      argv: the arguments after `python -m official_ext.train`.
      env: environment variables set in the child, over the server's.

    Returns:
      The launch, running.
    """
    launch_id = len(self._launches)
    stderr_path = os.path.join(self._stderr_dir, f'{launch_id}.stderr')
    command = {'id': launch_id, 'argv': list(argv), 'env': dict(env or {}),
               'stderr': stderr_path}
    self._server.stdin.write(json.dumps(command).encode() + b'\n')
    self._server.stdin.flush()
    while launch_id not in self._pids:
      self.check_server()
      self.read_answers(timeout=_POLL_SECONDS * 10)
    launch = Launch(self, launch_id, self._pids[launch_id], stderr_path)
    self._launches.append(launch)
    return launch

  def check_server(self) -> None:
    """Raises RuntimeError if the server has died (it exits only on close)."""
    if self._server.poll() is not None:
      raise RuntimeError(
          f'the launcher server exited {self._server.returncode}')

  def read_answers(self, timeout: float) -> None:
    """Reads what the server has answered, waiting up to `timeout` s."""
    stdout = self._server.stdout.fileno()
    while select.select([stdout], [], [], timeout)[0]:
      data = os.read(stdout, 65536)
      if not data:
        break
      self._pending += data
      *lines, self._pending = self._pending.split(b'\n')
      for line in lines:
        answer = json.loads(line)
        if 'pid' in answer:
          self._pids[answer['id']] = answer['pid']
        else:
          self.returncodes[answer['id']] = answer['returncode']
      timeout = 0

  def close(self) -> None:
    """Kills launches still running, then stops the server."""
    for launch in self._launches:
      if launch.poll() is None:
        try:
          os.kill(launch.pid, signal.SIGKILL)
        except ProcessLookupError:
          pass
    self._server.stdin.close()
    self._server.wait()
    shutil.rmtree(self._stderr_dir)

  def __enter__(self) -> 'ForkedLauncher':
    return self

  def __exit__(self, *exc_info) -> None:
    self.close()


if __name__ == '__main__':
  serve()
